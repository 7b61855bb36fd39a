"""`pilothouse eval`: run a copilot's eval suites on models, compare runs, gate CI,
capture stored runs as cases and replay one on another model. See docs/evals.md.

`pilothouse eval PATH ...` is short for `pilothouse eval run PATH ...`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from pilothouse.cli.common import configure_logging, err, fail, out, print_json, run, settings
from pilothouse.errors import ConfigError, PilothouseError

if TYPE_CHECKING:
    from pilothouse.storage.evals import EvalStore


class _DefaultRun(TyperGroup):
    """A first argument that is not a subcommand runs `eval run` with it."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_DefaultRun,
    help="Evaluate a copilot on models: `pilothouse eval PATH -m MODEL ...`, then "
    "`pilothouse eval compare RUN_A RUN_B`.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _store() -> EvalStore:
    from pilothouse.storage.evals import EvalStore

    try:
        return EvalStore.for_settings(settings())
    except PilothouseError as exc:
        fail(exc)


@app.command("run")
def run_command(
    path: Annotated[
        Path | None, typer.Argument(help="the copilot folder (not needed with --resume)")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="model id to evaluate (repeat for several)"),
    ] = None,
    suite: Annotated[
        list[str] | None, typer.Option("--suite", help="only this suite (repeatable)")
    ] = None,
    cases: Annotated[str | None, typer.Option("--cases", help="only these case ids: a,b,c")] = None,
    repeat: Annotated[int, typer.Option("--repeat", min=1, help="run each case N times")] = 1,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-k", min=1, help="cases at once (default 4)")
    ] = None,
    variants: Annotated[
        str, typer.Option("--variants", help="per-model prompt variants: on, off or both")
    ] = "on",
    judge: Annotated[
        list[str] | None,
        typer.Option(
            "--judge",
            help="judge model for correctness and groundedness (`default`: the embedded "
            "1.5B); twice for agreement",
        ),
    ] = None,
    no_judge: Annotated[
        bool, typer.Option("--no-judge", help="no judges, even if copilot.yaml names some")
    ] = False,
    gate: Annotated[
        bool, typer.Option("--gate", help="exit 1 when a gate of copilot.yaml fails")
    ] = False,
    junit: Annotated[Path | None, typer.Option("--junit", help="write JUnit XML here")] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="finish an interrupted run by its id")
    ] = None,
    as_json: JsonOption = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log warnings")] = False,
) -> None:
    """Run the copilot's eval suites on each model (the copilot's own when none is
    given), through the real runtime, storing each case as it finishes."""
    from pilothouse.copilot.definition import load_definition
    from pilothouse.pipeline.gates import baselines
    from pilothouse.pipeline.judge import DEFAULT_JUDGE
    from pilothouse.pipeline.runner import EvalPlan

    configure_logging(verbose)
    if variants not in ("on", "off", "both"):
        fail(ConfigError(f"--variants must be on, off or both, not {variants!r}"))
    if resume is None and path is None:
        fail(ConfigError("give a copilot folder (or --resume RUN_ID)"))
    gates = []
    if resume is None:
        assert path is not None
        try:
            definition, _ = load_definition(path)
        except PilothouseError as exc:
            fail(exc)
        gates = list(definition.evals.gates)
        models = list(model or [])
        if gate and models:
            models += [m for m in baselines(gates) if m not in models]
        judges = [] if no_judge else list(judge or definition.evals.judges)
        judges = [DEFAULT_JUDGE if j == "default" else j for j in judges]
        if len(judges) > 2:
            fail(ConfigError("give at most two judges (two give an agreement figure)"))
        plan = EvalPlan(
            folder=str(path),
            models=tuple(models),
            variants=variants,  # type: ignore[arg-type]
            suites=tuple(suite or ()),
            cases=tuple(c.strip() for c in (cases or "").split(",") if c.strip()),
            repeat=repeat,
            concurrency=concurrency or 4,
            judges=tuple(judges),
        )
    store = _store()
    try:
        run_id = run(_run(store, plan if resume is None else None, resume, concurrency, as_json))
        _finish(store, run_id, gate, junit, as_json)
    finally:
        store.close()


async def _run(
    store: EvalStore, plan: Any, resume: str | None, concurrency: int | None, quiet: bool
) -> str:
    from pilothouse.cli.eval_view import progress_bar, progress_callback
    from pilothouse.pipeline.runner import EvalRunner
    from pilothouse.storage.evals import new_run_id

    with progress_bar(err, disable=quiet) as progress:
        runner = EvalRunner(settings(), store, progress=progress_callback(progress))
        if resume is not None:
            run_id = store.resolve(resume)
            err.print(f"resuming eval run [bold]{run_id}[/]")
            return await runner.resume(run_id, concurrency=concurrency)
        run_id = new_run_id()
        if not quiet:
            err.print(f"eval run [bold]{run_id}[/] (resume with --resume {run_id})")
        return await runner.start(plan, run_id=run_id)


