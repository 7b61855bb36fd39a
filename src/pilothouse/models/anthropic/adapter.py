"""The Anthropic Messages protocol (`POST {base_url}/v1/messages`).

How the neutral request maps onto the wire:

- system messages become the top-level `system` string; the rest alternate `user` /
  `assistant`, so consecutive messages of one role (a tool message followed by a user
  message, say) are merged into one turn. Tool results travel as `tool_result` blocks
  at the start of a **user** turn; tool calls as `tool_use` blocks at the end of an
  assistant turn.
- `max_tokens` is required by Anthropic: `max_output_tokens`, else 4096.
- `seed` has no Anthropic counterpart and is not sent.
- Structured output: the classic Messages API has no JSON-schema response field, so the
  output schema is offered as one extra tool (named after `OutputSchema.name`) whose
  `input_schema` is the schema, and `tool_choice` forces it (or `any` tool, when the
  caller's own tools may be called first). The input of that tool call is returned as
  the JSON text of the answer, with finish reason `stop`. A schema whose top level is
  not an object is wrapped as `{"value": schema}` and unwrapped on the way back.
- Usage: Anthropic's `input_tokens` excludes prompt-cache reads and writes. Pilothouse
  reports `input_tokens` as fresh + cache creation + cache read tokens, so totals are
  comparable across vendors, and `cached_tokens` as the cache reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from pilothouse.config import Settings
from pilothouse.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    MalformedResponseError,
    ModelError,
    ModelNotAvailableError,
)
from pilothouse.models.base import AdapterEvent, Completion, Finish, ProtocolModel, dump_json
from pilothouse.models.http import (
    error_for_status,
    make_client,
    open_sse,
    parse_json_data,
    post_json,
    safe_url,
)
from pilothouse.models.providers import Endpoint, provider_entry
from pilothouse.types import (
    FinishReason,
    ImagePart,
    Message,
    ModelRequest,
    OutputSchema,
    Part,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
    Usage,
    UsageEvent,
    parse_tool_arguments,
)

DEFAULT_API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# The HTTP status Anthropic documents for each error type, so an in-stream `error`
# event maps to the same typed error as the HTTP answer would.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_DATA_URL = re.compile(r"^data:(?P<media>[\w/+.-]+);base64,(?P<data>.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class _OutputTool:
    """The tool that carries a structured answer."""

    name: str
    wrapped: bool  # the schema was wrapped as {"value": schema}

    def answer(self, arguments: Any) -> str:
        if self.wrapped and isinstance(arguments, dict):
            return dump_json(arguments.get("value"))
        return dump_json(arguments if arguments is not None else {})


@dataclass(slots=True)
class _Block:
    """One content block of a streamed answer."""

    kind: str  # text, call, output or other
    call_index: int = 0
    buffered: list[str] = field(default_factory=list)
    emitted: bool = False


class AnthropicModel(ProtocolModel):
    """A Claude model (or any server speaking the Messages API)."""

    def __init__(self, model_id: str, name: str, endpoint: Endpoint, settings: Settings):
        super().__init__(model_id)
        self.name = name
        self.endpoint = endpoint
        entry = provider_entry(endpoint.provider, settings)
        self._key_env = entry.key_env
        self._key_required = entry.key_required
        self._client: httpx.AsyncClient | None = None

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    # --- transport -----------------------------------------------------------------

    def _url(self) -> str:
        base = self.endpoint.base_url.rstrip("/")
        if not base:
            raise ConfigError(
                f"{self.id}: no base URL for provider {self.endpoint.provider!r}; "
                f"set base_url in [providers.{self.endpoint.provider}] of config.toml"
            )
        return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"

    def _headers(self) -> dict[str, str]:
        if self.endpoint.api_key is None and self._key_required:
            where = f"the {self._key_env} environment variable or " if self._key_env else ""
            raise AuthenticationError(
                f"no API key for provider {self.endpoint.provider!r}: set {where}api_key "
                f"in [providers.{self.endpoint.provider}] of config.toml",
                model=self.id,
            )
        return {
            **self.endpoint.auth_headers(),
            "anthropic-version": self.endpoint.api_version or DEFAULT_API_VERSION,
        }

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = make_client(self.endpoint)
        return self._client

    def _refine(self, error: ModelError) -> ModelError:
        """Anthropic answers 404 `not_found_error` for an unknown model name."""
        if isinstance(error, BadRequestError) and error.status == 404:
            return ModelNotAvailableError(
                f"{error.detail}; check the model name {self.name!r} against the "
                "provider's model list",
                model=self.id,
                status=404,
            )
        return error

    # --- requests ------------------------------------------------------------------

    def _payload(
        self, request: ModelRequest, *, stream: bool
    ) -> tuple[dict[str, Any], _OutputTool | None]:
        payload: dict[str, Any] = {
            "model": self.name,
            "max_tokens": request.max_output_tokens or DEFAULT_MAX_TOKENS,
            "messages": _wire_messages(request.conversation),
        }
        if request.system_text:
            payload["system"] = request.system_text
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        if request.stop:
            payload["stop_sequences"] = list(request.stop)
        output = self._tools(request, payload)
        if stream:
            payload["stream"] = True
        return payload, output

    def _tools(self, request: ModelRequest, payload: dict[str, Any]) -> _OutputTool | None:
        """Fill `tools` and `tool_choice`; return the output tool where one is used."""
        tools = [_wire_tool(spec) for spec in request.tools]
        names = {spec.name for spec in request.tools}
        choice = request.tool_choice
        if choice not in ("auto", "none") and not tools:
            raise BadRequestError(
                f"tool_choice={choice!r} but the request offers no tools; "
                "add the tool or use tool_choice='auto'",
                model=self.id,
            )
        if choice not in ("auto", "none", "required") and choice not in names:
            raise BadRequestError(
                f"tool_choice names {choice!r}, which is not among the request's tools "
                f"({', '.join(sorted(names))})",
                model=self.id,
            )
        output: _OutputTool | None = None
        wire_choice: dict[str, Any] | None = None
        if request.output_schema is not None:
            output, spec = _output_tool(request.output_schema, names)
            tools.append(spec)
            if not request.tools or choice == "none":
                wire_choice = {"type": "tool", "name": output.name}
            elif choice in ("auto", "required"):
                wire_choice = {"type": "any"}
            else:
                wire_choice = {"type": "tool", "name": choice}
        elif tools:
            wire_choice = {
                "auto": {"type": "auto"},
                "none": {"type": "none"},
                "required": {"type": "any"},
            }.get(choice, {"type": "tool", "name": choice})
        if not tools:
            return None
        payload["tools"] = tools
        assert wire_choice is not None
        single = not (request.parallel_tool_calls and self.profile.parallel_tools)
        forced_output = output is not None and wire_choice.get("name") == output.name
        if wire_choice["type"] != "none" and (single or forced_output):
            # one structured answer; or the caller asked for one call at a time
            wire_choice["disable_parallel_tool_use"] = True
        payload["tool_choice"] = wire_choice
        return output

    # --- non-streaming -------------------------------------------------------------

    async def _complete(self, request: ModelRequest) -> Completion:
        headers = self._headers()
        payload, output = self._payload(request, stream=False)
        url = self._url()
        try:
            data = await post_json(self._http(), url, payload, headers, model=self.id)
        except ModelError as error:
            raise self._refine(error) from None
        if data.get("type") == "error":
            raise self._event_error(data, url)
        content = data.get("content")
        if not isinstance(content, list):
            raise MalformedResponseError(
                f"{safe_url(url)} answered a message without a content list", model=self.id
            )
        parts: list[Part] = []
        texts: list[str] = []
        for block in content:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text":
                texts.append(str(block.get("text") or ""))
            elif kind == "tool_use" and output is not None and block.get("name") == output.name:
                texts.append(output.answer(block.get("input")))
            elif kind == "tool_use":
                parts.append(_tool_call(block))
        text = "".join(texts)
        message = Message("assistant", ((TextPart(text),) if text else ()) + tuple(parts))
        finish = _finish(data.get("stop_reason"), calls=bool(parts))
        return Completion(message, finish, _usage(_merge_usage({}, data.get("usage"))))

    # --- streaming -----------------------------------------------------------------

    async def _stream(self, request: ModelRequest) -> AsyncIterator[AdapterEvent]:
        headers = self._headers()
        payload, output = self._payload(request, stream=True)
        url = self._url()
        shown = safe_url(url)
        decoder = _StreamDecoder(output, model=self.id, url=shown)
        try:
            async with open_sse(self._http(), url, payload, headers, model=self.id) as events:
                async for sse in events:
                    if not sse.data.strip():
                        continue
                    data = parse_json_data(sse, model=self.id, url=shown)
                    if not isinstance(data, dict):
                        raise MalformedResponseError(
                            f"{shown} sent a stream event that is not an object", model=self.id
                        )
                    if (data.get("type") or sse.event) == "error":
                        raise self._event_error(data, url)
                    for event in decoder.feed(data):
                        yield event
                        if isinstance(event, Finish):
                            return
        except ModelError as error:
            raise self._refine(error) from None

    def _event_error(self, data: dict[str, Any], url: str) -> ModelError:
        """The typed error for Anthropic's `{"type": "error", "error": {...}}`."""
        error = data.get("error")
        kind = error.get("type") if isinstance(error, dict) else None
        status = _ERROR_STATUS.get(str(kind), 500)
        return self._refine(
            error_for_status(status, json.dumps(data), {}, model=self.id, url=safe_url(url))
        )


