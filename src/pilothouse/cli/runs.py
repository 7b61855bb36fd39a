"""`pilothouse runs`, `pilothouse runs prune` and `pilothouse trace RUN_ID`: the stored
runs, deleting old ones, and a run's span tree."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from pilothouse.cli.common import fail, out, print_json, settings
from pilothouse.cli.completion import complete_copilot_name
from pilothouse.cli.retention import prune_command
from pilothouse.errors import PilothouseError

if TYPE_CHECKING:
    from pilothouse.storage.traces import TraceStore

app = typer.Typer(help="Recent runs; `pilothouse runs prune` deletes old ones.")


def _open_store() -> TraceStore | None:
    from pilothouse.storage.backends import shared
    from pilothouse.storage.traces import TraceStore

    config = settings()
    if not shared(config) and not config.database_path.exists():
        return None
    try:
        return TraceStore.for_settings(config)
    except PilothouseError as exc:
        fail(exc)


@app.callback(invoke_without_command=True)
def runs_command(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="how many runs")] = 20,
    copilot: Annotated[
        str | None,
        typer.Option(
            "--copilot",
            "-c",
            help="only the runs of this copilot",
            autocompletion=complete_copilot_name,
        ),
    ] = None,
    promotion: Annotated[
        str | None,
        typer.Option(
            "--promotion",
            help="only the runs a promotion mirrored or routed (its id, pr-...)",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON lines instead")] = False,
) -> None:
    """Recent runs, newest first: id, time, copilot, model, tokens, cost, duration; a
    run a promotion mirrored or routed says so (shadow, canary, ...).

    `pilothouse runs prune` deletes old runs (see its --help)."""
    if ctx.invoked_subcommand is not None:
        return
    store = _open_store()
    runs = store.list_runs(limit, copilot=copilot, promotion=promotion) if store else []
    if store is not None:
        store.close()
    if as_json:
        print_json([asdict(run) for run in runs], lines=True)
        return
    if not runs:
        where = f" for copilot {copilot!r}" if copilot else ""
        where += f" of promotion {promotion!r}" if promotion else ""
        out.print(f"No runs recorded yet{where}.", markup=False)
        return
    from pilothouse.cli.trace_view import runs_table

    out.print(runs_table(runs))


app.command("prune")(prune_command)


def trace_command(
    run_id: Annotated[str, typer.Argument(help="a run id, or an unambiguous prefix of one")],
    full: Annotated[
        bool,
        typer.Option("--full", help="show the messages sent and received, uncut"),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the run and all its spans as JSON")
    ] = False,
) -> None:
    """One run as a tree of spans: retrieval with scores, model calls (model asked for
    and model that answered, tokens), tool calls with arguments and results, errors."""
    store = _open_store()
    if store is None:
        fail(PilothouseError("no runs recorded yet; run a copilot first"))
    try:
        detail = store.get_run(run_id)
    except PilothouseError as exc:
        fail(exc)
    finally:
        store.close()
    if as_json:
        print_json({"run": asdict(detail.run), "spans": [s.to_dict() for s in detail.spans]})
        return
    from pilothouse.cli.trace_view import print_trace

    print_trace(out, detail, full)
