"""Chat Completions answers (a `chat.completion`, or `chat.completion.chunk` events)
fed to a `ResponseBuilder`: how `/v1/responses` answers from a raw model or a route,
whose answer comes from the gateway in Chat Completions form."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from pilothouse.server.asgi import Send
from pilothouse.server.openai.responses_output import ResponseBuilder
from pilothouse.types import Usage

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


async def write(send: Send, data: bytes) -> None:
    if data:
        await send({"type": "http.response.body", "body": data, "more_body": True})


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    details = raw.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=int(raw.get("prompt_tokens") or 0),
        output_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0,
    )


def feed_completion(builder: ResponseBuilder, completion: dict[str, Any]) -> None:
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    if message.get("content"):
        builder.text(message["content"])
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        builder.tool_call(
            index, call.get("id"), function.get("name"), function.get("arguments") or ""
        )
    builder.model = completion.get("model") or builder.model
    builder.finish(
        _usage(completion.get("usage")), incomplete=_INCOMPLETE.get(choice.get("finish_reason"))
    )


async def feed_stream(
    builder: ResponseBuilder,
    send: Send,
    first: bytes,
    rest: AsyncIterator[bytes] | None,
    before_end: Callable[[], Awaitable[None]],
) -> None:
    """Chat completion chunks (SSE bytes) -> response events, written as they come."""
    buffer = b""
    usage = Usage()
    finish: str | None = None

    async def chunks() -> AsyncIterator[bytes]:
        yield first
        if rest is not None:
            async for piece in rest:
                yield piece

    async for piece in chunks():
        buffer += piece
        while b"\n\n" in buffer:
            raw, buffer = buffer.split(b"\n\n", 1)
            for line in raw.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    continue
                chunk = orjson.loads(payload)
                if "error" in chunk:
                    error = chunk["error"] if isinstance(chunk["error"], dict) else {}
                    failed = {
                        "code": "server_error",
                        "message": str(error.get("message", "the model failed")),
                    }
                    await write(send, builder.finish(usage, error=failed))
                    return
                if chunk.get("usage"):
                    usage = _usage(chunk["usage"])
                if chunk.get("model"):
                    builder.model = chunk["model"]
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    out = b""
                    if delta.get("content"):
                        out += builder.text(delta["content"])
                    for call in delta.get("tool_calls") or []:
                        function = call.get("function") or {}
                        out += builder.tool_call(
                            int(call.get("index", 0)), call.get("id"), function.get("name"),
                            function.get("arguments") or "",
                        )  # fmt: skip
                    finish = choice.get("finish_reason") or finish
                    if out:
                        await write(send, out)
    end = builder.finish(usage, incomplete=_INCOMPLETE.get(finish or ""))
    await before_end()  # e.g. store the response before the client can ask for it
    await write(send, end)
