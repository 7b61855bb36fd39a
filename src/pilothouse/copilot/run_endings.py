"""How a copilot run ends: its answer, the conversation it joins, a pause (for a
person's approval or for the caller's own tools) saved to go on later, a failure."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pilothouse.copilot.events import (
    Answer,
    ApprovalRequired,
    Citations,
    PendingApproval,
    RunEvent,
    RunFailed,
    RunFinished,
)
from pilothouse.copilot.grounding import cited
from pilothouse.copilot.paused_runs import PausedRun
from pilothouse.copilot.run_state import Parts, RunState
from pilothouse.copilot.runtime_notes import STEP_LIMIT
from pilothouse.copilot.tool_runner import describe_call
from pilothouse.tracing import Redactor, current_span
from pilothouse.tracing import attributes as A
from pilothouse.tracing.attributes import RunStatus
from pilothouse.types import Message, ToolCallPart

log = logging.getLogger(__name__)

STEP_LIMIT_NOTE = STEP_LIMIT.write()
"""Told the model past the step limit (a user message; not kept in the conversation)."""


def answer_of(state: RunState, text: str, status: RunStatus, **extra: Any) -> Answer:
    return Answer(
        run_id=state.run_id,
        conversation_id=state.conversation_id,
        status=status,
        text=text,
        citations=tuple(
            replace(c, inferred=True) if c.number in state.runtime_cited else c
            for c in cited(text, state.citations)
        ),
        tool_calls=tuple(state.outcomes),
        model=state.model,
        usage=state.usage,
        cost_usd=state.cost,
        **extra,
    )


async def finish(
    parts: Parts, state: RunState, text: str, status: RunStatus
) -> tuple[RunEvent, ...]:
    """The run answered: its messages join the conversation, the user's turn and the
    answer each with what it stood for in the model's prompt."""
    run_messages = [Message.user(state.question)] + [
        m for m in state.tail if not (m.role == "user" and m.text == STEP_LIMIT_NOTE)
    ]
    sent: list[tuple[Message, ...] | None] = [None] * len(run_messages)
    if state.sent_turn is not None:  # what was read ahead for it went first
        sent[0] = (*state.ahead, *state.sent_turn)
    if len(run_messages) > 1 and run_messages[-1].role == "assistant":
        sent[-1] = state.sent_reply
    sent = [
        None if form == (shown,) else form for form, shown in zip(sent, run_messages, strict=True)
    ]
    await parts.conversations.append(state.conversation_id, run_messages, state.run_id, sent=sent)
    if state.asked != (state.asked_before or ()):  # what this answer asks for, or nothing
        await parts.conversations.set_asked(state.conversation_id, state.asked)
    answer = answer_of(state, text, status)
    span = current_span()
    if span is not None:  # the run's own span
        span.update(
            {
                A.RUN_DECISIONS: state.decisions,
                A.CITATIONS_MODEL: [c.number for c in answer.citations if not c.inferred],
                A.CITATIONS_INVALID: state.invalid_markers,
            }
        )
    if answer.citations:
        return Citations(answer.citations), RunFinished(answer)
    return (RunFinished(answer),)


async def pause(
    parts: Parts,
    state: RunState,
    calls: Sequence[ToolCallPart],
    waiting: Sequence[ToolCallPart],
    handed: bool = False,
) -> tuple[RunEvent, ...]:
    """Save the run to go on later: for a person's decision on `waiting`, or, when
    `handed`, for the caller's results of its own tools' calls `waiting`. A slot the
    copilot asked for is used up (the call that pauses is the one it was for)."""
    if state.asked_before:
        await parts.conversations.set_asked(state.conversation_id, ())
    await parts.paused.save(
        PausedRun(
            run_id=state.run_id,
            conversation_id=state.conversation_id,
            copilot=parts.definition.name,
            question=state.question,
            context=state.context,
            citations=tuple(state.citations),
            tail=tuple(state.tail),
            pending=tuple(calls),
            steps=state.steps,
            key_id=state.key_id,
        )
    )
    text = "".join(state.text)
    if handed:
        return (RunFinished(answer_of(state, text, "awaiting_tool_output", handed=tuple(waiting))),)
    pending = tuple(
        PendingApproval(state.run_id, call, describe_call(parts.toolset, call)) for call in waiting
    )
    answer = answer_of(state, text, "awaiting_approval", pending=pending)
    return ApprovalRequired(pending), RunFinished(answer)


def fail(
    state: RunState, error: Exception, partial_text: str = "", *, redactor: Redactor | None = None
) -> RunFailed:
    if redactor is not None:
        redactor.scrub_exception(error)  # an upstream may echo a key it was sent
    log.warning("run %s failed: %s", state.run_id, error)
    return RunFailed(error, answer_of(state, partial_text, "failed", error=str(error)))
