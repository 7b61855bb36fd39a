"""Provider-neutral conversation types shared by every layer.

A conversation is a list of `Message`s; a message is made of parts (text, image, tool
call, tool result). A `ModelRequest` asks a model for the next message; a
`ModelResponse` is what came back; a stream is a sequence of `StreamEvent`s ending in
`StreamEnd` (or `StreamError` when the stream broke after content was sent).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


# --- parts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str
    kind: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image by URL, or inline as base64 `data` with its `media_type`."""

    url: str | None = None
    data: str | None = None
    media_type: str = "image/png"
    kind: Literal["image"] = "image"

    def __post_init__(self) -> None:
        if (self.url is None) == (self.data is None):
            raise ValueError("ImagePart needs exactly one of url or data")

    def as_data_url(self) -> str:
        if self.url is not None:
            return self.url
        return f"data:{self.media_type};base64,{self.data}"


@dataclass(frozen=True, slots=True)
class ToolCallPart:
    """The model asks for a tool to run. `arguments` is the parsed JSON object; when
    the model sent text that is not a JSON object, `arguments` is empty and
    `raw_arguments` keeps what it sent so the caller can report it back."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    raw_arguments: str | None = None
    kind: Literal["tool_call"] = "tool_call"

    @property
    def arguments_json(self) -> str:
        if self.raw_arguments is not None and not self.arguments:
            return self.raw_arguments
        return json.dumps(self.arguments, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    tool_call_id: str
    name: str
    content: str
    is_error: bool = False
    kind: Literal["tool_result"] = "tool_result"


Part: TypeAlias = TextPart | ImagePart | ToolCallPart | ToolResultPart


def parse_tool_arguments(raw: str) -> tuple[dict[str, Any], str | None]:
    """Parse a tool call's argument text. Returns (arguments, raw-if-unparseable)."""
    text = raw.strip()
    if not text:
        return {}, None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}, raw
    if isinstance(value, dict):
        return value, None
    return {}, raw


# --- messages ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    parts: tuple[Part, ...]
    name: str | None = None
    """Who speaks, where a prompt says so (Prompty `user[name="Ada"]:`); sent where the
    wire protocol has a field for it (OpenAI chat `name`), left out elsewhere."""

    @classmethod
    def system(cls, text: str) -> Message:
        return cls("system", (TextPart(text),))

    @classmethod
    def user(cls, text: str, *images: ImagePart) -> Message:
        return cls("user", (TextPart(text), *images))

    @classmethod
    def assistant(cls, text: str = "", tool_calls: tuple[ToolCallPart, ...] = ()) -> Message:
        parts: tuple[Part, ...] = ((TextPart(text),) if text else ()) + tool_calls
        return cls("assistant", parts)

    @classmethod
    def tool(cls, *results: ToolResultPart) -> Message:
        return cls("tool", results)

    @property
    def text(self) -> str:
        """All text parts joined; empty when there are none."""
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.parts if isinstance(p, ToolCallPart)]

    @property
    def tool_results(self) -> list[ToolResultPart]:
        return [p for p in self.parts if isinstance(p, ToolResultPart)]

    @property
    def images(self) -> list[ImagePart]:
        return [p for p in self.parts if isinstance(p, ImagePart)]


# --- tools and requests -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call. `parameters` is a JSON Schema for an object."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


ToolChoice: TypeAlias = Literal["auto", "none", "required"] | str
"""`auto`, `none`, `required`, or the name of one tool that must be called."""


@dataclass(frozen=True, slots=True)
class OutputSchema:
    """Ask for a JSON answer that validates against `schema`."""

    schema: dict[str, Any]
    name: str = "output"
    strict: bool = True