class _StreamDecoder:
    """Turns Anthropic stream events into adapter events; `Finish` on message_stop.

    Content block indexes count text and tool blocks together; tool calls are
    renumbered 0, 1, ... in the order they start."""

    def __init__(self, output: _OutputTool | None, *, model: str, url: str) -> None:
        self.output = output
        self.model = model
        self.url = url
        self.blocks: dict[int, _Block] = {}
        self.usage: dict[str, int] = {}
        self.stop_reason: Any = None
        self.calls = 0

    def malformed(self, what: str) -> MalformedResponseError:
        return MalformedResponseError(f"{self.url} sent {what}", model=self.model)

    def feed(self, data: dict[str, Any]) -> list[AdapterEvent]:
        kind = data.get("type")
        if kind == "message_start":
            message = data.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            return self.add_usage(usage)
        if kind == "content_block_start":
            return self.start(data)
        if kind == "content_block_delta":
            return self.delta(data)
        if kind == "content_block_stop":
            return self.stop(data)
        if kind == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                self.stop_reason = delta["stop_reason"]
            return self.add_usage(data.get("usage"))
        if kind == "message_stop":
            return [Finish(_finish(self.stop_reason, calls=self.calls > 0))]
        return []  # ping, and event types added later, are ignored as Anthropic asks

    def add_usage(self, usage: Any) -> list[AdapterEvent]:
        if not isinstance(usage, dict) or not usage:
            return []
        self.usage = _merge_usage(self.usage, usage)
        return [UsageEvent(_usage(self.usage))]

    def start(self, data: dict[str, Any]) -> list[AdapterEvent]:
        index, start = data.get("index"), data.get("content_block")
        if not isinstance(index, int) or not isinstance(start, dict):
            raise self.malformed("content_block_start without an index or a block")
        block = _Block("other")
        self.blocks[index] = block
        if start.get("type") == "text":
            block.kind = "text"
            return [TextDelta(str(start["text"]))] if start.get("text") else []
        if start.get("type") != "tool_use":
            return []  # thinking and server-tool blocks carry no answer
        if self.output is not None and start.get("name") == self.output.name:
            block.kind = "output"
            return []
        block.kind, block.call_index = "call", self.calls
        self.calls += 1
        call_id, name = str(start.get("id") or ""), str(start.get("name") or "")
        return [ToolCallDelta(block.call_index, call_id, name)]

    def delta(self, data: dict[str, Any]) -> list[AdapterEvent]:
        delta, index = data.get("delta"), data.get("index")
        if not isinstance(delta, dict) or not isinstance(index, int):
            raise self.malformed("content_block_delta without an index or a delta")
        kind = delta.get("type")
        if kind == "text_delta":
            text = str(delta.get("text") or "")
            return [TextDelta(text)] if text else []
        if kind != "input_json_delta":
            return []  # thinking, signature and citation deltas carry no answer text
        block = self.blocks.get(index)
        if block is None or block.kind not in ("call", "output"):
            raise self.malformed(f"input_json_delta for block {index}, which is not a tool_use")
        piece = str(delta.get("partial_json") or "")
        if block.kind == "call":
            return [ToolCallDelta(block.call_index, arguments_delta=piece)] if piece else []
        if self.output is not None and self.output.wrapped:
            block.buffered.append(piece)  # unwrapping needs the whole object: at block stop
            return []
        block.emitted = block.emitted or bool(piece)
        return [TextDelta(piece)] if piece else []

    def stop(self, data: dict[str, Any]) -> list[AdapterEvent]:
        index = data.get("index")
        block = self.blocks.get(index) if isinstance(index, int) else None
        if block is None or block.kind != "output" or self.output is None or block.emitted:
            return []
        raw = "".join(block.buffered) or "{}"
        arguments, bad = parse_tool_arguments(raw)
        return [TextDelta(self.output.answer(arguments) if bad is None else raw)]


