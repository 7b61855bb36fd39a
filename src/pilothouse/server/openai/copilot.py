"""A copilot's answer on `/v1/chat/completions`, as JSON or as a stream (the run is
started by copilot_start.py).

- A run paused for approval answers with a normal assistant message saying what
  awaits approval, and the pending calls in the extension field; it is decided through
  the management API or by the next chat request (copilot_start.py).

Every answer carries the extension field `pilothouse` (see `answer_extension`): on the
JSON response, and on the final chunk of a stream. Streams also carry progress as
chunks with an empty delta and `pilothouse.event` set: tool calls, and `continued`
(with `continued_on`, the model that carries on a broken answer, as the gateway says it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from pilothouse.copilot import Copilot
from pilothouse.copilot.events import (
    Answer,
    ApprovalRequired,
    Continued,
    Retrieved,
    RunEvent,
    RunFailed,
    RunFinished,
    RunStarted,
    ToolCallFinished,
    ToolCallStarted,
    ToolOutcome,
)
from pilothouse.server.asgi import HTTPError, Send, sse_error
from pilothouse.server.openai.answers import ChunkWriter, completion_body, usage_dict
from pilothouse.server.openai.copilot_headers import (
    Headers,
    answer_headers,
    citation_headers,
    run_completion_id,
    run_headers,
)
from pilothouse.server.openai.request import EXTENSION, wants_early_progress, wants_usage
from pilothouse.types import FinishReason, TextDelta, ToolCallPart

APPROVAL_NOTE = (
    "Waiting for approval before going on:\n{calls}\n"
    "Approve or deny run {run_id} through the management API, or send the next request "
    'with "pilothouse": {{"run_id": "{run_id}", "approve": [call ids], "deny": [call ids]}}.'
)


# --- the extension field -------------------------------------------------------------


def outcome_dict(outcome: ToolOutcome) -> dict[str, Any]:
    return {
        "id": outcome.call.id,
        "name": outcome.call.name,
        "arguments": outcome.call.arguments,
        "result": outcome.content,
        "is_error": outcome.is_error,
        "approved": outcome.approved,
        "duration_s": round(outcome.duration_s, 4),
    }


def call_dict(call: ToolCallPart) -> dict[str, Any]:
    return {"id": call.id, "name": call.name, "arguments": call.arguments}


def answer_extension(answer: Answer, copilot: str) -> dict[str, Any]:
    """The `pilothouse` extension object for a copilot's answer (also what the
    management API may return for a resumed run)."""
    return {
        "copilot": copilot,
        "run_id": answer.run_id,
        "conversation_id": answer.conversation_id,
        "status": answer.status,
        "model": answer.model,
        "citations": [c.to_dict() for c in answer.citations],
        "tool_calls": [outcome_dict(o) for o in answer.tool_calls],
        "pending_approvals": [
            {
                "run_id": p.run_id,
                "call_id": p.call.id,
                "name": p.call.name,
                "arguments": p.call.arguments,
                "description": p.description,
            }
            for p in answer.pending
        ],
        "usage": usage_dict(answer.usage),
        "cost_usd": answer.cost_usd,
        "error": answer.error,
    }


def approval_note(answer: Answer) -> str:
    calls = "\n".join(f"- {p.description} (call {p.call.id})" for p in answer.pending)
    return APPROVAL_NOTE.format(calls=calls, run_id=answer.run_id)


def answer_text(answer: Answer) -> str:
    if answer.status == "awaiting_approval":
        note = approval_note(answer)
        return f"{answer.text}\n\n{note}" if answer.text.strip() else note
    return answer.text


def completion_for(answer: Answer, copilot: Copilot) -> dict[str, Any]:
    """A `chat.completion` object for a copilot's answer."""
    return completion_body(
        run_completion_id(answer.run_id),
        answer.model or copilot.name,
        answer_text(answer),
        _finish(answer),
        answer.usage,
        extension=answer_extension(answer, copilot.name),
    )


def _finish(answer: Answer) -> FinishReason:
    return "length" if answer.status == "step_limit" else "stop"


# --- answering -----------------------------------------------------------------------


