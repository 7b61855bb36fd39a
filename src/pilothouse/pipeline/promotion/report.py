"""A promotion's report, in Markdown and in HTML (self-contained, opens offline): the
decision, every gate, threshold and guard with its figures and intervals, the online
metrics per stage and model, the change to copilot.yaml, and the stage timeline."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Table = tuple[list[str], list[list[str]]]

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ddd;padding:.3rem .6rem;
text-align:left;vertical-align:top}th{background:#f4f4f4}.pass{color:#17692d;font-weight:600}
.fail{color:#a8071a;font-weight:600}.wait{color:#8a6d00}pre{background:#f6f8fa;padding:.8rem;
overflow:auto}
"""


def _when(at: float | None) -> str:
    if not at:
        return ""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _mean(cell: dict[str, Any] | None) -> str:
    if not cell:
        return "—"
    return f"{cell['mean']:.3g} [{cell['low']:.3g}, {cell['high']:.3g}] (n={cell['n']})"


def _verdict(passed: bool | None) -> str:
    return "pass" if passed else "wait" if passed is None else "FAIL"


def outcome(view: dict[str, Any]) -> str:
    status = str(view["status"])
    words = {
        "promoted": "promoted",
        "rolled_back": "rolled back",
        "held": "held for a person",
        "awaiting_approval": "waiting for approval to promote",
        "running": f"running ({view['stage']})",
    }
    return words.get(status, status)


def tables(view: dict[str, Any]) -> list[tuple[str, list[str], Table | None]]:
    """The report as sections: (heading, paragraphs, table)."""
    sections: list[tuple[str, list[str], Table | None]] = []
    prompt = view["prompt"]
    said, reason = outcome(view), view.get("reason")
    summary = [
        f"Copilot **{view['copilot']}** ({view['folder']}): {view['current']} → "
        f"{view['candidate']}, prompt: {prompt.get('label') or 'the runtime choice'}.",
        f"Outcome: **{said}**." + (f" {reason}" if reason and reason != said else ""),
    ]
    sections.append(("Decision", summary, None))
    offline = view.get("offline") or {}
    rows = []
    for arm in offline.get("arms", []):
        for gate in arm["gates"]:
            rows.append([arm["label"], gate["name"], _verdict(gate["passed"]), gate["detail"]])
    run = view.get("eval_run")
    paragraphs = [
        f"Eval run {run} (its cases: `pilothouse eval show {run}`); arm 1 is the current "
        "model, the others the candidate with each prompt tried."
        if run
        else "No eval run."
    ]
    if offline.get("chosen"):
        paragraphs.append(f"Prompt chosen: {offline['chosen']}.")
    sections.append(("Offline gates", paragraphs, (["arm", "gate", "result", "figures"], rows)))
    shadow = view.get("shadow")
    if shadow:
        sections += _stage("Shadow", shadow)
    for step in view.get("canary", {}).get("steps", []):
        sections += _stage(f"Canary step {step['step'] + 1} ({step['share']:.0%})", step)
    diff = view.get("diff")
    if diff:
        sections.append(("copilot.yaml", [f"```diff\n{diff}```"], None))
    timeline = [
        [
            _when(e["at"]),
            e["stage"] + (f" {e['step'] + 1}" if e["stage"] == "canary" else ""),
            e["kind"],
            e["message"],
        ]
        for e in view.get("timeline", [])
    ]
    sections.append(("Timeline", [], (["time", "stage", "event", "what"], timeline)))
    return sections


def _stage(title: str, stage: dict[str, Any]) -> list[tuple[str, list[str], Table | None]]:
    text = [
        f"{stage['candidate']} requests answered by the candidate, {stage['current']} by the "
        f"current model. {stage['reason']}."
    ]
    rules = [[r["rule"], _verdict(r["passed"]), r["detail"]] for r in stage["rules"]]
    metrics = [
        [m["metric"], m["better"], _mean(m.get("candidate")), _mean(m.get("current"))]
        for m in stage["metrics"]
    ]
    return [
        (title, text, (["threshold", "result", "figures"], rules)),
        (
            f"{title}: online metrics (mean [95% interval])",
            [],
            (["metric", "better", "candidate", "current"], metrics),
        ),
    ]


def markdown(view: dict[str, Any]) -> str:
    lines = [f"# Promotion {view['promotion_id']}: {view['copilot']}", ""]
    for heading, paragraphs, table in tables(view):
        lines += [f"## {heading}", ""]
        for paragraph in paragraphs:
            lines += [paragraph, ""]
        if table is not None:
            head, rows = table
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "---|" * len(head))
            for row in rows:
                cells = [c.replace("|", "\\|").replace("\n", " ") for c in row]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def _inline(text: str) -> str:
    escaped = html.escape(text)
    parts = escaped.split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def render_html(view: dict[str, Any]) -> str:
    title = html.escape(f"Promotion {view['promotion_id']}: {view['copilot']}")
    body = [f"<h1>{title}</h1>"]
    for heading, paragraphs, table in tables(view):
        body.append(f"<h2>{html.escape(heading)}</h2>")
        for paragraph in paragraphs:
            if paragraph.startswith("```"):
                inner = paragraph.strip("`").removeprefix("diff\n")
                body.append(f"<pre>{html.escape(inner)}</pre>")
            else:
                body.append(f"<p>{_inline(paragraph)}</p>")
        if table is not None:
            head, rows = table
            body.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head))
            for row in rows:
                cells = []
                for cell in row:
                    css = {"pass": "pass", "FAIL": "fail", "wait": "wait"}.get(cell, "")
                    attr = f' class="{css}"' if css else ""
                    cells.append(f"<td{attr}>{html.escape(cell)}</td>")
                body.append("<tr>" + "".join(cells) + "</tr>")
            body.append("</table>")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )


def write_report(view: dict[str, Any], folder: Path) -> Path:
    """report.md and report.html in `folder`; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.md").write_text(markdown(view), encoding="utf-8")
    (folder / "report.html").write_text(render_html(view), encoding="utf-8")
    return folder
