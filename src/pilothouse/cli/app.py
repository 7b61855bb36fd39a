"""The root command and the registration of each command group."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="pilothouse",
    help="Your organisation's own copilots, on any model.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def main() -> None:
    app()
