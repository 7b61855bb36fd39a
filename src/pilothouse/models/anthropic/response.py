"""Messages API answers back into neutral form: whole messages, stream events, stop
reasons, usage and in-band error events.

Usage: Anthropic's `input_tokens` excludes prompt-cache reads and writes. Pilothouse
reports `input_tokens` as fresh + cache creation + cache read tokens, so totals are
comparable across vendors, and `cached_tokens` as the cache reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pilothouse.errors import MalformedResponseError, ModelError
from pilothouse.models.anthropic.request import OutputTool
from pilothouse.models.base import AdapterEvent, Completion, Finish
from pilothouse.models.http import error_for_status
from pilothouse.types import (
    FinishReason,
    Message,
    Part,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
    UsageEvent,
    parse_tool_arguments,
)

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
_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


def event_error(data: dict[str, Any], *, model: str, url: str) -> ModelError:
    """The typed error for Anthropic's `{"type": "error", "error": {...}}`, as the
    HTTP answer with that error type's documented status would give it."""
    error = data.get("error")
    kind = error.get("type") if isinstance(error, dict) else None
    status = _ERROR_STATUS.get(str(kind), 500)
    return error_for_status(status, json.dumps(data), {}, model=model, url=url)


def parse_message(
    data: dict[str, Any], output: OutputTool | None, *, model: str, url: str
) -> Completion:
    """The completion in a whole `message` answer; the output tool's input becomes
    the answer text."""
    content = data.get("content")
    if not isinstance(content, list):
        raise MalformedResponseError(
            f"{url} answered a message without a content list", model=model
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


@dataclass(slots=True)
class _Block:
    """One content block of a streamed answer."""

    kind: str  # text, call, output or other
    call_index: int = 0
    buffered: list[str] = field(default_factory=list)
    emitted: bool = False


class StreamDecoder:
    """Turns Anthropic stream events into adapter events; `Finish` on message_stop.

    Content block indexes count text and tool blocks together; tool calls are
    renumbered 0, 1, ... in the order they start."""

    def __init__(self, output: OutputTool | None, *, model: str, url: str) -> None:
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
