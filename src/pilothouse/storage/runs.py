"""A run's figures and its span tree, derived from the spans of one trace.

Run-level figures are derived from the spans, never reported separately, so they can
always be recomputed and never disagree with the tree:

- tokens and cost: the sums over the *outermost* model spans (kind "model" with no
  model span above them), so a model call instrumented again inside (a fallback
  chain's attempts) is not counted twice; cost is NULL when no such span knows its cost;
- model: the `gen_ai.response.model` of the last (by start time) outermost model span
  that has one, i.e. the model that produced the final answer after any fallback;
- copilot, conversation, question, answer, key, promotion and its role: attributes of
  the root span (the
  answer is kept as an excerpt of 500 characters; the full text stays on the root span);
- started, ended, duration, error: those of the root span;
- status: how the run ended (`run_status`): the root span's `pilothouse.run.status`
  (completed, step_limit, awaiting_approval, awaiting_tool_output, failed,
  cancelled; `tracing.attributes.RUN_STATUSES`); for a trace that does
  not say (not a copilot run), cancelled when its root was cancelled, failed when it
  failed, else completed.

Spans delivered late (ended after their root) are added to the run and the figures
recomputed. A trace whose root never arrived has spans but no `runs` row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pilothouse.tracing import Span
from pilothouse.tracing import attributes as attr

ANSWER_EXCERPT_CHARS = 500


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One row of `runs`: a run's figures, derived from its spans."""

    run_id: str
    name: str
    copilot: str | None
    conversation_id: str | None
    started: float
    ended: float | None
    duration_s: float | None
    status: str
    error: str | None
    question: str | None
    answer: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: float | None
    span_count: int
    key_id: str | None = None
    """The server API key (its id) that started the run; None without a key."""
    promotion_id: str | None = None
    """The promotion that mirrored or routed the run (docs/promotion.md)."""
    promotion_role: str | None = None
    """source, shadow, canary or control (tracing.attributes.PROMOTION_ROLES)."""


@dataclass(slots=True)
class SpanNode:
    span: Span
    children: list[SpanNode] = field(default_factory=list)


@dataclass(slots=True)
class RunDetail:
    """A run with all its spans (start order)."""

    run: RunSummary
    spans: list[Span]

    def tree(self) -> list[SpanNode]:
        """The spans as a forest: normally one root; a span whose parent is missing
        (its trace was cut short) becomes a root of its own rather than vanishing."""
        return span_tree(self.spans)


def span_tree(spans: Iterable[Span]) -> list[SpanNode]:
    ordered = sorted(spans, key=lambda s: s.start_time)
    nodes = {s.span_id: SpanNode(s) for s in ordered}
    roots: list[SpanNode] = []
    for span in ordered:
        parent = nodes.get(span.parent_id) if span.parent_id else None
        if parent is None or parent.span is span:
            roots.append(nodes[span.span_id])
        else:
            parent.children.append(nodes[span.span_id])
    return roots


def derive_run(spans: Sequence[Span]) -> RunSummary | None:
    """The run figures of one trace's spans (None without a root span)."""
    root = next((s for s in spans if s.parent_id is None), None)
    if root is None:
        return None
    calls = outermost_model_spans(spans)
    costs = [c for c in (_number(s.attributes.get(attr.COST_USD)) for s in calls) if c is not None]
    answered = [s for s in calls if isinstance(s.attributes.get(attr.RESPONSE_MODEL), str)]
    answer = _text(root.attributes.get(attr.RUN_ANSWER))
    return RunSummary(
        run_id=root.trace_id,
        name=root.name,
        copilot=_text(root.attributes.get(attr.AGENT_NAME)),
        conversation_id=_text(root.attributes.get(attr.CONVERSATION_ID)),
        started=root.start_time,
        ended=root.end_time,
        duration_s=root.duration_s,
        status=run_status(root),
        error=root.error,
        question=_text(root.attributes.get(attr.RUN_QUESTION)),
        answer=answer[:ANSWER_EXCERPT_CHARS] if answer is not None else None,
        model=str(answered[-1].attributes[attr.RESPONSE_MODEL]) if answered else None,
        input_tokens=_sum_int(calls, attr.USAGE_INPUT_TOKENS),
        output_tokens=_sum_int(calls, attr.USAGE_OUTPUT_TOKENS),
        cached_tokens=_sum_int(calls, attr.USAGE_CACHED_TOKENS),
        cost_usd=sum(costs) if costs else None,
        span_count=len(spans),
        key_id=_text(root.attributes.get(attr.RUN_KEY_ID)),
        promotion_id=_text(root.attributes.get(attr.PROMOTION_ID)),
        promotion_role=_text(root.attributes.get(attr.PROMOTION_ROLE)),
    )


def run_status(root: Span) -> str:
    """The status of the run whose root span is `root` (see the module docstring)."""
    recorded = root.attributes.get(attr.RUN_STATUS)
    if isinstance(recorded, str) and recorded in attr.RUN_STATUSES:
        return recorded
    if root.status != "error":
        return "completed"
    return attr.CANCELLED if root.error_type in _CANCELLATION_TYPES else "failed"


# How cancelled work is recorded: today's marker, and the exception names earlier
# versions (and plain `Tracer.span` blocks) recorded.
_CANCELLATION_TYPES = frozenset(
    {attr.CANCELLED, "GeneratorExit", "CancelledError", "KeyboardInterrupt"}
)


def outermost_model_spans(spans: Sequence[Span]) -> list[Span]:
    """Model spans with no model span among their ancestors, in start order."""
    by_id = {s.span_id: s for s in spans}
    result = []
    for span in sorted(spans, key=lambda s: s.start_time):
        if span.kind != "model":
            continue
        parent = by_id.get(span.parent_id) if span.parent_id else None
        nested = False
        seen: set[str] = set()
        while parent is not None and parent.span_id not in seen:
            if parent.kind == "model":
                nested = True
                break
            seen.add(parent.span_id)
            parent = by_id.get(parent.parent_id) if parent.parent_id else None
        if not nested:
            result.append(span)
    return result


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _sum_int(spans: Iterable[Span], key: str) -> int:
    return int(sum(_number(s.attributes.get(key)) or 0 for s in spans))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
