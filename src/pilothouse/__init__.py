"""Pilothouse: an organisation's own copilots, on any model."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """`pilothouse.run_prompty` (and `arun_prompty`), imported on first use so that
    `import pilothouse` stays light."""
    if name in ("run_prompty", "arun_prompty"):
        from pilothouse.copilot import prompty_runner

        return getattr(prompty_runner, name)
    raise AttributeError(f"module 'pilothouse' has no attribute {name!r}")
