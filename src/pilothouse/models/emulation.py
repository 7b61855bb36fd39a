"""Tool calls for models without native tool calling, through JSON-schema constrained
decoding, behind the normal tool-call interface.

`emulate_tools(request)` rewrites a request for such a model:

- the tools are described in the system prompt, and the answer is constrained to one
  JSON object, either `{"answer": "..."}` or `{"tool_calls": [{"name": ..., "arguments":
  {...}}]}` (one `anyOf` branch per tool, so each tool's arguments follow its own
  schema; `tool_choice` and `parallel_tool_calls` narrow the schema);
- earlier tool calls in the history become the assistant's JSON, and tool results
  (which such models have no role for) become user messages inside clearly marked
  `<tool_result>` blocks.

`ToolEmulation.decode(events)` turns the constrained JSON the model streams back into
the normal events: the answer string is decoded incrementally, so a plain answer still
streams token by token; tool calls are emitted whole once their JSON is complete, with
ids that are stable for the same conversation and call.

`EmulatedToolsModel` wraps any model that can follow an output JSON schema and gives
it tools this way. Structured output alone (`output_schema` without tools) needs no
emulation: the schema goes to the constrained decoder as it is.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pilothouse.errors import BadRequestError, MalformedResponseError
from pilothouse.models.base import AdapterEvent, Finish, Model, ProtocolModel
from pilothouse.models.profiles import ModelProfile
from pilothouse.types import (
    FinishReason,
    Message,
    ModelRequest,
    OutputSchema,
    Part,
    StreamEnd,
    StreamError,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
    UsageEvent,
)

ENVELOPE_NAME = "tool_envelope"

# --- rendering the conversation -----------------------------------------------------


def render_tool_call_json(calls: list[ToolCallPart]) -> str:
    """The JSON an emulated model writes to call `calls` (used to render history)."""
    return json.dumps(
        {"tool_calls": [{"name": c.name, "arguments": c.arguments} for c in calls]},
        ensure_ascii=False,
    )


def render_tool_result(result: ToolResultPart) -> str:
    """A tool result as text, for a model that has no tool role."""
    error = ' error="true"' if result.is_error else ""
    return (
        f'<tool_result name="{result.name}" call_id="{result.tool_call_id}"{error}>\n'
        f"{result.content}\n"
        "</tool_result>"
    )


def _render_message(message: Message) -> Message:
    if message.role == "tool":
        text = "\n\n".join(render_tool_result(r) for r in message.tool_results)
        return Message("user", (TextPart(text),))
    if message.role == "assistant" and message.tool_calls:
        pieces = [message.text] if message.text else []
        pieces.append(render_tool_call_json(message.tool_calls))
        return Message("assistant", (TextPart("\n".join(pieces)),))
    if any(isinstance(p, ToolResultPart) for p in message.parts):  # stray results
        parts: list[Part] = [
            TextPart(render_tool_result(p)) if isinstance(p, ToolResultPart) else p
            for p in message.parts
        ]
        return Message(message.role, tuple(parts))
    return message


def _merge_adjacent_users(messages: list[Message]) -> list[Message]:
    """Tool results rendered as user text may sit next to a user message; chat
    templates expect turns to alternate, so adjacent user messages become one."""
    merged: list[Message] = []
    for message in messages:
        if merged and message.role == "user" and merged[-1].role == "user":
            previous = merged[-1]
            glue: tuple[Part, ...] = (TextPart("\n\n"),)
            merged[-1] = Message("user", previous.parts + glue + message.parts)
        else:
            merged.append(message)
    return merged


def render_history(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """The conversation without tool roles or tool parts."""
    rendered = [_render_message(m) for m in messages]
    return tuple(_merge_adjacent_users(rendered))


def _with_system_text(messages: tuple[Message, ...], extra: str) -> tuple[Message, ...]:
    """Append `extra` to the system instructions (first system message), so the
    stable part of the prompt stays at its start and can be reused from cache."""
    if not extra:
        return messages
    out = list(messages)
    for i, message in enumerate(out):
        if message.role == "system":
            out[i] = Message("system", (TextPart(f"{message.text}\n\n{extra}"),))
            return tuple(out)
    return (Message.system(extra), *out)


# --- the constrained schema ---------------------------------------------------------


def _call_schema(tool: ToolSpec) -> dict[str, Any]:
    parameters = tool.parameters or {"type": "object", "properties": {}}
    return {
        "type": "object",
        "properties": {"name": {"const": tool.name}, "arguments": parameters},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def envelope_schema(
    tools: tuple[ToolSpec, ...],
    *,
    allow_answer: bool,
    allow_calls: bool,
    max_calls: int | None,
    answer_schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON schema of an emulated answer: `{"answer": ...}` and/or
    `{"tool_calls": [...]}` with one branch per tool."""
    branches: list[dict[str, Any]] = []
    if allow_calls and tools:
        calls: dict[str, Any] = {
            "type": "array",
            "items": _call_schema(tools[0])
            if len(tools) == 1
            else {"anyOf": [_call_schema(t) for t in tools]},
            "minItems": 1,
        }
        if max_calls is not None:
            calls["maxItems"] = max_calls
        branches.append(
            {
                "type": "object",
                "properties": {"tool_calls": calls},
                "required": ["tool_calls"],
                "additionalProperties": False,
            }
        )
    if allow_answer:  # after the calls, in the order the instructions give them
        branches.append(
            {
                "type": "object",
                "properties": {"answer": answer_schema or {"type": "string"}},
                "required": ["answer"],
                "additionalProperties": False,
            }
        )
    if len(branches) == 1:
        return branches[0]
    return {"anyOf": branches}


