"""`pilothouse eval capture` and `pilothouse eval replay`: stored runs as eval cases,
and one stored run answered again on another model, side by side."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pilothouse.cli.common import err, fail, out, run, settings
from pilothouse.cli.retention import parse_duration
from pilothouse.errors import ConfigError, PilothouseError


def capture_command(
    copilot: Annotated[str, typer.Argument(help="the copilot: its folder or its name")],
    since: Annotated[
        str | None, typer.Option("--since", help="runs of the last 7d, 12h, 90m, ...")
    ] = None,
    runs: Annotated[str | None, typer.Option("--runs", help="these run ids: a,b,c")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write the suite here (else stdout)")
    ] = None,
    suite: Annotated[str, typer.Option("--suite", help="the suite's name")] = "captured",
) -> None:
    """Turn stored runs into eval cases: question, earlier turns, the answer as the
    reference, its cited sources and its tool calls as expectations."""
    from pilothouse.copilot.conversations import ConversationStore
    from pilothouse.copilot.definition import load_definition
    from pilothouse.pipeline.capture import capture, dump_suite
    from pilothouse.storage.traces import TraceStore

    name = copilot
    if Path(copilot).is_dir():
        try:
            name = load_definition(Path(copilot))[0].name
        except PilothouseError as exc:
            fail(exc)
    try:
        cutoff = None if since is None else time.time() - parse_duration(since)
    except ValueError as exc:
        fail(ConfigError(f"--since: {exc}"))
    ids = [r.strip() for r in (runs or "").split(",") if r.strip()]
    config = settings()
    with TraceStore.for_settings(config) as traces, ConversationStore.for_settings(config) as store:
        data = run(capture(traces, store, name, since=cutoff, run_ids=ids, suite=suite))
    text = dump_suite(data)
    if output is None:
        out.print(text, markup=False, highlight=False, end="")
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    err.print(f"{len(data['cases'])} case(s) captured from {name}'s runs")


def replay_command(
    run_id: Annotated[str, typer.Argument(help="a stored run (see `pilothouse runs`)")],
    model: Annotated[str, typer.Option("--model", "-m", help="the model to answer again")],
    copilot: Annotated[
        Path | None, typer.Option("--copilot", help="the copilot folder (else the managed one)")
    ] = None,
) -> None:
    """Answer one stored run again on another model and show both answers."""
    from rich.table import Table

    from pilothouse.pipeline.replay import replay

    result = run(replay(settings(), run_id, model, copilot))
    original, outcome = result.original, result.outcome
    table = Table(title=escape(original.question or ""), header_style="bold", show_lines=True)
    table.add_column(f"stored · {escape(original.model or '?')}", ratio=1)
    table.add_column(f"replay · {escape(model)}", ratio=1)
    again = outcome.text if outcome.status == "answered" else f"error: {outcome.error}"
    table.add_row(escape(original.answer or ""), escape(again))
    sources = "\n".join(f"[{c.number}] {c.where}" for c in outcome.citations)
    calls = "\n".join(f"{o.call.name}({o.call.arguments_json})" for o in outcome.tool_calls)
    table.add_row("", escape("\n".join(x for x in (sources, calls) if x)))
    table.add_row(
        f"[dim]pilothouse trace {original.run_id}[/]",
        f"[dim]pilothouse trace {outcome.trace_id}[/]" if outcome.trace_id else "",
    )
    out.print(table)
    if outcome.status == "error":
        raise typer.Exit(1)
