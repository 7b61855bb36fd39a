"""The comparison as one self-contained HTML file that opens offline: Chart.js (MIT,
vendored from the npm package `chart.js` into pipeline/assets/) inlined, a chart per
metric (A and B) and one of every difference with its interval, the table, and the
cases that regressed and improved with both answers side by side and their traces."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from pilothouse.pipeline.compare import CaseChange, Comparison
from pilothouse.pipeline.export import comparison_json

ASSETS = Path(__file__).parent / "assets"
CHART_JS = ASSETS / "chart.umd.min.js"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _verdict_class(verdict: str | None) -> str:
    return {"better": "better", "worse": "worse"}.get(verdict or "", "same")


def _metrics_table(data: dict[str, Any]) -> str:
    rows = []
    for m in data["metrics"]:
        if not m["n"]:
            continue
        p = f" p={m['p_value']:.3f}" if m["p_value"] is not None else ""
        name = m["metric"] + (f" [{m['judge']}]" if m["judge"] else "")
        rows.append(
            f"<tr><td>{_e(name)}</td><td>{m['a']:.3g}</td><td>{m['b']:.3g}</td>"
            f"<td>{m['delta']:+.3g} [{m['low']:+.3g}, {m['high']:+.3g}]</td><td>{m['n']}</td>"
            f"<td class='{_verdict_class(m['verdict'])}'>{_e(m['verdict'])}"
            f"<span class='muted'>{_e(p)}</span></td></tr>"
        )
    head = (
        "<tr><th>metric</th><th>A</th><th>B</th><th>B − A [95%]</th><th>n</th><th>verdict</th></tr>"
    )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _failed_checks(change: CaseChange, side: str) -> str:
    row = change.a if side == "a" else change.b
    failed = [
        f"{s.metric}: {s.detail}" if s.detail else s.metric
        for s in row.scores
        if s.value == 0.0 and s.metric != "pass"
    ]
    return "<br>".join(_e(f) for f in failed) or "<span class='muted'>all checks pass</span>"


def _changes(title: str, changes: tuple[CaseChange, ...]) -> str:
    if not changes:
        return f"<h2>{_e(title)}</h2><p class='muted'>none</p>"
    parts = [f"<h2>{_e(title)} ({len(changes)})</h2>"]
    for change in changes:
        sides = []
        for side, row in (("a", change.a), ("b", change.b)):
            trace = f"<code>pilothouse trace {_e(row.trace_id)}</code>" if row.trace_id else ""
            sides.append(
                f"<div><b>{side.upper()}</b> {trace}<div class='answer'>{_e(row.answer)}</div>"
                f"<div class='muted'>{_failed_checks(change, side)}</div></div>"
            )
        parts.append(
            f"<h3>{_e(change.suite)}/{_e(change.case_id)}</h3><p>{_e(change.question)}</p>"
            f"<div class='answers'>{''.join(sides)}</div>"
        )
    return "".join(parts)


def render_report(comparison: Comparison) -> str:
    data = comparison_json(comparison)
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    chart = CHART_JS.read_text(encoding="utf-8").replace("//# sourceMappingURL=", "// ")
    a, b = comparison.a, comparison.b
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Pilothouse eval: {_e(a.arm.label)} vs {_e(b.arm.label)}</title>
<style>{_asset("report.css")}</style></head><body>
<h1>Eval comparison · {_e(a.run.copilot)}</h1>
<p><b>A</b> = {_e(a.name)}<br><b>B</b> = {_e(b.name)}</p>
<p class="muted">Per metric: the mean over the cases both sides scored, the paired
difference B − A with its bootstrap 95% interval, and a verdict (McNemar's exact test
for pass/fail metrics). "No detectable difference" means the suite cannot tell them
apart, not that they are equal.</p>
{_metrics_table(data)}
<h2>Differences</h2><canvas id="deltas" width="900"></canvas>
<h2>Per metric</h2><div class="grid" id="charts"></div>
{_changes("Regressed: passed in A, failed in B", comparison.regressed)}
{_changes("Improved: failed in A, passed in B", comparison.improved)}
<script id="data" type="application/json">{payload}</script>
<script>{chart}</script>
<script>{_asset("report.js")}</script>
</body></html>
"""


def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def write_report(path: Path, comparison: Comparison) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(comparison), encoding="utf-8")
