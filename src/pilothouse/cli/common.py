"""What every command shares: settings, consoles, JSON output, and turning errors
into exit codes.

Exit codes (docs/cli.md):

| code | meaning |
|---|---|
| 0 | done: the question was answered, the command did what it says |
| 1 | failed: the model, a tool or a file failed (the message says which) |
| 2 | wrong usage or configuration (bad option, copilot.yaml or config.toml error) |
| 3 | paused: a tool call waits for an approval decision (`pilothouse approve`) |
| 130 | interrupted (Ctrl-C) |
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from pilothouse.config import Settings
from pilothouse.errors import ConfigError, PilothouseError
from pilothouse.storage import load_settings
from pilothouse.storage.secrets import process_redactor, share
from pilothouse.tracing import Redactor, install_log_redaction

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PAUSED = 3
EXIT_INTERRUPTED = 130

# No emoji codes (":x:" in an error stays ":x:") and no wrapping inside a message (a
# path or URL stays whole). Markup is on: every user or error text printed with it
# goes through `rich.markup.escape`, so "[providers.openai]" is printed as written.
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def redactor() -> Redactor:
    """The command's one redactor: every secret the process knows (the environment's,
    the settings', the copilots' tools'), masked in what it prints and logs."""
    global _redactor
    if _redactor is None:
        _redactor = process_redactor(os.environ)
    return _redactor


_redactor: Redactor | None = None


def settings() -> Settings:
    try:
        return share(load_settings(), redactor())
    except ConfigError as exc:
        fail(exc)


def fail(exc: BaseException, code: int = EXIT_FAILED) -> NoReturn:
    """Print the error (no traceback, no secret, no markup taken from the message)
    and exit: 2 for configuration errors, else `code`."""
    message = redactor().scrub_text(str(exc))
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
    raise typer.Exit(EXIT_USAGE if isinstance(exc, ConfigError) else code)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; typed Pilothouse errors become a clean message and exit code."""
    try:
        return asyncio.run(coroutine)
    except PilothouseError as exc:
        fail(exc)
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def print_json(value: Any, *, lines: bool = False) -> None:
    """`--json` output on stdout: one document (indented), or with `lines=True` one
    compact JSON object per line for each item of `value` (JSON Lines, for `jq -c`,
    `grep` and streaming). Never styled, never wrapped."""
    items = value if lines else [value]
    for item in items:
        text = json.dumps(
            item, ensure_ascii=False, default=str, indent=None if lines else 2, sort_keys=False
        )
        out.file.write(redactor().scrub_text(text) + "\n")
    out.file.flush()


def configure_logging(verbose: bool) -> None:
    """Log records and warnings as one line each (INFO and tracebacks with --verbose)."""
    from pilothouse.cli.log_output import setup

    setup(verbose)
    install_log_redaction(redactor())