# --- mapping helpers -----------------------------------------------------------------


def _wire_messages(conversation: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Anthropic turns: alternating roles, tool results in user turns, first."""
    turns: list[dict[str, Any]] = []
    for message in conversation:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = [block for part in message.parts if (block := _wire_part(part)) is not None]
        if not blocks:
            continue  # Anthropic rejects empty turns
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        # tool results must open a user turn; tool calls close an assistant turn
        first = "tool_result" if turn["role"] == "user" else None
        last = "tool_use" if turn["role"] == "assistant" else None
        turn["content"].sort(
            key=lambda b: 0 if b["type"] == first else 2 if b["type"] == last else 1
        )
    return turns


def _wire_part(part: Part) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ImagePart):
        return {"type": "image", "source": _image_source(part)}
    if isinstance(part, ToolCallPart):
        return {
            "type": "tool_use",
            "id": _wire_id(part.id),
            "name": part.name,
            "input": dict(part.arguments),
        }
    if isinstance(part, ToolResultPart):
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": _wire_id(part.tool_call_id)}
        if part.content:
            block["content"] = part.content
        if part.is_error:
            block["is_error"] = True
        return block
    return None


def _image_source(image: ImagePart) -> dict[str, Any]:
    if image.data is not None:
        return {"type": "base64", "media_type": image.media_type, "data": image.data}
    url = image.url or ""
    match = _DATA_URL.match(url)
    if match:
        return {"type": "base64", "media_type": match["media"], "data": match["data"]}
    return {"type": "url", "url": url}


def _wire_id(call_id: str) -> str:
    """Anthropic tool ids must match ^[a-zA-Z0-9_-]+$; ids from other vendors may not."""
    return _NAME_CHARS.sub("_", call_id) or "toolu_unnamed"


def _wire_tool(spec: ToolSpec) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": spec.name, "input_schema": spec.parameters}
    if spec.description:
        tool["description"] = spec.description
    return tool


def _output_tool(schema: OutputSchema, taken: set[str]) -> tuple[_OutputTool, dict[str, Any]]:
    name = _NAME_CHARS.sub("_", schema.name)[:64] or "output"
    while name in taken:
        name = f"{name[:57]}_answer"
    wrapped = schema.schema.get("type") != "object"
    input_schema = (
        {"type": "object", "properties": {"value": schema.schema}, "required": ["value"]}
        if wrapped
        else schema.schema
    )
    spec = {
        "name": name,
        "description": "Give the final answer by calling this tool; its input is the answer.",
        "input_schema": input_schema,
    }
    return _OutputTool(name, wrapped), spec


def _tool_call(block: dict[str, Any]) -> ToolCallPart:
    arguments = block.get("input")
    if isinstance(arguments, dict):
        return ToolCallPart(str(block.get("id") or ""), str(block.get("name") or ""), arguments)
    raw = json.dumps(arguments) if arguments is not None else None
    return ToolCallPart(str(block.get("id") or ""), str(block.get("name") or ""), {}, raw)


def _finish(stop_reason: Any, *, calls: bool) -> FinishReason:
    reason = _STOP_REASONS.get(str(stop_reason), "stop")
    if reason == "tool_calls" and not calls:
        return "stop"  # only the structured-output tool was called
    return reason


_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


def _merge_usage(state: dict[str, int], usage: Any) -> dict[str, int]:
    """Later figures (message_delta's are cumulative) replace earlier ones."""
    merged = dict(state)
    if isinstance(usage, dict):
        for key in _USAGE_FIELDS:
            value = usage.get(key)
            if isinstance(value, int):
                merged[key] = value
    return merged


def _usage(state: dict[str, int]) -> Usage:
    read = state.get("cache_read_input_tokens", 0)
    created = state.get("cache_creation_input_tokens", 0)
    return Usage(
        input_tokens=state.get("input_tokens", 0) + created + read,
        output_tokens=state.get("output_tokens", 0),
        cached_tokens=read,
    )