def _describe_tools(
    tools: tuple[ToolSpec, ...],
    *,
    allow_answer: bool,
    max_calls: int | None,
    structured_answer: bool,
) -> str:
    """Tool instructions for the system prompt, in the function-signature style many
    open models were trained on."""
    signatures = "\n".join(
        json.dumps(
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
        )
        for t in tools
    )
    how_many = "one function" if max_calls == 1 else "one or more functions"
    answer = "<your answer as JSON>" if structured_answer else "<text>"
    rules = (
        "Respond with one JSON object. To call functions: "
        '{"tool_calls": [{"name": <function-name>, "arguments": <args-json-object>}]}. '
    )
    if allow_answer:
        rules += f'To reply to the user without calling a function: {{"answer": {answer}}}. '
    rules += "Function results are returned inside <tool_result></tool_result> tags."
    return (
        f"# Tools\n\nYou may call {how_many} to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        f"<tools>\n{signatures}\n</tools>\n\n{rules}"
    )


# Measured on Qwen2.5-Coder-0.5B: without the reminder at the end of the turn it
# answered from memory where a tool was needed; with "or call another function" after
# results it looped on the same call.
CALL_REMINDER = (
    "(If one of the functions can help, call it; do not guess what a function would return.)"
)
RESULT_REMINDER = "(Answer the question using the function results above.)"
# After a failed call (often a guess, such as an id copied from an example) the 1.5B
# answered about the failure ("There is no ticket HD-1234") instead of the question.
ERROR_REMINDER = (
    "(The function call did not work. Answer the original question from the text above "
    "if it answers it; otherwise say what is missing.)"
)
REQUIRED_REMINDER = "(Call a function now.)"


def _with_reminder(
    messages: tuple[Message, ...], original_last: Message, required: bool
) -> tuple[Message, ...]:
    """A short reminder at the end of the last user turn: small models follow the
    instruction nearest to the answer best, and the end is what changes per turn
    anyway (the cached prompt prefix is unaffected)."""
    if not messages or messages[-1].role != "user":
        return messages
    if required:
        reminder = REQUIRED_REMINDER
    elif original_last.tool_results and all(r.is_error for r in original_last.tool_results):
        reminder = ERROR_REMINDER
    elif original_last.role == "tool" or original_last.tool_results:
        reminder = RESULT_REMINDER
    else:
        reminder = CALL_REMINDER
    last = messages[-1]
    return (*messages[:-1], Message("user", (*last.parts, TextPart(f"\n\n{reminder}"))))


