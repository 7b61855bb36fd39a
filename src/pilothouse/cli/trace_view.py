"""How `pilothouse runs` and `pilothouse trace` show stored runs: the runs table and a
run's span tree (retrieval with scores, model calls, tool calls, errors)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from pilothouse.storage.runs import RunDetail, RunSummary, SpanNode
from pilothouse.tracing import Span
from pilothouse.tracing import attributes as attr

_KIND_STYLES = {
    "run": "bold magenta",
    "retrieval": "cyan",
    "model": "bold blue",
    "tool": "yellow",
    "approval": "bright_yellow",
    "memory": "green",
    "decision": "bold cyan",
    "guard": "red",
    "other": "white",
}
_STATUS_STYLES = {
    "completed": "green",
    "step_limit": "yellow",
    "awaiting_approval": "bright_yellow",
    "awaiting_tool_output": "bright_yellow",
    "failed": "bold red",
    "cancelled": "magenta",
}
_MAX_HITS_SHOWN = 10


def runs_table(runs: list[RunSummary]) -> Table:
    """One row per run: id, time, copilot, model, tokens, cost, duration, status (and
    its role in a promotion, when one of them has one)."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    # Figures keep their width; names and the question give way on a narrow terminal.
    table.add_column("id", no_wrap=True, min_width=12)
    table.add_column("time", no_wrap=True, min_width=19)
    table.add_column("copilot", no_wrap=True, overflow="ellipsis", min_width=8)
    table.add_column("model", no_wrap=True, overflow="ellipsis", min_width=10)
    for column, width in (("tokens", 9), ("cost", 9), ("duration", 8), ("status", 9)):
        table.add_column(column, no_wrap=True, min_width=width)
    promoted = any(run.promotion_role for run in runs)
    if promoted:
        table.add_column("promotion", no_wrap=True, min_width=10)
    table.add_column("question", no_wrap=True, overflow="ellipsis", max_width=60)
    for run in runs:
        role = [Text(run.promotion_role or "")] if promoted else []
        table.add_row(  # plain Text cells: names and questions are never read as markup
            run.run_id[:12],
            _when(run.started),
            Text(run.copilot or run.name),
            Text(run.model or "—"),
            f"{run.input_tokens}/{run.output_tokens}",
            _cost(run.cost_usd),
            _seconds(run.duration_s),
            _status(run.status),
            *role,
            Text(_one_line(run.question or "", 60)),
        )
    return table


def print_trace(out: Console, detail: RunDetail, full: bool) -> None:
    """The run's header, then each root span as a tree (messages uncut with `full`)."""
    run = detail.run
    out.print(_header(run))
    limit = None if full else 100
    for node in detail.tree():
        tree = Tree(_label(node.span, run.started, limit))
        _add_details(tree, node.span, limit, full)
        for child in node.children:
            _add_node(tree, child, run.started, limit, full)
        out.print(tree, soft_wrap=False)


# --- rendering --------------------------------------------------------------------


def _header(run: RunSummary) -> Text:
    text = Text()
    text.append("run ", "bold").append(run.run_id, "bold")
    text.append(f"  {_when(run.started)}", "dim")
    text.append("\n")
    if run.copilot:
        text.append("copilot ", "dim").append(run.copilot).append("  ")
    if run.conversation_id:
        text.append("conversation ", "dim").append(run.conversation_id).append("  ")
    text.append("model ", "dim").append(run.model or "—").append("  ")
    text.append("tokens ", "dim").append(f"{run.input_tokens} in / {run.output_tokens} out")
    if run.cached_tokens:
        text.append(f" ({run.cached_tokens} cached)")
    text.append("  cost ", "dim").append(_cost(run.cost_usd))
    text.append("  duration ", "dim").append(_seconds(run.duration_s)).append("  ")
    text.append_text(_status(run.status))
    if run.promotion_id:
        text.append("\npromotion ", "dim").append(run.promotion_id).append(" ")
        text.append(run.promotion_role or "", "bold magenta")
    if run.error:
        text.append("\nerror ", "bold red").append(run.error)
    if run.question:
        text.append("\nquestion ", "dim").append(_one_line(run.question, 200))
    if run.answer:
        text.append("\nanswer ", "dim").append(_one_line(run.answer, 200))
    return text


