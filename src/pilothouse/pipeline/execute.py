"""One eval case through the real copilot runtime: earlier turns seeded into a new
conversation as given (or, with `asked`, each user turn asked of the copilot first, so
the conversation holds its own answers and each turn as it was sent), the question
asked, approval-gated tool calls decided as the suite says (denied by default:
recorded, nothing written), and the run's own result objects kept with the timings the
metrics need. `ask_once` does the same for any question and history (a promotion's
shadow runs)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pilothouse.copilot.copilot import Copilot
from pilothouse.copilot.events import (
    Answer,
    ApprovalRequired,
    Citation,
    Decided,
    Retrieved,
    RunFailed,
    RunFinished,
    RunStarted,
    ToolCallBlocked,
    ToolCallFinished,
    ToolOutcome,
)
from pilothouse.copilot.tool_runner import Decision
from pilothouse.errors import PilothouseError
from pilothouse.pipeline.suite import Case
from pilothouse.types import Message, TextDelta, ToolCallPart, Usage

DENIED_NOTE = "denied by the eval run (the suite does not approve this case's calls)"
MAX_APPROVAL_ROUNDS = 10

CaseStatus = Literal["answered", "error"]


@dataclass(frozen=True, slots=True)
class CaseOutcome:
    """What one case produced: the answer and everything the metrics score."""

    status: CaseStatus
    text: str = ""
    run_status: str = ""
    citations: tuple[Citation, ...] = ()
    retrieved: tuple[Citation, ...] = ()
    tool_calls: tuple[ToolOutcome, ...] = ()
    blocked: tuple[ToolCallPart, ...] = ()
    """Calls the grounded-argument check stopped (they never ran)."""
    decisions: tuple[Decided, ...] = ()
    """The decision steps of the case's runs (models that decide in a step of their own)."""
    model: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    latency_s: float = 0.0
    ttft_s: float | None = None
    trace_id: str | None = None
    error: str | None = None
    conversation_id: str | None = None
    turns: tuple[CaseOutcome, ...] = ()
    """The earlier turns' own outcomes, when they were asked of the copilot."""

    @classmethod
    def failed(
        cls,
        error: str,
        latency_s: float = 0.0,
        trace_id: str | None = None,
        conversation_id: str | None = None,
    ) -> CaseOutcome:
        return cls(
            "error",
            error=error,
            latency_s=latency_s,
            trace_id=trace_id,
            conversation_id=conversation_id,
        )


async def run_case(
    copilot: Copilot, case: Case, *, approve: bool, asked: bool = False
) -> CaseOutcome:
    """Ask `case` of `copilot`; a failing model or runtime gives an `error` outcome.
    `asked`: the case's earlier user turns are asked first, one after the other, in
    the conversation the question then continues (an earlier turn that fails makes
    the case an error)."""
    metadata = {"eval_case": case.id}
    if not asked:
        history = [
            Message.user(turn.text) if turn.role == "user" else Message.assistant(turn.text)
            for turn in case.conversation
        ]
        return await ask_once(copilot, case.question, history, approve=approve, metadata=metadata)
    try:
        conversation_id = (await copilot.conversations.create(copilot.name, metadata)).id
    except PilothouseError as exc:
        return CaseOutcome.failed(str(exc))
    earlier: list[CaseOutcome] = []
    for number, turn in enumerate(case.conversation, 1):
        outcome = await _ask(copilot, turn.text, conversation_id, approve=approve)
        if outcome.status == "error":
            error = f"earlier turn {number} ({turn.text!r}): {outcome.error}"
            return replace(outcome, error=error, turns=tuple(earlier))
        earlier.append(outcome)
    last = await _ask(copilot, case.question, conversation_id, approve=approve)
    return replace(last, turns=tuple(earlier))


async def ask_once(
    copilot: Copilot,
    question: str,
    history: Sequence[Message] = (),
    *,
    approve: bool,
    metadata: Mapping[str, Any] | None = None,
    attributes: Mapping[str, Any] | None = None,
    note: str = DENIED_NOTE,
) -> CaseOutcome:
    """Ask `question` after the earlier turns `history` (stored as a new conversation
    with `metadata`), deciding every approval-gated call as `approve` says (denied with
    `note`); `attributes` go on the run's span. A failing model or runtime gives an
    `error` outcome."""
    started = time.perf_counter()
    try:
        conversation_id = await _seed(copilot, history, metadata or {})
    except PilothouseError as exc:
        return CaseOutcome.failed(str(exc), time.perf_counter() - started)
    return await _ask(
        copilot, question, conversation_id, approve=approve, attributes=attributes, note=note
    )


async def _ask(
    copilot: Copilot,
    question: str,
    conversation_id: str | None,
    *,
    approve: bool,
    attributes: Mapping[str, Any] | None = None,
    note: str = DENIED_NOTE,
) -> CaseOutcome:
    """One question in a conversation (a new one when None), through to its answer."""
    started = time.perf_counter()
    first_token: float | None = None
    retrieved: tuple[Citation, ...] = ()
    outcomes: list[ToolOutcome] = []
    blocked: list[ToolCallPart] = []
    decided: list[Decided] = []
    answer: Answer | None = None
    conversation: str | None = conversation_id
    try:
        events = copilot.stream(question, conversation_id=conversation_id, attributes=attributes)
        for _ in range(MAX_APPROVAL_ROUNDS):
            pending: ApprovalRequired | None = None
            async for event in events:
                if isinstance(event, TextDelta):
                    if first_token is None and event.text:
                        first_token = time.perf_counter()
                elif isinstance(event, RunStarted):
                    conversation = conversation or event.conversation_id
                elif isinstance(event, Retrieved) and not retrieved:
                    retrieved = event.passages
                elif isinstance(event, ToolCallFinished):
                    outcomes.append(event.outcome)
                elif isinstance(event, ToolCallBlocked):
                    blocked.append(event.call)
                elif isinstance(event, Decided):
                    decided.append(event)
                elif isinstance(event, ApprovalRequired):
                    pending = event
                elif isinstance(event, RunFinished | RunFailed):
                    answer = event.answer
            if pending is None:
                break
            decisions = {
                p.call.id: Decision(True) if approve else Decision(False, note)
                for p in pending.pending
            }
            events = copilot.resume(pending.pending[0].run_id, decisions, attributes=attributes)
    except PilothouseError as exc:
        return CaseOutcome.failed(str(exc), time.perf_counter() - started, None, conversation)
    latency = time.perf_counter() - started
    if answer is None:
        return CaseOutcome.failed("the run ended without an answer", latency, None, conversation)
    if answer.status == "failed":
        error = answer.error or "the run failed"
        return CaseOutcome.failed(error, latency, answer.run_id, answer.conversation_id)
    return CaseOutcome(
        "answered",
        text=answer.text,
        run_status=answer.status,
        citations=answer.citations,
        retrieved=retrieved,
        tool_calls=tuple(outcomes),
        blocked=tuple(blocked),
        decisions=tuple(decided),
        model=answer.model,
        usage=answer.usage,
        cost_usd=answer.cost_usd,
        latency_s=latency,
        ttft_s=None if first_token is None else first_token - started,
        trace_id=answer.run_id,
        conversation_id=answer.conversation_id,
    )


async def _seed(
    copilot: Copilot, history: Sequence[Message], metadata: Mapping[str, Any]
) -> str | None:
    """A new conversation holding the earlier turns (None when there are none: the
    runtime starts one)."""
    if not history:
        return None
    store = copilot.conversations
    conversation = await store.create(copilot.name, dict(metadata))
    await store.append(conversation.id, list(history))
    return conversation.id