def _finish(store: EvalStore, run_id: str, gate: bool, junit: Path | None, as_json: bool) -> None:
    from pilothouse.cli.eval_view import gates_table, summary_table
    from pilothouse.copilot.definition import load_definition
    from pilothouse.pipeline.export import summary_json
    from pilothouse.pipeline.gates import check_gates
    from pilothouse.pipeline.junit import write_junit
    from pilothouse.pipeline.summary import summarize

    summary = summarize(store, run_id)
    results = []
    if gate:
        definition, _ = load_definition(Path(summary.run.folder))
        if not definition.evals.gates:
            fail(ConfigError(f"{summary.run.folder}/copilot.yaml has no evals.gates to check"))
        results = check_gates(store, summary, definition.evals.gates)
    if junit is not None:
        write_junit(junit, store, summary, results)
    if as_json:
        data = summary_json(summary)
        data["gates"] = [
            {"gate": r.name, "arm": r.arm, "passed": r.passed, "detail": r.detail} for r in results
        ]
        print_json(data)
    else:
        out.print(summary_table(summary))
        if results:
            out.print(gates_table(results))
        if len(summary.arms) == 2:
            out.print(f"[dim]compare: pilothouse eval compare {run_id}[/]")
    if any(not r.passed for r in results):
        raise typer.Exit(1)


@app.command("compare")
def compare_command(
    first: Annotated[str, typer.Argument(help="RUN_A (or RUN@ARM); alone: a run's two arms")],
    second: Annotated[str | None, typer.Argument(help="RUN_B (or RUN@ARM)")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="write an HTML report here")] = None,
    as_json: JsonOption = False,
) -> None:
    """Per metric: A, B, the paired difference with its 95% interval, and a verdict
    (better, worse, no detectable difference); the cases that regressed and improved."""
    from pilothouse.cli.eval_view import comparison_table
    from pilothouse.pipeline.compare import compare, sides
    from pilothouse.pipeline.export import comparison_json
    from pilothouse.pipeline.report import write_report

    store = _store()
    try:
        a, b = sides(store, first, second)
        comparison = compare(store, a, b)
    except PilothouseError as exc:
        fail(exc)
    finally:
        store.close()
    if html is not None:
        write_report(html, comparison)
    if as_json:
        print_json(comparison_json(comparison))
        return
    out.print(comparison_table(comparison))
    for title, changes in (("regressed", comparison.regressed), ("improved", comparison.improved)):
        for change in changes[:10]:
            what = f"{change.suite}/{change.case_id}: {change.question}"
            out.print(f"[bold]{title}[/] {escape(what)}")
    if html is not None:
        err.print(f"report: {html}", markup=False)


@app.command("list")
def list_command(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 20,
    copilot: Annotated[str | None, typer.Option("--copilot", "-c")] = None,
    as_json: JsonOption = False,
) -> None:
    """Recent eval runs, newest first."""
    from datetime import datetime

    from rich.table import Table

    store = _store()
    try:
        runs = store.list_runs(limit, copilot)
    finally:
        store.close()
    if as_json:
        print_json(
            [
                {
                    "run_id": r.run_id,
                    "copilot": r.copilot,
                    "created": r.created,
                    "status": r.status,
                    "total": r.total,
                    "arms": [a.label for a in r.arms],
                }
                for r in runs
            ]
        )
        return
    table = Table(header_style="bold", box=None)
    for column in ("id", "time", "copilot", "status", "cases", "arms"):
        table.add_column(column)
    for r in runs:
        when = datetime.fromtimestamp(r.created).strftime("%Y-%m-%d %H:%M:%S")
        arms = ", ".join(a.label for a in r.arms)
        table.add_row(r.run_id, when, escape(r.copilot), r.status, str(r.total), escape(arms))
    out.print(table if runs else "No eval runs yet.")


@app.command("show")
def show_command(run_id: Annotated[str, typer.Argument()], as_json: JsonOption = False) -> None:
    """A run's figures per model: mean [95% interval] (cases) for every metric."""
    from pilothouse.cli.eval_view import summary_table
    from pilothouse.pipeline.export import summary_json
    from pilothouse.pipeline.summary import summarize

    store = _store()
    try:
        summary = summarize(store, run_id)
    except PilothouseError as exc:
        fail(exc)
    finally:
        store.close()
    if as_json:
        print_json(summary_json(summary))
    else:
        out.print(summary_table(summary))
