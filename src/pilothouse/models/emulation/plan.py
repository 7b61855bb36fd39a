"""The plan: `emulate_tools(request)` rewrites a request for a model without native
tools into a `ToolEmulation`, the rewritten request and how to read its answer back."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Literal

from pilothouse.errors import BadRequestError
from pilothouse.models.base import AdapterEvent, Finish
from pilothouse.models.emulation.decoder import EnvelopeDecoder
from pilothouse.models.emulation.history import render_history
from pilothouse.models.emulation.instructions import (
    describe_tools,
    with_reminder,
    with_system_text,
)
from pilothouse.models.emulation.schema import ENVELOPE_NAME, envelope_schema
from pilothouse.types import (
    ModelRequest,
    OutputSchema,
    TextDelta,
    ToolCallPart,
    ToolResultPart,
)


@dataclass(frozen=True, slots=True)
class ToolEmulation:
    """A request rewritten for a model without native tools, and how to read its
    answer back. `mode` "text": the answer streams as it is; "envelope": the answer is
    the constrained JSON envelope and `decode` turns it into text and tool calls."""

    request: ModelRequest
    mode: Literal["text", "envelope"]
    structured_answer: bool = False
    id_seed: str = ""

    def decoder(self) -> EnvelopeDecoder:
        return EnvelopeDecoder(id_seed=self.id_seed, structured_answer=self.structured_answer)

    async def decode(self, events: AsyncIterator[AdapterEvent]) -> AsyncIterator[AdapterEvent]:
        """The model's raw events (text deltas holding the envelope JSON, usage,
        `Finish`) turned into the normal ones."""
        if self.mode == "text":
            async for event in events:
                yield event
            return
        decoder = self.decoder()
        async for event in events:
            if isinstance(event, TextDelta):
                for out in decoder.feed(event.text):
                    yield out
            elif isinstance(event, Finish):
                tail, reason = decoder.finish(event.reason)
                for out in tail:
                    yield out
                yield Finish(reason)
                return
            else:
                yield event


def needs_emulation(request: ModelRequest) -> bool:
    """Whether the request has tools or tool parts in its history."""
    if request.tools:
        return True
    return any(
        isinstance(p, ToolCallPart | ToolResultPart) or m.role == "tool"
        for m in request.messages
        for p in m.parts
    )


def _id_seed(request: ModelRequest) -> str:
    digest = hashlib.sha256()
    for message in request.messages:
        digest.update(message.role.encode())
        digest.update(message.text.encode())
        for call in message.tool_calls:
            digest.update(call.id.encode())
        for result in message.tool_results:
            digest.update(result.tool_call_id.encode())
    return digest.hexdigest()[:16]


def emulate_tools(
    request: ModelRequest, *, parallel_tools: bool = True, answer_first: bool = True
) -> ToolEmulation:
    """Rewrite `request` for a model without native tools (see the module doc).

    `parallel_tools` False (the model's profile) or `request.parallel_tool_calls`
    False limits an answer to one call. `answer_first` (the model's profile) decides
    whether the instructions offer the plain answer or the calls first. A
    `tool_choice` naming an unknown tool is a `BadRequestError`.
    """
    if not needs_emulation(request):
        return ToolEmulation(request, "text")
    messages = render_history(request.messages)
    choice = request.tool_choice
    tools = request.tools
    if choice not in ("auto", "none", "required"):
        chosen = [t for t in tools if t.name == choice]
        if not chosen:
            names = ", ".join(t.name for t in tools) or "none"
            raise BadRequestError(
                f"tool_choice names tool {choice!r}, which is not among the request's "
                f"tools ({names})"
            )
        tools = tuple(chosen)
    if choice == "none" or not tools:
        plain = replace(request, messages=messages, tools=(), tool_choice="auto")
        return ToolEmulation(plain, "text")
    allow_answer = choice == "auto"
    max_calls = None if (parallel_tools and request.parallel_tool_calls) else 1
    answer_schema = request.output_schema.schema if request.output_schema else None
    schema = envelope_schema(
        tools,
        allow_answer=allow_answer,
        allow_calls=True,
        max_calls=max_calls,
        answer_schema=answer_schema,
    )
    instructions = describe_tools(
        request.tools if choice == "auto" else tools,
        allow_answer=allow_answer,
        max_calls=max_calls,
        structured_answer=answer_schema is not None,
        answer_first=answer_first,
    )
    if request.messages:
        messages = with_reminder(
            with_system_text(messages, instructions),
            request.messages[-1],
            not allow_answer,
            answer_first=answer_first,
        )
    else:
        messages = with_system_text(messages, instructions)
    rewritten = replace(
        request,
        messages=messages,
        tools=(),
        tool_choice="auto",
        output_schema=OutputSchema(schema, name=ENVELOPE_NAME, strict=True),
    )
    return ToolEmulation(
        rewritten,
        "envelope",
        structured_answer=answer_schema is not None,
        id_seed=_id_seed(request),
    )
