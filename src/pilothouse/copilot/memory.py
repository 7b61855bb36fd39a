"""Conversation memory: what of a stored conversation is sent to the model.

The context is `[summary note] + the last `window` stored messages`, each as it was sent
to the model (its stored sent form: the user's turn with its passages, an answer as the
model wrote it), so a turn's prompt begins with the previous turn's as the model read it
(a local model reuses its cached prompt); with `as_sent=False` (copilot.yaml's
`memory.turns: shown`), each as people saw it. The window never separates an assistant's
tool calls from their results: when its first message would be a tool result, the
boundary moves back to the assistant message that made the call (and a history that
starts with orphan tool results skips them).

With `summarize` on, the messages that fell out of the window are folded into a rolling
summary by a model: one call over the previous summary plus the newly dropped messages
(per batch of at most `batch` messages), stored with `summary_upto` so that nothing is
summarised twice. A summariser failure (`ModelError`) never fails the run: the old
summary is used, a warning is logged, and the next turn tries again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from pilothouse.copilot.conversation_records import StoredMessage
from pilothouse.copilot.conversations import ConversationStore
from pilothouse.errors import ModelError, ResponseRejectedError
from pilothouse.models.base import Model
from pilothouse.types import (
    ImagePart,
    Message,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)

log = logging.getLogger(__name__)

SUMMARY_SYSTEM_PROMPT = (
    "You keep a running summary of a conversation between a user and an assistant, so "
    "that the assistant can continue the conversation after older messages are dropped. "
    "Keep what matters later: the user's goals and constraints, facts, names, numbers, "
    "decisions, answers already given, what tools were called and what they returned, "
    "and open questions. Drop pleasantries. Write plain prose of at most 200 words and "
    "nothing else."
)
SUMMARY_NOTE_PREFIX = "Summary of the earlier conversation (older messages are not shown):\n"


class MemoryPolicy(Protocol):
    """What `ConversationMemory` needs of a policy (copilot.yaml's `memory`)."""

    @property
    def window(self) -> int: ...

    @property
    def summarize(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class MemoryContext:
    """The history to send for one turn, and what memory did to build it."""

    messages: tuple[Message, ...]
    """The summary note (if any) followed by the window as sent to the model."""
    window: tuple[Message, ...]
    """The window's messages as people saw them: `[window_start, message_count)`."""
    window_start: int
    message_count: int
    summary: str
    """The summary in effect (covering `[0, summary_upto)`); empty when none."""
    summary_upto: int
    summary_calls: tuple[tuple[ModelRequest, ModelResponse | ModelError], ...] = ()
    """Each summariser call made for this context, with its answer or error (for traces)."""

    @property
    def summary_failed(self) -> bool:
        return any(isinstance(result, ModelError) for _, result in self.summary_calls)


def window_start(messages: Sequence[Message], window: int) -> int:
    """Index of the first message to send verbatim, of `messages` (the whole history)
    under a window of `window` most recent messages.

    A window that would begin with tool results begins instead at the assistant message
    that called the tools; tool results no assistant message called (at the very start
    of the history) are left out.
    """
    count = len(messages)
    start = max(0, count - max(0, window))
    if start < count and messages[start].role == "tool":
        back = start
        while back > 0 and messages[back].role == "tool":
            back -= 1
        if messages[back].role == "assistant" and messages[back].tool_calls:
            return back
        while start < count and messages[start].role == "tool":
            start += 1
    return start


def render_for_summary(messages: Sequence[Message], limit: int = 500) -> str:
    """Messages as short text lines for the summariser: tool calls and results become
    one line each, long texts are cut to `limit` characters."""
    lines: list[str] = []
    for message in messages:
        for part in message.parts:
            if isinstance(part, TextPart):
                if part.text.strip():
                    lines.append(f"{message.role.capitalize()}: {_cut(part.text, limit)}")
            elif isinstance(part, ImagePart):
                lines.append(f"{message.role.capitalize()}: [image]")
            elif isinstance(part, ToolCallPart):
                args = json.dumps(part.arguments, ensure_ascii=False, sort_keys=True)
                if part.raw_arguments is not None and not part.arguments:
                    args = part.raw_arguments
                lines.append(f"Assistant called tool {part.name} with {_cut(args, limit)}")
            elif isinstance(part, ToolResultPart):
                verb = "failed with" if part.is_error else "returned"
                lines.append(f"Tool {part.name} {verb}: {_cut(part.content, limit)}")
    return "\n".join(lines)


def summary_request(
    previous: str, messages: Sequence[Message], *, limit: int = 500, max_tokens: int = 400
) -> ModelRequest:
    """The request that folds `messages` into the `previous` summary."""
    prompt = (
        f"Summary so far:\n{previous.strip() or '(none yet)'}\n\n"
        f"Messages to add to it:\n{render_for_summary(messages, limit)}\n\n"
        "Write the updated summary."
    )
    return ModelRequest(
        messages=(Message.system(SUMMARY_SYSTEM_PROMPT), Message.user(prompt)),
        temperature=0.0,
        max_output_tokens=max_tokens,
    )


def summary_note(summary: str, role: Literal["system", "user"] = "system") -> Message:
    """The message that carries the summary to the model."""
    return Message(role, (TextPart(SUMMARY_NOTE_PREFIX + summary.strip()),))


class ConversationMemory:
    """Builds each turn's history from a `ConversationStore` under a `MemoryPolicy`.

    `summarizer` is the model that writes summaries (needed only when the policy says
    `summarize`; without one, dropped messages are simply not sent). `note_role` is the
    role of the summary message: "system" (default) or "user" for models without a
    system role. `as_sent=False` sends the window as people saw it instead of each
    message's sent form. One instance may serve many conversations at once; for one
    conversation, summarisation runs once at a time.
    """

    def __init__(
        self,
        store: ConversationStore,
        policy: MemoryPolicy,
        summarizer: Model | None = None,
        *,
        note_role: Literal["system", "user"] = "system",
        batch: int = 40,
        text_limit: int = 500,
        max_summary_tokens: int = 400,
        as_sent: bool = True,
    ):
        self.store = store
        self.as_sent = as_sent
        self.policy = policy
        self.summarizer = summarizer
        self.note_role: Literal["system", "user"] = note_role
        self.batch = max(1, batch)
        self.text_limit = text_limit
        self.max_summary_tokens = max_summary_tokens
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def context(self, conversation_id: str) -> MemoryContext:
        """The history to send now (summarising first when the policy asks for it)."""
        lock = self._locks.get(conversation_id)
        if lock is None:
            lock = self._locks[conversation_id] = asyncio.Lock()
        async with lock:
            return await self._context(conversation_id)

    async def _context(self, conversation_id: str) -> MemoryContext:
        conversation = await self.store.get(conversation_id)
        summarizer = self.summarizer if self.policy.summarize else None
        summary, upto = conversation.summary, conversation.summary_upto
        first, records = await self._tail(conversation_id, conversation.message_count, upto)
        history = [record.message for record in records]
        start = first + window_start(history, self.policy.window)
        calls: list[tuple[ModelRequest, ModelResponse | ModelError]] = []
        while summarizer is not None and first <= upto < start:
            end = min(start, upto + self.batch)
            request = summary_request(
                summary,
                history[upto - first : end - first],
                limit=self.text_limit,
                max_tokens=self.max_summary_tokens,
            )
            try:
                response = await summarizer.complete(request)
                if not response.text.strip():
                    raise ResponseRejectedError("the summary came back empty", model=response.model)
            except ModelError as error:
                calls.append((request, error))
                log.warning(
                    "conversation %s: summarising messages %d-%d failed (%s); keeping the "
                    "previous summary and trying again next turn",
                    conversation_id,
                    upto,
                    end - 1,
                    error,
                )
                break
            calls.append((request, response))
            new_summary = response.text.strip()
            if await self.store.set_summary(conversation_id, new_summary, end, expected_upto=upto):
                summary, upto = new_summary, end
            else:  # another process summarised meanwhile: continue from its summary
                latest = await self.store.get(conversation_id)
                summary, upto = latest.summary, latest.summary_upto
        window = tuple(history[start - first :])
        sent = (
            tuple(m for record in records[start - first :] for m in record.prompt)
            if self.as_sent
            else window
        )
        note = (summary_note(summary, self.note_role),) if summary and start > 0 else ()
        return MemoryContext(
            messages=note + sent,
            window=window,
            window_start=start,
            message_count=first + len(history),
            summary=summary,
            summary_upto=upto,
            summary_calls=tuple(calls),
        )

    async def _tail(
        self, conversation_id: str, count: int, upto: int
    ) -> tuple[int, list[StoredMessage]]:
        """The stored messages from a little before where the window or the summary work
        begins (never the whole history when it is not needed): `(first index, messages)`.
        Loads further back while the loaded part begins with tool results, whose calling
        assistant message the window may need."""
        low = max(0, count - max(0, self.policy.window))
        if self.policy.summarize and self.summarizer is not None:
            low = min(low, upto)
        first = max(0, low - 8)
        while True:
            records = await self.store.records(conversation_id, first)
            if first == 0 or not records or records[0].message.role != "tool":
                return first, records
            first = max(0, first - max(16, count - first))


def _cut(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return f"{flat[:limit]}… [{len(flat) - limit} more characters]"