def _add_node(parent: Tree, node: SpanNode, origin: float, limit: int | None, full: bool) -> None:
    branch = parent.add(_label(node.span, origin, limit))
    _add_details(branch, node.span, limit, full)
    for child in node.children:
        _add_node(branch, child, origin, limit, full)


def _label(span: Span, origin: float, limit: int | None) -> Text:
    a = span.attributes
    text = Text()
    text.append(f"[{span.kind}] ", _KIND_STYLES.get(span.kind, "white"))
    text.append(span.name, "bold")
    text.append(f"  {_seconds(span.duration_s)}", "dim")
    text.append(f" @+{max(0.0, span.start_time - origin):.3f}s", "dim")
    facts: list[str] = []
    if span.kind == "run":
        if isinstance(a.get(attr.AGENT_NAME), str):
            facts.append(f"copilot {a[attr.AGENT_NAME]}")
        if attr.RUN_STEPS in a:
            facts.append(f"{a[attr.RUN_STEPS]} steps")
    elif span.kind == "model" and attr.ATTEMPT in a:  # one try of a model: its outcome
        facts.append(str(a.get(attr.MODEL_STATUS, "")))
    elif span.kind == "model":
        asked, answered = a.get(attr.REQUEST_MODEL), a.get(attr.RESPONSE_MODEL)
        if asked and answered and asked != answered:
            facts.append(f"asked {asked} → answered by {answered}")
        elif answered or asked:
            facts.append(str(answered or asked))
        tokens = (
            f"{a.get(attr.USAGE_INPUT_TOKENS, 0)} in / {a.get(attr.USAGE_OUTPUT_TOKENS, 0)} out"
        )
        if a.get(attr.USAGE_CACHED_TOKENS):
            tokens += f" ({a[attr.USAGE_CACHED_TOKENS]} cached)"
        facts.append(tokens)
        cost = a.get(attr.COST_USD)
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            facts.append(_cost(float(cost)))
        reasons = a.get(attr.FINISH_REASONS)
        if isinstance(reasons, list) and reasons:
            facts.append("finish " + ",".join(str(r) for r in reasons))
        if a.get(attr.PROMPT_VARIANT):
            facts.append(f"variant {a[attr.PROMPT_VARIANT]}")
    elif span.kind == "retrieval":
        if a.get(attr.DATA_SOURCE_ID):
            facts.append(str(a[attr.DATA_SOURCE_ID]))
        hits = a.get(attr.RETRIEVAL_HITS)
        if isinstance(hits, list):
            facts.append(f"{len(hits)} hits")
        if a.get(attr.REQUEST_TOP_K) is not None:
            facts.append(f"top_k {a[attr.REQUEST_TOP_K]}")
    elif span.kind in ("tool", "approval"):
        if a.get(attr.TOOL_CALL_ID):
            facts.append(f"call {a[attr.TOOL_CALL_ID]}")
        if a.get(attr.APPROVAL_DECISION):
            facts.append(str(a[attr.APPROVAL_DECISION]))
        if a.get(attr.TOOL_BLOCKED):
            facts.append("blocked: not grounded")
    elif span.kind == "decision" and a.get(attr.DECISION):
        tool = a.get(attr.DECISION_TOOL)
        facts.append(f"{a[attr.DECISION]} {tool}" if tool else str(a[attr.DECISION]))
        if a.get(attr.DECISION_FORCED):
            facts.append(f"forced ({a[attr.DECISION_FORCED]})")
    if facts:
        text.append("  " + " · ".join(facts))
    if span.status == "error":
        kind = f"{span.error_type}: " if span.error_type else ""
        text.append(f"  error {kind}{_cut(span.error or '', limit)}", "bold red")
    return text


