"""The root command and the registration of each command group.

Every module registered here is imported by `pilothouse --help`: each imports at its
top only what declaring its options needs (see pilothouse.cli.common's docstring)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
import typer.core

from pilothouse import __version__
from pilothouse.cli import (
    approve,
    ask,
    chat,
    copilot_cmd,
    eval_capture,
    evals,
    flow,
    import_cmd,
    knowledge,
    models,
    promote,
    provider_keys,
    run_prompty,
    runs,
    tools,
)
from pilothouse.cli import keys as keys_cli
from pilothouse.cli import plugins as plugins_cli
from pilothouse.cli import serve as serve_cli
from pilothouse.cli import storage as storage_cli
from pilothouse.cli.common import close_storage, configure_logging


def _hide_flag_types() -> None:
    """Typer 0.29's rich help shows `<bool>` beside every on/off flag (`--json <bool>`),
    as if it took a value; its plain help does not. Show no type for flags."""
    shown = typer.core.TyperOption.display_type_rich

    def display_type_rich(self: typer.core.TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    typer.core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_hide_flag_types()

app = typer.Typer(
    name="pilothouse",
    help="Your organisation's own copilots, on any model.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pilothouse {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Your organisation's own copilots, on any model.

    Exit codes: 0 done, 1 failed, 2 wrong usage or configuration, 3 paused for
    approval, 130 interrupted (docs/cli.md)."""
    configure_logging(verbose=False)
    ctx.call_on_close(close_storage)


app.add_typer(models.app, name="models")
app.add_typer(knowledge.app, name="knowledge")
app.add_typer(tools.app, name="tools")
app.add_typer(copilot_cmd.app, name="copilot")
app.add_typer(flow.app, name="flow")
app.add_typer(import_cmd.app, name="import")
app.command("init")(chat.init_command)
app.command("chat")(chat.chat_command)
app.command("ask")(ask.ask)
app.command("approve")(approve.approve_command)
app.command("run")(run_prompty.run_command)
app.add_typer(runs.app, name="runs")
app.command("trace")(runs.trace_command)
app.command("serve")(serve_cli.serve_command)
provider_keys.register(keys_cli.app)
app.add_typer(
    keys_cli.app,
    name="keys",
    help="Keys: the server's API keys (create, list, revoke; stored hashed) and the "
    "provider keys Pilothouse calls models with (set, unset, providers).",
)
app.command("plugins")(plugins_cli.plugins_command)
app.add_typer(storage_cli.app, name="storage")
evals.app.command("capture")(eval_capture.capture_command)
evals.app.command("replay")(eval_capture.replay_command)
app.add_typer(evals.app, name="eval")
app.command("promote")(promote.promote_command)
app.add_typer(promote.app, name="promotion")


def main() -> None:
    app()
