"""Showing promotions in the terminal (the view of pipeline/promotion/view.py as
tables), and `--simulate`'s run: the copilot served here with the suite replayed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from pilothouse.cli.common import err, out
from pilothouse.errors import ConfigError

if TYPE_CHECKING:
    from pilothouse.pipeline.promotion.controller import Promotions
    from pilothouse.storage.promotion_records import PromotionRecord

_RESULT = {True: "[green]pass[/]", False: "[bold red]FAIL[/]", None: "[yellow]waiting[/]"}
_STATUS = {
    "running": "cyan",
    "promoted": "bold green",
    "rolled_back": "bold red",
    "held": "bold yellow",
    "awaiting_approval": "bold yellow",
}


def _when(at: float | None) -> str:
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S") if at else ""


def _mean(cell: dict[str, Any] | None) -> str:
    if not cell:
        return "—"
    return f"{cell['mean']:.3g} [{cell['low']:.3g}, {cell['high']:.3g}] n={cell['n']}"


def show_view(view: dict[str, Any]) -> None:
    style = _STATUS.get(view["status"], "white")
    where = view["stage"] + (
        f" step {view['step'] + 1} ({view['share']:.0%})" if view["stage"] == "canary" else ""
    )
    out.print(
        f"promotion [bold]{view['promotion_id']}[/] of [bold]{escape(view['copilot'])}[/]: "
        f"{escape(view['current'])} -> {escape(view['candidate'])}  "
        f"[{style}]{view['status']}[/] ({where})"
    )
    if view.get("reason"):
        out.print(f"  {escape(str(view['reason']))}")
    prompt = view["prompt"].get("label")
    if prompt:
        out.print(f"  candidate prompt: {escape(prompt)}")
    offline = view.get("offline") or {}
    if offline.get("arms"):
        table = Table(
            title=f"offline gates (eval run {view.get('eval_run')})", title_justify="left"
        )
        for column in ("candidate prompt", "gate", "result", "figures"):
            table.add_column(column)
        for arm in offline["arms"]:
            for gate in arm["gates"]:
                table.add_row(
                    escape(arm["label"]), escape(gate["name"]), _RESULT[gate["passed"]],
                    escape(gate["detail"]),
                )  # fmt: skip
        out.print(table)
    if view.get("shadow"):
        _stage("shadow", view["shadow"])
    for step in view.get("canary", {}).get("steps", []):
        _stage(f"canary step {step['step'] + 1} ({step['share']:.0%})", step)
    timeline = Table(title="timeline", title_justify="left")
    for column in ("time", "stage", "event", "what"):
        timeline.add_column(column)
    for event in view.get("timeline", []):
        stage = event["stage"] + (f" {event['step'] + 1}" if event["stage"] == "canary" else "")
        timeline.add_row(_when(event["at"]), stage, event["kind"], escape(event["message"]))
    out.print(timeline)
    if view.get("report"):
        out.print(f"report: {escape(view['report'])}/report.html (and report.md)")


def _stage(title: str, stage: dict[str, Any]) -> None:
    table = Table(
        title=f"{title}: candidate {stage['candidate']}, current {stage['current']} "
        f"requests; {stage['state']}",
        title_justify="left",
    )
    for column in ("threshold", "result", "figures"):
        table.add_column(column)
    for rule in stage["rules"]:
        table.add_row(escape(rule["rule"]), _RESULT[rule["passed"]], escape(rule["detail"]))
    out.print(table)
    metrics = Table(show_header=True, box=None, padding=(0, 2))
    for column in ("metric", "better", "candidate", "current"):
        metrics.add_column(column, style="dim" if column == "better" else None)
    for row in stage["metrics"]:
        metrics.add_row(
            row["metric"], row["better"], _mean(row["candidate"]), _mean(row["current"])
        )
    out.print(metrics)


def promotions_table(records: Sequence[PromotionRecord]) -> Table:
    table = Table()
    for column in ("id", "copilot", "from", "to", "stage", "status", "started", "report"):
        table.add_column(column)
    for r in records:
        style = _STATUS.get(r.status, "white")
        stage = r.stage + (f" {r.step + 1}" if r.stage == "canary" else "")
        table.add_row(
            r.promotion_id, escape(r.copilot), escape(r.current), escape(r.candidate), stage,
            f"[{style}]{r.status}[/]", _when(r.created), escape(r.report or ""),
        )  # fmt: skip
    return table


async def simulate_live(
    promotions: Promotions,
    record: PromotionRecord,
    suite_name: str,
    rate: float,
    limit: int,
    concurrency: int,
    *,
    quiet: bool,
) -> PromotionRecord:
    """Serve the copilot here and replay the suite until the promotion is decided."""
    from pilothouse.cli.simulate import LocalServer, find_suite, replay, requests_of
    from pilothouse.copilot.definition import load_definition

    definition, folder = load_definition(Path(record.folder))
    try:
        suite = find_suite(folder, suite_name, definition.evals.suites)
    except (FileNotFoundError, ConfigError) as exc:
        raise ConfigError(str(exc)) from None
    requests = requests_of(suite)
    store = promotions.store
    latest = record

    def done() -> bool:
        nonlocal latest
        latest = store.get(record.promotion_id)
        return not (latest.active and latest.status == "running")

    def progress(tally: Any) -> None:
        if not quiet and tally.answered % 5 == 0:
            now = store.get(record.promotion_id)
            where = now.stage + (f" step {now.step + 1}" if now.stage == "canary" else "")
            err.print(
                f"  simulated {tally.answered} answered ({tally.failed} failed): "
                f"{where}, {now.status}"
            )

    if not quiet:
        err.print(
            f"simulating: suite {suite.suite} ({len(requests)} cases) at {rate:g}/s, at most "
            f"{limit} requests"
        )
    server = LocalServer(promotions.settings, folder)
    async with server as base:
        tally = await replay(
            base, definition.name, requests, rate=rate, limit=limit, concurrency=concurrency,
            done=done, progress=progress,
        )  # fmt: skip
        await server.settle()  # the last answers are scored after they went out
    if not quiet:
        summary = tally.summary()
        err.print(
            f"simulated {summary['sent']} requests: {summary['answered']} answered, "
            f"{summary['failed']} failed"
        )
    return store.get(record.promotion_id)
