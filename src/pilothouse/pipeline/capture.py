"""Stored runs as eval cases: the question, the conversation before it, the answer as
the reference, the sources it cited and the tool calls it made as expectations.

What was answered in production becomes a regression suite: run it on a new model and
the judges and checks say whether the new model does as well. Review captured cases
before relying on them: the stored answer is what the model said, not necessarily
what it should have said.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from pilothouse.copilot.conversations import ConversationStore
from pilothouse.errors import NotFoundError
from pilothouse.storage.runs import RunDetail
from pilothouse.storage.traces import TraceStore
from pilothouse.tracing import attributes as A

MAX_SCAN = 100_000
_UNFINISHED = ("error", "failed", "paused", "awaiting_approval", "running")


def _where(hit: dict[str, Any]) -> str:
    """A retrieval hit written the way `Citation.where` writes a citation."""
    parts = [str(hit.get("source", ""))]
    if hit.get("page") is not None:
        parts.append(f"page {hit['page']}")
    if hit.get("heading"):
        parts.append(str(hit["heading"]))
    return ", ".join(parts)


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _expected_sources(detail: RunDetail) -> list[dict[str, Any]]:
    cited: set[str] = set()
    hits: list[dict[str, Any]] = []
    for span in detail.spans:
        if span.kind == "run":
            cited |= {str(c) for c in _list(span.attributes.get(A.RUN_CITATIONS))}
        elif span.kind == "retrieval":
            hits += [h for h in _list(span.attributes.get(A.RETRIEVAL_HITS)) if isinstance(h, dict)]
    sources: list[dict[str, Any]] = []
    for hit in hits:
        if _where(hit) not in cited or "://" in str(hit.get("source", "")):
            continue
        source: dict[str, Any] = {"file": hit["source"]}
        if hit.get("page") is not None:
            source["page"] = int(hit["page"])
        elif hit.get("heading"):
            source["heading"] = str(hit["heading"]).split(" > ")[-1]
        if source not in sources:
            sources.append(source)
    return sources


def _tool_calls(detail: RunDetail) -> list[dict[str, Any]]:
    calls = []
    for span in detail.spans:
        if span.kind == "tool":
            arguments = span.attributes.get(A.TOOL_ARGUMENTS)
            call: dict[str, Any] = {"name": str(span.attributes.get(A.TOOL_NAME, ""))}
            if isinstance(arguments, dict) and arguments:
                call["arguments"] = arguments
            calls.append(call)
    return calls


async def conversation_before(
    conversations: ConversationStore, conversation_id: str | None, run_id: str
) -> list[dict[str, str]]:
    """The user and assistant texts of the conversation before this run."""
    if not conversation_id:
        return []
    try:
        records = await conversations.records(conversation_id)
    except NotFoundError:
        return []
    turns: list[dict[str, str]] = []
    for record in records:
        if record.run_id == run_id:
            break
        message = record.message
        if message.role in ("user", "assistant") and message.text.strip():
            turns.append({str(message.role): message.text})
    return turns


def _chosen(
    traces: TraceStore, copilot: str, since: float | None, run_ids: Sequence[str]
) -> Iterable[str]:
    if run_ids:
        return [traces.resolve_run_id(r) for r in run_ids]
    runs = traces.list_runs(MAX_SCAN, copilot=copilot)
    return [r.run_id for r in reversed(runs) if since is None or r.started >= since]


async def capture(
    traces: TraceStore,
    conversations: ConversationStore,
    copilot: str,
    *,
    since: float | None = None,
    run_ids: Sequence[str] = (),
    suite: str = "captured",
) -> dict[str, Any]:
    """A suite (as data, ready for YAML) of the copilot's stored runs: those named, or
    all started since `since` (unix time). Runs that failed, that are waiting for an
    approval, that resumed another run, or that have no question, are left out."""
    cases = []
    for run_id in _chosen(traces, copilot, since, run_ids):
        detail = traces.get_run(run_id)
        run = detail.run
        root = next((s for s in detail.spans if s.kind == "run"), None)
        resumed = root is not None and root.attributes.get(A.RUN_RESUMES)
        if run.copilot != copilot or not run.question or not run.answer or resumed:
            continue
        outcome = root.attributes.get("pilothouse.run.status") if root is not None else None
        if outcome not in (None, "completed", "step_limit") or run.status in _UNFINISHED:
            continue
        case: dict[str, Any] = {"id": f"run-{run.run_id[:12]}", "question": run.question}
        turns = await conversation_before(conversations, run.conversation_id, run.run_id)
        if turns:
            case["conversation"] = turns
        case["reference"] = run.answer
        expect: dict[str, Any] = {}
        sources = _expected_sources(detail)
        if sources:
            expect["sources"] = sources
        calls = _tool_calls(detail)
        if calls:
            expect["tool_calls"] = calls
        if expect:
            case["expect"] = expect
        cases.append(case)
    return {
        "suite": suite,
        "description": f"Captured from {len(cases)} stored run(s) of {copilot}; review "
        "before relying on it (the reference is what the model said).",
        "cases": cases,
    }


def dump_suite(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
