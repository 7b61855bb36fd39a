"""A gateway target that is not an OpenAI-protocol upstream (`ModelTarget`): a model
of the neutral model layer, its answer encoded into OpenAI's `chat.completion` or
chunks. A stream that breaks is told (`Opened.outcome`, `Opened.error`) and carried
on by the chain's continuation when there is one (failover.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from pilothouse.errors import ModelError, UnavailableError
from pilothouse.models.base import close_stream, end_of_stream
from pilothouse.models.usable import is_content
from pilothouse.server.asgi import sse_error
from pilothouse.server.gateway.chain import ModelTarget
from pilothouse.server.gateway.passthrough import Continuation, Opened, stream_error
from pilothouse.server.openai.answers import ChunkWriter, completion
from pilothouse.server.openai.request import to_model_request, wants_usage
from pilothouse.types import (
    ModelRequest,
    StreamEnd,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)


async def open_model(
    target: ModelTarget,
    data: dict[str, Any],
    stream: bool,
    continuation: Continuation | None = None,
    request: ModelRequest | None = None,
) -> Opened:
    """Start `target`'s answer to the OpenAI body `data` (or to `request`): the whole
    body, or a stream's first chunks up to its first content (so a failure before it
    can still move on to the next target), the rest read as the client reads."""
    request = request or to_model_request(data)
    if not stream:
        response = await target.model.complete(request)
        body = orjson.dumps(completion(response))
        return Opened(target.id, b"application/json", body=body)
    writer = ChunkWriter(target.id, include_usage=wants_usage(data))
    events = target.model.stream(request)
    held: list[bytes] = [writer.role()]
    ended = False
    try:
        async for event in events:
            if isinstance(event, StreamEnd | StreamError):
                await end_of_stream(events)
                ended = True
            held.append(encode_event(writer, event))
            if ended or is_content(event):
                break
    except BaseException:
        await close_stream(events)
        raise

    async def close() -> None:
        await close_stream(events)  # also when the client left before the rest was read

    opened = Opened(target.id, b"text/event-stream; charset=utf-8", first=b"".join(held))
    opened.rest = _model_rest(writer, events, opened, continuation, ended=ended)
    opened.closers.append(close)
    return opened


def encode_event(writer: ChunkWriter, event: StreamEvent) -> bytes:
    """One neutral stream event as OpenAI's chunk bytes (empty when it has none)."""
    if isinstance(event, TextDelta):
        return writer.text(event.text) if event.text else b""
    if isinstance(event, ToolCallDelta):
        return writer.tool_call(event)
    if isinstance(event, StreamEnd):
        response = event.response
        return writer.finish(response.finish_reason, response.usage, model=response.model)
    if isinstance(event, StreamError):
        error = event.error
        return sse_error(
            stream_error(
                error if isinstance(error, ModelError) else UnavailableError(str(error)),
                event.partial.model,
            )
        )
    return b""  # usage comes with the finish; a continuation is marked by the gateway


async def _model_rest(
    writer: ChunkWriter,
    events: AsyncIterator[StreamEvent],
    opened: Opened,
    continuation: Continuation | None,
    *,
    ended: bool,
) -> AsyncIterator[bytes]:
    """The rest of a neutral model's stream as chunks; `ended` when the first events
    already held the end (a short answer)."""
    broken: ModelError | None = None
    text = ""
    calls = False
    try:
        if not ended:
            async for event in events:
                if isinstance(event, StreamError):
                    await end_of_stream(events)
                    error = event.error
                    broken = (
                        error if isinstance(error, ModelError) else UnavailableError(str(error))
                    )
                    text, calls = event.partial.text, bool(event.partial.tool_calls)
                    break
                out = encode_event(writer, event)
                if out:
                    yield out
                if isinstance(event, StreamEnd):
                    ended = True
                    break
    except ModelError as error:
        broken = error
    finally:
        await close_stream(events)
    if broken is None and not ended:  # the model broke its contract: never pass that off
        broken = UnavailableError("the model's stream ended without its end", model=writer.model)
    if broken is None:
        return
    opened.outcome = "stream_interrupted"
    opened.error = broken
    if continuation is not None and not calls:
        async for out in continuation(broken, text, opened):
            yield out
        return
    yield sse_error(stream_error(broken, writer.model))
