"""The run span of one copilot run and the status it records; the spans of its tool
calls and approval decisions.

A run's status is the run's own (its answer's status), not the way its consumer left
the stream of events: a server that takes the events up to the answer and then closes
the stream has a completed run, not a broken one. Before the answer:

- the consumer stops reading, or its task is cancelled: `cancelled`;
- an exception escapes the run: `failed`, with that error;
- the events end without an answer: `failed`.

`failed` and `cancelled` runs are error spans (so the OpenTelemetry export marks them
ERROR); `completed`, `step_limit` and `awaiting_approval` runs are ok spans. The status
itself is the run span's `pilothouse.run.status` attribute, which the trace store
copies into its `runs.status` column.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

from pilothouse.copilot.events import Answer, RunEvent, RunFailed, RunFinished, ToolOutcome
from pilothouse.tracing import Span, Tracer, is_cancellation
from pilothouse.tracing import attributes as A
from pilothouse.types import ToolCallPart

CANCELLED_NOTE = "cancelled before the run ended: the caller stopped reading or went away"


class RunRecord:
    """Opens a run span; `follow` passes a run's events through while the span is
    current, and ends the span with the run's status."""

    def __init__(self, tracer: Tracer, name: str, attributes: Mapping[str, Any]) -> None:
        self.tracer = tracer
        self.span = tracer.start_span(name, kind="run", attributes=attributes)
        self.answer: Answer | None = None
        self._error: Exception | None = None

    @property
    def run_id(self) -> str:
        return self.span.trace_id

    async def follow(self, events: AsyncGenerator[RunEvent, None]) -> AsyncIterator[RunEvent]:
        error: BaseException | None = None
        try:
            with self.tracer.use_span(self.span):
                try:
                    async for event in events:
                        if isinstance(event, RunFinished | RunFailed):
                            self._answered(event)
                        yield event
                finally:
                    await events.aclose()
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._end(error)

    def _answered(self, event: RunFinished | RunFailed) -> None:
        answer = event.answer
        self.answer = answer
        self._error = event.error if isinstance(event, RunFailed) else None
        self.span.update(
            {
                A.RUN_STATUS: answer.status,
                A.RUN_ANSWER: answer.text,
                A.RUN_CITATIONS: [c.where for c in answer.citations],
            }
        )

    def _end(self, error: BaseException | None) -> None:
        span = self.span
        if self.answer is not None:
            if self.answer.status == "failed":
                _fail(span, self._error, self.answer.error or "the run failed")
        elif error is not None and is_cancellation(error):
            span.set(A.RUN_STATUS, A.CANCELLED)
            span.fail(CANCELLED_NOTE, error_type=A.CANCELLED)
        else:
            span.set(A.RUN_STATUS, "failed")
            span.fail(error if error is not None else "the run ended without an answer")
        self.tracer.end_span(span)


def _fail(span: Span, error: Exception | None, text: str) -> None:
    span.fail(text, error_type=type(error).__name__ if error is not None else None)


def record_tool(tracer: Tracer, outcome: ToolOutcome) -> None:
    """The span of a tool call that ran (timed by the tool runner)."""
    tracer.record_span(
        f"execute_tool {outcome.call.name}",
        kind="tool",
        start_time=outcome.started_at,
        duration_s=outcome.duration_s,
        attributes={
            A.TOOL_NAME: outcome.call.name,
            A.TOOL_CALL_ID: outcome.call.id,
            A.TOOL_ARGUMENTS: outcome.call.arguments,
            A.TOOL_RESULT: outcome.content,
            A.TOOL_IS_ERROR: outcome.is_error,
            A.TOOL_REQUIRES_APPROVAL: outcome.approved is not None,
        },
        error=outcome.content if outcome.is_error else None,
    )


def record_blocked(
    tracer: Tracer, call: ToolCallPart, mode: str, problems: list[dict[str, str]], note: str
) -> None:
    """The span of a call the grounded-argument check stopped (`mode` strict: it never
    ran; warn: it ran, and this span says what was wrong)."""
    blocked = mode == "strict"
    tracer.record_span(
        f"{'blocked_tool' if blocked else 'ungrounded_tool'} {call.name}",
        kind="tool",
        start_time=time.time(),
        duration_s=0.0,
        attributes={
            A.TOOL_NAME: call.name,
            A.TOOL_CALL_ID: call.id,
            A.TOOL_ARGUMENTS: call.arguments,
            A.TOOL_BLOCKED: blocked,
            A.GROUNDED_MODE: mode,
            A.GROUNDED_PROBLEMS: problems,
            A.TOOL_RESULT: note if blocked else "",
        },
        error=note if blocked else None,
    )


def record_approval(
    tracer: Tracer, call: ToolCallPart, approved: bool, decided_by: str | None = None
) -> None:
    """The span of a person's decision on a paused tool call; `decided_by`: the id of
    the server API key that decided, when one did."""
    attributes: dict[str, Any] = {
        A.TOOL_NAME: call.name,
        A.TOOL_CALL_ID: call.id,
        A.APPROVAL_DECISION: "approved" if approved else "denied",
    }
    if decided_by is not None:
        attributes[A.APPROVAL_KEY_ID] = decided_by
    tracer.record_span(
        f"approval {call.name}",
        kind="approval",
        start_time=time.time(),
        duration_s=0.0,
        attributes=attributes,
    )
