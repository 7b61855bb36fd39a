"""The OpenAI Chat Completions wire format, server side: writing answers back as
`chat.completion` JSON or `chat.completion.chunk` server-sent events."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any

import orjson

from pilothouse.server.openai.request import EXTENSION
from pilothouse.types import (
    FinishReason,
    ModelResponse,
    ToolCallDelta,
    ToolCallPart,
    Usage,
)


def completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def usage_dict(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def tool_call_dict(call: ToolCallPart) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments_json},
    }


def finish_reason(reason: FinishReason) -> str:
    return "stop" if reason == "error" else reason


def completion(
    response: ModelResponse,
    *,
    model: str | None = None,
    extension: dict[str, Any] | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    """A `chat.completion` object for a neutral response."""
    calls = response.tool_calls
    return completion_body(
        completion_id(),
        model or response.model,
        (response.text if text is None else text) or (None if calls else ""),
        finish_reason(response.finish_reason),
        response.usage,
        tool_calls=calls,
        extension=extension,
    )


def completion_body(
    answer_id: str,
    model: str,
    content: str | None,
    finish: str,
    usage: Usage,
    *,
    tool_calls: Sequence[ToolCallPart] = (),
    extension: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The one `chat.completion` object: a raw model's answer (`completion`) and a
    copilot's (copilot_api) are both written here."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = [tool_call_dict(c) for c in tool_calls]
    body: dict[str, Any] = {
        "id": answer_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": usage_dict(usage),
    }
    if extension is not None:
        body[EXTENSION] = extension
    return body


class ChunkWriter:
    """Writes one answer as `chat.completion.chunk` SSE events."""

    def __init__(self, model: str, *, include_usage: bool = False) -> None:
        self.id = completion_id()
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self._started_calls: set[int] = set()

    def _chunk(
        self,
        delta: dict[str, Any],
        finish: str | None = None,
        *,
        extension: dict[str, Any] | None = None,
        model: str | None = None,
    ) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": model or self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if extension is not None:
            chunk[EXTENSION] = extension
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def role(self) -> bytes:
        return self._chunk({"role": "assistant", "content": ""})

    def text(self, text: str) -> bytes:
        return self._chunk({"content": text})

    def tool_call(self, delta: ToolCallDelta) -> bytes:
        call: dict[str, Any] = {"index": delta.index}
        function: dict[str, Any] = {"arguments": delta.arguments_delta}
        if delta.index not in self._started_calls:
            self._started_calls.add(delta.index)
            call["id"] = delta.id or f"call_{delta.index}"
            call["type"] = "function"
            function["name"] = delta.name or ""
        call["function"] = function
        return self._chunk({"tool_calls": [call]})

    def progress(self, extension: dict[str, Any]) -> bytes:
        """An empty delta carrying an extension event (tool progress of a copilot)."""
        return self._chunk({}, extension=extension)

    def finish(
        self,
        reason: FinishReason,
        usage: Usage,
        *,
        model: str | None = None,
        extension: dict[str, Any] | None = None,
    ) -> bytes:
        """The last chunk (finish reason, the extension), the usage chunk when asked
        for (carrying the extension too: it is then the last chunk), and `[DONE]`."""
        out = self._chunk({}, finish_reason(reason), extension=extension, model=model)
        if self.include_usage:
            usage_chunk: dict[str, Any] = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": model or self.model,
                "choices": [],
                "usage": usage_dict(usage),
            }
            if extension is not None:
                usage_chunk[EXTENSION] = extension
            out += b"data: " + orjson.dumps(usage_chunk) + b"\n\n"
        return out + b"data: [DONE]\n\n"
