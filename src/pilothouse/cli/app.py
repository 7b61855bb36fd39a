"""The root command and the registration of each command group."""

from __future__ import annotations

import typer

from pilothouse.cli import ask, chat, evals, knowledge, models, runs, tools
from pilothouse.cli import keys as keys_cli
from pilothouse.cli import plugins as plugins_cli
from pilothouse.cli import serve as serve_cli

app = typer.Typer(
    name="pilothouse",
    help="Your organisation's own copilots, on any model.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

app.add_typer(models.app, name="models")
app.add_typer(knowledge.app, name="knowledge")
app.add_typer(tools.app, name="tools")
app.command("init")(chat.init_command)
app.command("chat")(chat.chat_command)
app.command("ask")(ask.ask)
app.add_typer(runs.app, name="runs")
app.command("trace")(runs.trace_command)
app.command("serve")(serve_cli.serve_command)
app.add_typer(keys_cli.app, name="keys")
app.command("plugins")(plugins_cli.plugins_command)
app.add_typer(evals.app, name="eval")


def main() -> None:
    app()