# --- the plan -----------------------------------------------------------------------


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


def emulate_tools(request: ModelRequest, *, parallel_tools: bool = True) -> ToolEmulation:
    """Rewrite `request` for a model without native tools (see the module doc).

    `parallel_tools` False (the model's profile) or `request.parallel_tool_calls`
    False limits an answer to one call. A `tool_choice` naming an unknown tool is a
    `BadRequestError`.
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
    instructions = _describe_tools(
        request.tools if choice == "auto" else tools,
        allow_answer=allow_answer,
        max_calls=max_calls,
        structured_answer=answer_schema is not None,
    )
    if request.messages:
        messages = _with_reminder(
            _with_system_text(messages, instructions), request.messages[-1], not allow_answer
        )
    else:
        messages = _with_system_text(messages, instructions)
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


# --- decoding the envelope ----------------------------------------------------------

_PREFIX = re.compile(r'\s*\{\s*"(answer|tool_calls)"\s*:\s*')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def stable_call_id(seed: str, index: int, name: str, arguments: Any) -> str:
    """The same id for the same call in the same conversation, distinct per call."""
    text = f"{seed}:{index}:{name}:{json.dumps(arguments, sort_keys=True, ensure_ascii=False)}"
    return "call_" + hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass
class EnvelopeDecoder:
    """Reads the envelope JSON as it streams. `feed` returns the answer text that can
    be shown now (the `"answer"` string, decoded incrementally); `finish` parses the
    whole object and returns the rest (tool calls, a structured answer) and the finish
    reason. Text that does not start like the envelope (a model that ignored the
    schema) is passed through as a plain answer."""

    id_seed: str = ""
    structured_answer: bool = False
    raw: list[str] = field(default_factory=list)
    state: Literal["prefix", "string", "after", "buffer", "plain"] = "prefix"
    pending: str = ""
    """Undecided text: before the key is known, or an incomplete escape."""
    answer: list[str] = field(default_factory=list)

    def feed(self, text: str) -> list[AdapterEvent]:
        self.raw.append(text)
        if self.state == "prefix":
            self.pending += text
            return self._from_prefix()
        if self.state == "string":
            self.pending += text
            return self._from_string()
        if self.state == "plain":
            return [TextDelta(text)] if text else []
        return []

    def _from_prefix(self) -> list[AdapterEvent]:
        stripped = self.pending.lstrip()
        if stripped and not stripped.startswith("{"):
            self.state = "plain"
            text, self.pending = self.pending, ""
            return [TextDelta(text)]
        match = _PREFIX.match(self.pending)
        if match is None:
            if len(self.pending) > 64:  # an object, but not our envelope: parse at the end
                self.state = "buffer"
            return []
        rest = self.pending[match.end() :]
        if match.group(1) == "answer" and not self.structured_answer:
            if not rest:
                return []
            if rest[0] == '"':
                self.state = "string"
                self.pending = rest[1:]
                return self._from_string()
        self.state = "buffer"
        self.pending = ""
        return []

    def _from_string(self) -> list[AdapterEvent]:
        out: list[str] = []
        text = self.pending
        i = 0
        while i < len(text):
            char = text[i]
            if char == '"':
                self.state = "after"
                i = len(text)
                break
            if char != "\\":
                out.append(char)
                i += 1
                continue
            if i + 1 >= len(text):
                break  # escape continues in the next delta
            code = text[i + 1]
            if code in _ESCAPES:
                out.append(_ESCAPES[code])
                i += 2
                continue
            if code != "u":
                out.append(code)  # invalid escape: keep the character
                i += 2
                continue
            decoded, used = _unicode_escape(text, i)
            if used == 0:
                break  # incomplete \uXXXX (or surrogate pair): wait for more
            out.append(decoded)
            i += used
        self.pending = text[i:] if self.state == "string" else ""
        piece = "".join(out)
        self.answer.append(piece)
        return [TextDelta(piece)] if piece else []

    def finish(self, reason: FinishReason) -> tuple[list[AdapterEvent], FinishReason]:
        if self.state == "plain":
            return [], reason
        whole = "".join(self.raw)
        try:
            value = json.loads(whole)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            return self._unparsed(whole, reason)
        events: list[AdapterEvent] = []
        streamed = "".join(self.answer)
        answer = value.get("answer")
        if isinstance(answer, str) and not self.structured_answer:
            if answer.startswith(streamed) and len(answer) > len(streamed):
                events.append(TextDelta(answer[len(streamed) :]))
        elif answer is not None:
            events.append(TextDelta(json.dumps(answer, ensure_ascii=False)))
        calls = value.get("tool_calls")
        if isinstance(calls, list):
            for index, call in enumerate(c for c in calls if isinstance(c, dict)):
                name = str(call.get("name", ""))
                arguments = call.get("arguments", {})
                if not isinstance(arguments, dict):
                    arguments = {}
                events.append(
                    ToolCallDelta(
                        index,
                        stable_call_id(self.id_seed, index, name, arguments),
                        name,
                        json.dumps(arguments, ensure_ascii=False),
                    )
                )
            if any(isinstance(e, ToolCallDelta) for e in events) and reason == "stop":
                reason = "tool_calls"
        return events, reason

    def _unparsed(
        self, whole: str, reason: FinishReason
    ) -> tuple[list[AdapterEvent], FinishReason]:
        if self.state in ("string", "after") and (reason == "length" or self.state == "after"):
            return [], reason  # the answer streamed; only the closing was cut or odd
        if reason == "length":
            raise MalformedResponseError(
                "the emulated tool call was cut off by max_output_tokens before its JSON "
                "was complete; allow more output tokens"
            )
        raise MalformedResponseError(
            f"the model's answer is not the expected JSON envelope: {whole[:200]!r}"
        )


def _unicode_escape(text: str, start: int) -> tuple[str, int]:
    """Decode `\\uXXXX` (and a following low surrogate) at `start`; (text, chars used),
    or ("", 0) when the escape is not complete yet."""
    hex1 = text[start + 2 : start + 6]
    if len(hex1) < 4:
        return "", 0
    try:
        high = int(hex1, 16)
    except ValueError:
        return hex1, 6
    if 0xD800 <= high < 0xDC00:
        tail = text[start + 6 : start + 12]
        if len(tail) < 6:
            return "", 0
        if tail.startswith("\\u"):
            try:
                low = int(tail[2:], 16)
            except ValueError:
                low = -1
            if 0xDC00 <= low < 0xE000:
                return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)), 12
        return "\ufffd", 6
    return chr(high), 6


# --- a wrapper for any model --------------------------------------------------------


class EmulatedToolsModel(ProtocolModel):
    """Gives tools to `inner`, a model that follows output JSON schemas but has no
    native tool calling (an OpenAI-compatible local server, for example)."""

    def __init__(self, inner: Model, *, profile: ModelProfile | None = None):
        super().__init__(inner.id, profile or inner.profile)
        self.inner = inner

    async def _stream(self, request: ModelRequest) -> AsyncIterator[AdapterEvent]:
        emulation = emulate_tools(request, parallel_tools=self.profile.parallel_tools)
        async for event in emulation.decode(self._inner_events(emulation.request)):
            yield event

    async def _inner_events(self, request: ModelRequest) -> AsyncIterator[AdapterEvent]:
        async for event in self.inner.stream(request):
            if isinstance(event, StreamEnd):
                reason = event.response.finish_reason
                yield Finish("stop" if reason == "tool_calls" else reason)
                return
            if isinstance(event, StreamError):
                raise event.error
            if isinstance(event, TextDelta | ToolCallDelta | UsageEvent):
                yield event

    async def aclose(self) -> None:
        await self.inner.aclose()