@dataclass(frozen=True, slots=True)
class ModelRequest:
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = "auto"
    parallel_tool_calls: bool = True
    output_schema: OutputSchema | None = None
    temperature: float | None = None
    max_output_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    grammar: str | None = None
    """A llama.cpp grammar (GBNF) the reply follows, instead of `output_schema`: for
    models whose profile says `grammar` (the embedded runtime), where a request that
    ends with an assistant message is continued from it and a JSON schema cannot say
    how the rest of a half-written JSON reply goes (copilot/answer_opening.py)."""

    @property
    def system_text(self) -> str:
        """All system messages joined, for protocols with a separate system field."""
        return "\n\n".join(m.text for m in self.messages if m.role == "system")

    @property
    def conversation(self) -> tuple[Message, ...]:
        """Messages other than system ones."""
        return tuple(m for m in self.messages if m.role != "system")


# --- responses --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
        )


@dataclass(frozen=True, slots=True)
class ModelResponse:
    message: Message
    finish_reason: FinishReason
    usage: Usage
    model: str
    """The model that actually answered (after any fallback), as `provider:model`."""
    latency_s: float = 0.0
    cost_usd: float | None = None

    @property
    def text(self) -> str:
        return self.message.text

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return self.message.tool_calls

    def json(self) -> Any:
        """The answer parsed as JSON (for structured output)."""
        return json.loads(self.text)


# --- stream events ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    kind: Literal["text_delta"] = "text_delta"


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of tool call `index`: the first piece carries id and name, later ones
    carry more argument text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments_delta: str = ""
    kind: Literal["tool_call_delta"] = "tool_call_delta"


@dataclass(frozen=True, slots=True)
class UsageEvent:
    usage: Usage
    kind: Literal["usage"] = "usage"


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The stream finished; `response` is the whole assembled answer."""

    response: ModelResponse
    kind: Literal["end"] = "end"


@dataclass(frozen=True, slots=True)
class StreamError:
    """The stream broke after content had been sent. The content received so far is
    in `partial`; it is incomplete and must not be taken for a whole answer."""

    error: Exception
    partial: ModelResponse
    kind: Literal["error"] = "error"


@dataclass(frozen=True, slots=True)
class StreamContinued:
    """The stream broke after content was sent, and `model` carries on from the text
    already sent (a fallback chain with `continue_streams`): the events after this one
    come from `model`, and `error` is what broke the stream before."""

    model: str
    error: Exception
    kind: Literal["continued"] = "continued"


StreamEvent: TypeAlias = (
    TextDelta | ToolCallDelta | UsageEvent | StreamContinued | StreamEnd | StreamError
)
ContentEvent = (TextDelta, ToolCallDelta)


# --- plain-data form (for storage, traces and HTTP) -------------------------------


def part_to_dict(part: Part) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": part.kind}
    if isinstance(part, TextPart):
        data["text"] = part.text
    elif isinstance(part, ImagePart):
        data.update({"url": part.url, "data": part.data, "media_type": part.media_type})
    elif isinstance(part, ToolCallPart):
        data.update({"id": part.id, "name": part.name, "arguments": part.arguments})
        if part.raw_arguments is not None:
            data["raw_arguments"] = part.raw_arguments
    else:
        data.update(
            {
                "tool_call_id": part.tool_call_id,
                "name": part.name,
                "content": part.content,
                "is_error": part.is_error,
            }
        )
    return data


def part_from_dict(data: dict[str, Any]) -> Part:
    fields = {k: v for k, v in data.items() if k != "kind"}
    kinds: dict[str, type[Part]] = {
        "text": TextPart,
        "image": ImagePart,
        "tool_call": ToolCallPart,
        "tool_result": ToolResultPart,
    }
    kind = data.get("kind")
    if kind not in kinds:
        raise ValueError(f"unknown message part kind {kind!r}")
    return kinds[kind](**fields)


def message_to_dict(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = {"role": message.role, "parts": [part_to_dict(p) for p in message.parts]}
    if message.name is not None:
        data["name"] = message.name
    return data


def message_from_dict(data: dict[str, Any]) -> Message:
    role = data.get("role")
    if role not in ("system", "user", "assistant", "tool"):
        raise ValueError(f"unknown message role {role!r}")
    name = data.get("name")
    parts = tuple(part_from_dict(p) for p in data.get("parts", []))
    return Message(role, parts, name if isinstance(name, str) else None)
