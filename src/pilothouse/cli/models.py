"""`pilothouse models`: the known models and whether each can answer now."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

from pilothouse.cli.common import err, fail, out, print_json, settings
from pilothouse.cli.completion import complete_model_id
from pilothouse.errors import PilothouseError

app = typer.Typer(help="List models and prepare local weights.", invoke_without_command=True)


@app.callback()
def list_models(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="print JSON lines: id, ready, detail, default")
    ] = False,
) -> None:
    """Known models and whether each is ready: a key present, the weights assembled,
    the server answering (Ollama, vLLM, llama.cpp, any OpenAI-compatible URL)."""
    if ctx.invoked_subcommand is not None:
        return
    from pilothouse.models.probe import ReadinessProbe
    from pilothouse.models.registry import KNOWN_MODELS

    config = settings()
    ids = list(dict.fromkeys([config.default_model, *KNOWN_MODELS]))
    # The same check as the server's /readyz: servers are asked, all at once.
    states = ReadinessProbe(config).check_many_sync(ids)
    rows = [
        {
            "id": model_id,
            "ready": state.ready,
            "detail": state.detail,
            "default": model_id == config.default_model,
        }
        for model_id, state in states.items()
    ]
    if as_json:
        print_json(rows, lines=True)
        return
    table = Table("model", "ready", "detail", box=None, pad_edge=False)
    for row in rows:
        suffix = "  (default)" if row["default"] else ""
        mark = "[green]yes[/]" if row["ready"] else "[red]no[/]"
        table.add_row(escape(str(row["id"])) + suffix, mark, escape(str(row["detail"])))
    out.print(table)


@app.command("pull")
def pull(
    model_id: Annotated[
        str,
        typer.Argument(
            help="a local model id, e.g. local:qwen2.5-coder-1.5b",
            autocompletion=complete_model_id,
        ),
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
    err.print(f"{model_id} ready: {path}", markup=False)
