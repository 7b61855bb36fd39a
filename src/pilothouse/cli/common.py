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

Start-up: `pilothouse --help` imports every command module, so a command module
imports at its top only the standard library, typer, rich and the light modules of
this package (this one, `completion`, `pilothouse.errors`); what a command needs to run
(settings, models, knowledge, the server, ...) it imports in its function
(docs/architecture.md, "The command line starts fast"; tests/cli/test_startup.py).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from pilothouse.errors import ConfigError, PilothouseError

if TYPE_CHECKING:
    from pilothouse.config import Settings
    from pilothouse.tracing import Redactor

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

ApproveOption = Annotated[
    bool | None,
    typer.Option(
        "--yes/--no",
        help="approve (--yes) or deny (--no) every tool call that asks for approval; "
        "without either, a terminal asks and a script leaves the run paused (exit 3)",
        show_default=False,
    ),
]


def redactor() -> Redactor:
    """The command's one redactor: every secret the process knows (the environment's,
    the settings', the copilots' tools'), masked in what it prints and logs."""
    global _redactor
    if _redactor is None:
        from pilothouse.storage.secrets import process_redactor

        _redactor = process_redactor(os.environ)
    return _redactor


_redactor: Redactor | None = None


def settings() -> Settings:
    """The command's settings; the storage they open (a PostgreSQL connection pool) is
    closed when the command ends (`close_storage`)."""
    from pilothouse.storage import load_settings
    from pilothouse.storage.secrets import share

    try:
        config = share(load_settings(), redactor())
    except ConfigError as exc:
        fail(exc)
    _loaded.append(config)
    return config


_loaded: list[Settings] = []


def close_storage() -> None:
    """Close the storage handles of the settings this command loaded: the root command
    calls it when a command ends, however it ends. A PostgreSQL pool left to the garbage
    collector may be collected in one of its own worker threads, which cannot join
    itself ("cannot join current thread")."""
    from pilothouse.storage.backends import close_database

    while _loaded:
        close_database(_loaded.pop())


def fail(exc: BaseException, code: int = EXIT_FAILED) -> NoReturn:
    """Print the error (no traceback, no secret, no markup taken from the message)
    and exit: 2 for configuration errors, else `code`."""
    message = redactor().scrub_text(str(exc))
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
    raise typer.Exit(EXIT_USAGE if isinstance(exc, ConfigError) else code)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; typed Pilothouse errors become a clean message and exit code."""
    import asyncio

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
    """Log records and warnings as one line each (INFO and tracebacks with --verbose),
    every secret the process knows masked in them."""
    from pilothouse.cli.log_output import setup

    setup(verbose)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _LogRedaction) for f in handler.filters):
            handler.addFilter(_LogRedaction())


class _LogRedaction(logging.Filter):
    """The process redactor's log filter (`RedactingFilter`), loaded when a record
    first passes: the root command sets logging up before every command, its
    `--help` included, which logs nothing and loads no settings."""

    def filter(self, record: logging.LogRecord) -> bool:
        from pilothouse.tracing import RedactingFilter

        return RedactingFilter(redactor()).filter(record)
