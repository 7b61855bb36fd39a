"""`pilothouse flow run|test FOLDER`: Prompt flow flows (flow.dag.yaml) on any model."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from pilothouse.cli.common import EXIT_FAILED, EXIT_OK, err, fail, out, print_json, run, settings
from pilothouse.cli.completion import complete_model_id
from pilothouse.errors import PilothouseError

if TYPE_CHECKING:
    from pilothouse.copilot.flow import Flow, TestReport

T = TypeVar("T")

app = typer.Typer(help="Prompt flow flows (flow.dag.yaml): run one line, or test on data.")

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="one model id for every llm node (default: connections.yaml in the flow folder)",
        autocompletion=complete_model_id,
    ),
]
VariantOption = Annotated[
    list[str] | None,
    typer.Option("--variant", help="NODE.VARIANT_ID (Prompt flow's ${node.variant}); repeat"),
]
MaxTokensOption = Annotated[
    int | None, typer.Option("--max-tokens", min=1, help="cap every llm node's output tokens")
]


def _with_flow(
    folder: Path,
    model: str | None,
    variants: list[str] | None,
    cap: int | None,
    work: Callable[[Flow], Coroutine[Any, Any, T]],
) -> T:
    """Open the flow, run `work` on it, close it; a Pilothouse error ends the command."""
    from pilothouse.copilot.flow import Flow
    from pilothouse.storage.tracer import open_tracer

    config = settings()
    try:
        flow = Flow.open(
            folder,
            config,
            model=model,
            tracer=open_tracer(config),
            variants=list(variants or []),
            max_output_tokens=cap,
        )
        try:
            return run(work(flow))
        finally:
            run(flow.aclose())
            flow.tracer.close()
    except PilothouseError as exc:
        fail(exc)


@app.command("run")
def run_command(
    folder: Annotated[Path, typer.Argument(help="the flow folder")],
    inputs: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="a flow input as NAME=VALUE")
    ] = None,
    model: ModelOption = None,
    variant: VariantOption = None,
    max_tokens: MaxTokensOption = None,
) -> None:
    """Run one line through the flow and print its outputs as JSON."""
    try:
        values = dict(_pair(p) for p in inputs or [])
    except PilothouseError as exc:
        fail(exc)
    result = _with_flow(folder, model, variant, max_tokens, lambda flow: flow.run(values))
    print_json(result.outputs)
    if result.bypassed:
        err.print(f"bypassed: {', '.join(result.bypassed)}", markup=False, style="dim")


@app.command("test")
def test_command(
    folder: Annotated[Path, typer.Argument(help="the flow folder")],
    data: Annotated[
        Path | None, typer.Option("--data", help="JSONL lines (default: the folder's data.jsonl)")
    ] = None,
    model: ModelOption = None,
    variant: VariantOption = None,
    max_tokens: MaxTokensOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Run every line of the flow's sample data (data.jsonl), then its aggregation
    nodes; exit 1 when a line fails."""
    from pilothouse.copilot.flow import read_rows

    try:
        rows = read_rows(data or folder / "data.jsonl")
    except PilothouseError as exc:
        fail(exc)
    report = _with_flow(folder, model, variant, max_tokens, lambda flow: flow.test(rows))
    _print(report, as_json)
    raise typer.Exit(EXIT_FAILED if report.failed else EXIT_OK)


def _print(report: TestReport, as_json: bool) -> None:
    items: list[dict[str, Any]] = []
    for number, line in enumerate(report.lines, 1):
        if isinstance(line, str):
            items.append({"line": number, "status": "failed", "error": line})
        else:
            item = {"line": number, "status": "completed", "outputs": line.outputs}
            if line.bypassed:
                item["bypassed"] = line.bypassed
            items.append(item)
    if report.metrics:
        items.append({"metrics": report.metrics})
    if as_json:
        print_json(items, lines=True)
    else:
        for item in items:
            out.print(json.dumps(item, ensure_ascii=False, default=str), markup=False)
    done = len(report.lines) - report.failed
    err.print(f"{done} passed, {report.failed} failed", markup=False)


def _pair(text: str) -> tuple[str, str]:
    from pilothouse.copilot.flow import FlowError

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise FlowError(f"--input {text!r}: write NAME=VALUE")
    return key.strip(), value