async def answer_json(copilot: Copilot, events: AsyncIterator[RunEvent]) -> tuple[bytes, Headers]:
    """The `chat.completion` body of a run's answer, and its extension headers."""
    answer: Answer | None = None
    async for event in events:
        if isinstance(event, RunFinished | RunFailed):
            answer = event.answer
    if answer is None:
        raise HTTPError(500, "the run ended without an answer", code="run_incomplete")
    if answer.status == "failed" and not answer.text:
        raise HTTPError(
            502,
            f"copilot {copilot.name!r} could not answer: {answer.error}",
            code="run_failed",
            type="upstream_error",
        )
    return orjson.dumps(completion_for(answer, copilot)), answer_headers(answer, copilot.name)


class StreamOut:
    """Sends the response start lazily: errors before anything was shown still get an
    HTTP error status."""

    def __init__(self, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
        self.send = send
        self.headers = headers
        self.started = False
        self.sent = 0

    async def write(self, data: bytes) -> None:
        if not self.started:
            self.started = True
            await self.send({"type": "http.response.start", "status": 200, "headers": self.headers})
        self.sent += len(data)
        await self.send({"type": "http.response.body", "body": data, "more_body": True})


async def answer_stream(
    copilot: Copilot,
    data: Mapping[str, Any],
    events: AsyncIterator[RunEvent],
    out: StreamOut,
) -> None:
    writer = ChunkWriter(copilot.name, include_usage=wants_usage(data))
    early_progress = wants_early_progress(data)
    role_sent = False
    held: bytes = b""  # the `retrieved` chunk, until the stream starts for another reason

    async def content(chunk: bytes) -> None:
        nonlocal role_sent, held
        if not role_sent:
            role_sent = True
            await out.write(writer.role())
        if held:
            chunk, held = held + chunk, b""
        await out.write(chunk)

    async for event in events:
        if isinstance(event, RunStarted):  # before anything is written
            writer.id = run_completion_id(event.run_id)
            out.headers.extend(run_headers(copilot.name, event.run_id, event.conversation_id))
        elif isinstance(event, Retrieved):
            if not out.started:
                out.headers.extend(citation_headers("passages", event.passages))
            retrieved = writer.progress({"event": "retrieved", "passages": len(event.passages)})
            if early_progress:  # at once: the model may read for a while
                await content(retrieved)
            else:  # with the first words, so a run that fails first still gets an HTTP error
                held = retrieved
        elif isinstance(event, TextDelta):
            if event.text:
                await content(writer.text(event.text))
        elif isinstance(event, ToolCallStarted):
            await content(
                writer.progress({"event": "tool_call_started", "call": call_dict(event.call)})
            )
        elif isinstance(event, ToolCallFinished):
            await content(
                writer.progress(
                    {"event": "tool_call_finished", "outcome": outcome_dict(event.outcome)}
                )
            )
        elif isinstance(event, Continued):  # what follows comes from another model
            await content(
                writer.progress(
                    {"event": "continued", "continued_on": event.model, "after_error": event.error}
                )
            )
        elif isinstance(event, ApprovalRequired):
            continue  # the note goes out with RunFinished, which has the answer
        elif isinstance(event, RunFinished):
            answer = event.answer
            if answer.status == "awaiting_approval":
                note = approval_note(answer)
                await content(writer.text(("\n\n" if answer.text.strip() else "") + note))
            elif not role_sent:
                await content(b"")
            await out.write(
                writer.finish(
                    _finish(answer),
                    answer.usage,
                    model=answer.model or copilot.name,
                    extension=answer_extension(answer, copilot.name),
                )
            )
            return
        elif isinstance(event, RunFailed):
            answer = event.answer
            if not out.started:
                raise HTTPError(
                    502,
                    f"copilot {copilot.name!r} could not answer: {answer.error}",
                    code="run_failed",
                    type="upstream_error",
                )
            error = {
                "message": f"copilot {copilot.name!r} failed mid-answer: {answer.error} "
                "(the answer above is incomplete)",
                "type": "upstream_error",
                "param": None,
                "code": "run_failed",
                EXTENSION: answer_extension(answer, copilot.name),
            }
            await out.write(sse_error(error))
            return
    raise HTTPError(500, "the run ended without an answer", code="run_incomplete")
