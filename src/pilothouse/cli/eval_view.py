"""Showing eval runs in the terminal: the progress bar, per-arm summaries, comparisons,
gates; and their JSON forms for `--json`."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from pilothouse.pipeline.compare import Comparison
from pilothouse.pipeline.gates import GateResult
from pilothouse.pipeline.summary import MetricSummary, RunSummary
from pilothouse.storage.evals import CaseRow

VERDICT_STYLES = {"better": "green", "worse": "red", "no detectable difference": "dim"}


class RateColumn(ProgressColumn):
    """Cases per second, from rich's own speed estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} cases/s" if speed else "-- cases/s", style="cyan")


def progress_bar(console: Console, *, disable: bool) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[tally]}"),
        console=console,
        transient=False,
        disable=disable,
    )


def progress_callback(progress: Progress) -> Callable[[int, int, CaseRow | None], None]:
    task = progress.add_task("eval", total=None, tally="")
    tally = {"passed": 0, "failed": 0, "error": 0}

    def report(done: int, total: int, row: CaseRow | None) -> None:
        if row is not None:
            tally[row.status] += 1
        shown = (
            f"[green]{tally['passed']}✓[/] [red]{tally['failed']}✗[/] [yellow]{tally['error']}![/]"
        )
        progress.update(task, completed=done, total=total, tally=shown)

    return report


def figure(value: float, unit: str = "") -> str:
    if unit == "$":
        return f"${value:.5f}"
    if unit == "tokens":
        return f"{value:,.0f}"
    if unit == "s":
        return f"{value:.2f}s"
    return f"{value:.2f}"


def _interval(metric: MetricSummary) -> str:
    found = metric.interval
    if found is None:
        return "-"
    if found.low == found.high:
        return figure(found.mean, metric.unit)
    low, high = figure(found.low, metric.unit), figure(found.high, metric.unit)
    return f"{figure(found.mean, metric.unit)} [{low}, {high}]"


def summary_table(summary: RunSummary) -> Table:
    """Metrics down, arms across: mean [95% interval] (n)."""
    title = f"eval {summary.run.run_id} · {summary.run.copilot}"
    table = Table(title=escape(title), header_style="bold")
    table.add_column("metric", no_wrap=True)
    for arm in summary.arms:
        table.add_column(escape(f"{arm.arm.number}: {arm.arm.label}"), overflow="fold")
    table.add_row(
        "cases",
        *(
            f"[green]{a.counts['passed']} passed[/] · [red]{a.counts['failed']} failed[/]"
            + (f" · [yellow]{a.counts['error']} errors[/]" if a.counts["error"] else "")
            for a in summary.arms
        ),
    )
    names = list(dict.fromkeys(m.name for a in summary.arms for m in a.metrics))
    for name in names:
        cells = []
        for arm in summary.arms:
            metric = next((m for m in arm.metrics if m.name == name), None)
            if metric is None or metric.interval is None:
                cells.append("-" if metric is None else f"- ({metric.unjudged} unjudged)")
                continue
            extra = f" ({metric.interval.n})"
            if metric.unjudged:
                extra += f" {metric.unjudged} unjudged"
            if metric.noise is not None:
                extra += f" ±{metric.noise:.2f} noise"
            cells.append(_interval(metric) + f"[dim]{extra}[/]")
        table.add_row(escape(name), *cells)
    for arm in summary.arms:
        for found in arm.agreements:
            kappa = "-" if found.kappa is None else f"{found.kappa:.2f}"
            table.caption = (table.caption or "") + (
                f"{arm.arm.label}: judges agree on {found.metric} in {found.share:.0%} of "
                f"{found.cases} cases (kappa {kappa}). "
            )
    return table


def comparison_table(comparison: Comparison) -> Table:
    title = f"A = {comparison.a.name}\nB = {comparison.b.name}"
    table = Table(title=escape(title), header_style="bold")
    # names and means stay whole; in a narrow terminal the interval and verdict wrap
    for column in ("metric", "A", "B"):
        table.add_column(column, no_wrap=True)
    table.add_column("B - A [95% interval]", min_width=12)
    table.add_column("n", no_wrap=True)
    table.add_column("verdict", min_width=10)
    for item in comparison.metrics:
        result = item.result
        if result is None:
            table.add_row(escape(item.name), "-", "-", "-", "0", "")
            continue
        delta = result.delta
        test = f" p={result.p_value:.3f}" if result.p_value is not None else ""
        style = VERDICT_STYLES[result.verdict]
        table.add_row(
            escape(item.name),
            f"{result.mean_a:.3g}",
            f"{result.mean_b:.3g}",
            f"{delta.mean:+.3g} [{delta.low:+.3g}, {delta.high:+.3g}]",
            str(result.n),
            f"[{style}]{result.verdict}[/][dim]{test}[/]",
        )
    table.caption = (
        f"{len(comparison.regressed)} case(s) regressed, {len(comparison.improved)} improved"
        + (
            f"; scored on one side only: A {comparison.only_a}, B {comparison.only_b}"
            if comparison.only_a or comparison.only_b
            else ""
        )
    )
    return table


def gates_table(results: list[GateResult]) -> Table:
    table = Table(title="gates", header_style="bold")
    for column in ("gate", "model", "result", "detail"):
        table.add_column(column)
    for result in results:
        mark = "[green]pass[/]" if result.passed else "[bold red]FAIL[/]"
        table.add_row(escape(result.name), escape(result.arm), mark, escape(result.detail))
    return table