def _add_details(branch: Tree, span: Span, limit: int | None, full: bool) -> None:
    a = span.attributes
    if span.kind == "run":
        _line(branch, "question", a.get(attr.RUN_QUESTION), limit)
    elif span.kind == "retrieval":
        _line(branch, "query", a.get(attr.RETRIEVAL_QUERY), limit)
        hits = a.get(attr.RETRIEVAL_HITS)
        if isinstance(hits, list):
            shown = hits if full else hits[:_MAX_HITS_SHOWN]
            for hit in shown:
                branch.add(_hit(hit))
            if len(shown) < len(hits):
                branch.add(Text(f"… {len(hits) - len(shown)} more hits", "dim"))
    elif span.kind == "model":
        messages = a.get(attr.REQUEST_MESSAGES)
        if isinstance(messages, list):
            if full:
                sent = branch.add(Text(f"{len(messages)} messages sent", "dim"))
                for message in messages:
                    sent.add(_message(message, limit))
            else:
                branch.add(Text(f"{len(messages)} messages sent (--full shows them)", "dim"))
        response = a.get(attr.RESPONSE_MESSAGE)
        if response is not None:
            branch.add(Text("reply ", "dim").append_text(_message(response, limit)))
    elif span.kind in ("tool", "approval"):
        _line(branch, "arguments", a.get(attr.TOOL_ARGUMENTS), limit)
        _line(branch, "result", a.get(attr.TOOL_RESULT), limit)
    elif span.kind not in ("run",):
        for key, value in a.items():
            _line(branch, key, value, limit)
    for event in span.events:
        label = Text(f"• {event.name}", "dim")
        if event.attributes:
            label.append(" " + _cut(_compact(event.attributes), limit), "dim")
        branch.add(label)


def _hit(hit: Any) -> Text:
    if not isinstance(hit, dict):
        return Text(_cut(_compact(hit), 100))
    score = hit.get("score")
    text = Text()
    if isinstance(score, int | float) and not isinstance(score, bool):
        text.append(f"{score:.3f} ", "cyan")
    text.append(str(hit.get("source") or hit.get("chunk_id") or "?"))
    if hit.get("page") is not None:
        text.append(f" p.{hit['page']}")
    if hit.get("heading"):
        text.append(f" › {hit['heading']}", "dim")
    return text


def _message(message: Any, limit: int | None) -> Text:
    if not isinstance(message, dict):
        return Text(_cut(_compact(message), limit))
    text = Text(f"{message.get('role', '?')}: ", "bold")
    pieces: list[str] = []
    for part in message.get("parts") or []:
        if not isinstance(part, dict):
            continue
        kind = part.get("kind")
        if kind == "text":
            pieces.append(str(part.get("text", "")))
        elif kind == "tool_call":
            pieces.append(f"→ {part.get('name')}({_compact(part.get('arguments', {}))})")
        elif kind == "tool_result":
            pieces.append(f"← {part.get('name')}: {part.get('content', '')}")
        else:
            pieces.append(f"<{kind}>")
    text.append(_cut(" ".join(pieces), limit) if limit else " ".join(pieces))
    return text


def _line(branch: Tree, label: str, value: Any, limit: int | None) -> None:
    if value is None:
        return
    shown = value if isinstance(value, str) else _compact(value)
    branch.add(Text(f"{label} ", "dim").append(_cut(shown, limit)))


# --- formatting -------------------------------------------------------------------


def _status(status: str) -> Text:
    return Text(status, _STATUS_STYLES.get(status, "bold red"))


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))


def _cut(text: str, limit: int | None) -> str:
    text = text.replace("\r", " ").replace("\n", " ⏎ ") if limit else text
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def _one_line(text: str, limit: int) -> str:
    return _cut(" ".join(text.split()), limit)


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"


def _cost(value: float | None) -> str:
    return "—" if value is None else f"${value:.4f}" if value >= 0.01 else f"${value:.6f}"
