"""`pilothouse models`: the known models and whether each can answer now."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

from pilothouse.cli.common import err, fail, out, settings
from pilothouse.errors import PilothouseError
from pilothouse.models.registry import KNOWN_MODELS, readiness

app = typer.Typer(help="List models and prepare local weights.", invoke_without_command=True)


@app.callback()
def list_models(ctx: typer.Context) -> None:
    """Known models and whether each is ready (key present, weights assembled)."""
    if ctx.invoked_subcommand is not None:
        return
    config = settings()
    ids = list(dict.fromkeys([config.default_model, *KNOWN_MODELS]))
    table = Table("model", "ready", "detail", box=None, pad_edge=False)
    for model_id in ids:
        try:
            state = readiness(model_id, config)
            mark = "[green]yes[/]" if state.ready else "[red]no[/]"
            detail = state.detail
        except PilothouseError as exc:
            mark, detail = "[red]no[/]", str(exc)
        suffix = "  (default)" if model_id == config.default_model else ""
        table.add_row(escape(model_id) + suffix, mark, escape(detail))
    out.print(table)


@app.command("pull")
def pull(
    model_id: Annotated[
        str, typer.Argument(help="a local model id, e.g. local:qwen2.5-coder-1.5b")
    ],
) -> None:
    """Assemble and verify a local model's weights in the data directory (once)."""
    from pilothouse.models.local import pull as pull_weights

    config = settings()
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(f"assembling {model_id}", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            path = pull_weights(model_id, config, report)
        except PilothouseError as exc:
            fail(exc)
    err.print(f"{model_id} ready: {path}")
