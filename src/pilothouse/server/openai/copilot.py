"""A copilot behind `/v1/chat/completions`.

- The last message is the question (it must be a user message); earlier user and
  assistant messages are the history, stored as a new conversation for the run.
  System and developer messages are ignored: the copilot has its own instructions.
- Or the client names a stored conversation in the extension field
  (`extra_body={"pilothouse": {"conversation_id": "..."}}`); the server's memory of it
  is the history and earlier messages in the request are ignored.
- A run paused for approval answers with a normal assistant message saying what
  awaits approval, and the pending calls in the extension field. It is decided through
  the management API, or by the next chat request with
  `{"pilothouse": {"run_id": "...", "approve": ["call id"], "deny": [...]}}`, whose
  answer is the resumed run's. Deciding needs `approve:<copilot>`, or the key that
  started the run when the copilot allows self-approval (see ownership.py); the run id
  must be whole. A stored conversation is continued only by the key that started it.

Every answer carries the extension field `pilothouse` (see `answer_extension`): on the
JSON response, and on the final chunk of a stream. Streams also carry progress as
chunks with an empty delta and `pilothouse.event` set: tool calls, and `continued`
(with `continued_on`, the model that carries on a broken answer, as the gateway says it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from pilothouse.copilot import Copilot, Decision
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
from pilothouse.copilot.tool_runner import NO_CLIENT_TOOLS, ClientTools
from pilothouse.errors import NotFoundError
from pilothouse.server.asgi import HTTPError, Send, sse_error
from pilothouse.server.auth import Principal
from pilothouse.server.openai.answers import ChunkWriter, completion_body, usage_dict
from pilothouse.server.openai.copilot_headers import (
    Headers,
    answer_headers,
    citation_headers,
    run_completion_id,
    run_headers,
)
from pilothouse.server.openai.request import (
    EXTENSION,
    bad,
    single_choice,
    to_messages,
    wants_early_progress,
    wants_usage,
)
from pilothouse.server.ownership import may_decide, may_see_conversation
from pilothouse.types import FinishReason, Message, TextDelta, TextPart, ToolCallPart

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


# --- starting the run ----------------------------------------------------------------


async def start_run(
    copilot: Copilot,
    data: Mapping[str, Any],
    principal: Principal,
    client: ClientTools = NO_CLIENT_TOOLS,
    attributes: Mapping[str, Any] | None = None,
) -> AsyncIterator[RunEvent]:
    """The events of the run `principal` asks for: a new question (the model may also
    call the caller's `client` tools), or a paused run resumed with decisions.
    `attributes`: more attributes of the run's span (a promotion's link)."""
    ext: dict[str, Any] = data.get(EXTENSION) or {}
    if "approve" in ext or "deny" in ext:
        return await _resume(copilot, ext, principal, attributes)
    if data.get("tools"):
        raise bad(
            "a copilot uses its own tools; 'tools' is only passed through for raw models",
            "tools",
        )
    single_choice(data)
    question, history = _question_and_history(data["messages"])
    inputs = ext.get("inputs")
    if inputs is not None and not isinstance(inputs, dict):
        raise bad("pilothouse.inputs must be an object", f"{EXTENSION}.inputs")
    conversation_id = ext.get("conversation_id")
    if conversation_id is not None:
        if not isinstance(conversation_id, str) or not conversation_id:
            raise bad("pilothouse.conversation_id must be a string", f"{EXTENSION}.conversation_id")
        await _check_conversation(copilot, conversation_id, principal)
    elif history:
        conversation = await copilot.conversations.create(copilot.name, key_id=principal.key_id)
        await copilot.conversations.append(conversation.id, history)
        conversation_id = conversation.id
    return copilot.stream(
        question,
        conversation_id=conversation_id,
        inputs=inputs,
        key_id=principal.key_id,
        client=client,
        attributes=attributes,
    )


async def _check_conversation(copilot: Copilot, conversation_id: str, principal: Principal) -> None:
    try:
        conversation = await copilot.conversations.get(conversation_id)
    except NotFoundError:
        conversation = None
    if (
        conversation is None
        or conversation.copilot != copilot.name
        or not may_see_conversation(principal, conversation)
    ):
        raise HTTPError(
            404,
            f"no conversation {conversation_id!r} of copilot {copilot.name!r}",
            code="conversation_not_found",
            param=f"{EXTENSION}.conversation_id",
        )


async def _resume(
    copilot: Copilot,
    ext: Mapping[str, Any],
    principal: Principal,
    attributes: Mapping[str, Any] | None = None,
) -> AsyncIterator[RunEvent]:
    run_id = ext.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise bad("pilothouse.run_id names the paused run to decide", f"{EXTENSION}.run_id")
    decisions: dict[str, Decision] = {}
    note = ext.get("note") or ""
    if not isinstance(note, str):
        raise bad("pilothouse.note must be a string", f"{EXTENSION}.note")
    for key, approved in (("approve", True), ("deny", False)):
        ids = ext.get(key) or []
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise bad(f"pilothouse.{key} must be an array of tool call ids", f"{EXTENSION}.{key}")
        for call_id in ids:
            decisions[call_id] = Decision(approved, "" if approved else note)
    paused = await copilot.paused.get(run_id)
    self_approve = copilot.definition.approvals.self_approve
    if (
        paused is None
        or paused.copilot != copilot.name
        or not may_decide(principal, paused, self_approve=self_approve)
    ):  # the same answer whether the run is missing or not this key's to decide
        raise HTTPError(
            404,
            f"no paused run {run_id!r} of copilot {copilot.name!r} that this key may "
            "decide (give the whole run id; decided already?)",
            code="run_not_found",
            param=f"{EXTENSION}.run_id",
        )
    known = {c.id for c in paused.pending}
    unknown = sorted(set(decisions) - known)
    if unknown:
        raise bad(
            f"run {paused.run_id} has no pending call {', '.join(unknown)}; pending: "
            f"{', '.join(sorted(known))}",
            f"{EXTENSION}.approve",
        )
    return copilot.resume(
        paused.run_id, decisions, decided_by=principal.key_id, attributes=attributes
    )


def _question_and_history(raw: list[dict[str, Any]]) -> tuple[str, list[Message]]:
    """The question (the last message, the user's) and the earlier user and assistant
    turns, read by the raw models' parse (`to_messages`: the same errors for the same
    body) and then held to what a copilot takes: text turns, no tool calls."""
    for index, item in enumerate(raw):
        if item["role"] not in ("system", "developer", "user", "assistant"):
            where = f"messages[{index}]"
            raise bad(f"{where}: a copilot's history holds user and assistant messages", where)
    messages = to_messages(raw)  # one message per item: no tool messages to merge
    for index, message in enumerate(messages):
        if any(not isinstance(part, TextPart) for part in message.parts):
            where = f"messages[{index}]"
            raise bad(f"{where}: a copilot takes text only", f"{where}.content")
    last = messages[-1]
    if last.role != "user":
        raise bad("the last message must be the user's question", "messages")
    if not last.text.strip():
        raise bad("the question (the last user message) is empty", "messages")
    history = [m for m in messages[:-1] if m.role in ("user", "assistant") and m.text]
    return last.text, history


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
