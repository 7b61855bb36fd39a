"""A copilot's run asked for on `/v1/chat/completions` (and `/v1/responses`): a new
question, a stored conversation continued, or a paused run decided.

- The last message is the question (it must be a user message); earlier user and
  assistant messages are the history, stored as a new conversation for the run.
  System and developer messages are ignored: the copilot has its own instructions.
- Or the client names a stored conversation in the extension field
  (`extra_body={"pilothouse": {"conversation_id": "..."}}`); the server's memory of it
  is the history and earlier messages in the request are ignored.
- A paused run is decided by a request with
  `{"pilothouse": {"run_id": "...", "approve": ["call id"], "deny": [...]}}`, whose
  answer is the resumed run's. Deciding needs `approve:<copilot>`, or the key that
  started the run when the copilot allows self-approval (see ownership.py); the run id
  must be whole. A stored conversation is continued only by the key that started it.

The answers are written by copilot.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from pilothouse.copilot import Copilot, Decision
from pilothouse.copilot.events import RunEvent
from pilothouse.copilot.tool_runner import NO_CLIENT_TOOLS, ClientTools
from pilothouse.errors import NotFoundError
from pilothouse.server.asgi import HTTPError
from pilothouse.server.auth import Principal
from pilothouse.server.openai.request import EXTENSION, bad, single_choice, to_messages
from pilothouse.server.ownership import may_decide, may_see_conversation
from pilothouse.types import Message, TextPart


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
