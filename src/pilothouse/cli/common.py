"""What every command shares: settings, consoles, and turning errors into exit codes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from pilothouse.config import Settings
from pilothouse.errors import ConfigError, PilothouseError
from pilothouse.storage import load_settings

T = TypeVar("T")

# No emoji codes (":x:" in an error stays ":x:") and no wrapping inside a message (a
# path or URL stays whole). Markup is on: every user or error text printed with it
# goes through `rich.markup.escape`, so "[providers.openai]" is printed as written.
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        fail(exc)


def fail(exc: BaseException, code: int = 1) -> NoReturn:
    """Print a one-line error (no traceback, no secret) and exit."""
    err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
    raise typer.Exit(2 if isinstance(exc, ConfigError) else code)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; typed Pilothouse errors become a clean message and exit code."""
    try:
        return asyncio.run(coroutine)
    except PilothouseError as exc:
        fail(exc)
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
