"""Gateway failover: answering one chain (a public model name's targets in order).

The answer starts on the first target that can give one; a target that fails before
the first byte reaches the client moves the request on, after the route's retries, to
the next one (see gateway.py's docstring for when). OpenAI-protocol targets go through
the pass-through (passthrough.py); any other model through the neutral model layer,
encoded back into OpenAI's format.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from pilothouse.errors import (
    BadRequestError,
    CircuitOpenError,
    ContextTooLongError,
    ModelError,
    ModelTimeoutError,
    RateLimitedError,
    UnavailableError,
)
from pilothouse.models.base import Model, close_stream
from pilothouse.server.asgi import HTTPError, sse_error
from pilothouse.server.openai_answers import ChunkWriter, completion
from pilothouse.server.openai_request import to_model_request, wants_usage
from pilothouse.server.passthrough import (
    Opened,
    PassThroughTarget,
    open_passthrough,
    stream_error,
)
from pilothouse.server.routes import Route
from pilothouse.types import (
    StreamEnd,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageEvent,
)

# --- targets -------------------------------------------------------------------------


@dataclass
class ModelTarget:
    """Any other model, through the neutral model layer."""

    id: str
    model: Model


Target = PassThroughTarget | ModelTarget


@dataclass
class Chain:
    """What one public model name resolves to."""

    name: str
    targets: list[Target]
    route: Route | None
    retry: Any = None
    timeout: Any = None
    json_timeout: aiohttp.ClientTimeout | None = None
    stream_timeout: aiohttp.ClientTimeout | None = None
    rng: random.Random = field(default_factory=random.Random)


# --- answering -----------------------------------------------------------------------


async def open_chain(
    session: aiohttp.ClientSession, chain: Chain, data: dict[str, Any], stream: bool
) -> Opened:
    """Start the answer on the first target that can give one (see the module
    docstring). Raises HTTPError when every target failed, UpstreamClientError
    when an upstream refused the request itself."""
    errors: list[ModelError] = []
    for target in chain.targets:
        if isinstance(target, ModelTarget):
            try:
                return await _open_model(target, data, stream)
            except ModelError as error:
                errors.append(error)
                refused = isinstance(error, BadRequestError) and not isinstance(
                    error, ContextTooLongError
                )
                if not error.failover or refused:
                    break
                continue
        attempt = 1
        while True:
            try:
                target.breaker.before_call()
            except CircuitOpenError as error:
                errors.append(error)
                break
            try:
                timeout = chain.stream_timeout if stream else chain.json_timeout
                return await open_passthrough(session, target, chain.timeout, timeout, data, stream)
            except ModelError as error:
                target.breaker.record_failure(error)
                delay = chain.retry.delay(attempt, error, chain.rng)
                if delay is not None:
                    await asyncio.sleep(delay)
                    attempt += 1
                    continue
                errors.append(error)
                break
            except BaseException:
                target.breaker.probing = False
                raise
        if errors and not errors[-1].failover:
            break
    raise _failed(chain, errors)


async def _open_model(target: ModelTarget, data: dict[str, Any], stream: bool) -> Opened:
    request = to_model_request(data)
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
            held.append(_encode(writer, event))
            if isinstance(event, StreamEnd | StreamError):
                ended = True
                break
            if _is_content(event):
                break
    except BaseException:
        await close_stream(events)
        raise
    return Opened(
        target.id,
        b"text/event-stream; charset=utf-8",
        first=b"".join(held),
        rest=_model_rest(writer, events, ended=ended),
    )


def _is_content(event: StreamEvent) -> bool:
    if isinstance(event, TextDelta):
        return bool(event.text)
    return isinstance(event, ToolCallDelta)


def _encode(writer: ChunkWriter, event: StreamEvent) -> bytes:
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
    assert isinstance(event, UsageEvent)
    return b""


async def _model_rest(
    writer: ChunkWriter, events: AsyncIterator[StreamEvent], *, ended: bool
) -> AsyncIterator[bytes]:
    """The rest of a neutral model's stream as chunks; `ended` when the first events
    already held the end (a short answer)."""
    try:
        if not ended:
            async for event in events:
                out = _encode(writer, event)
                if out:
                    yield out
                if isinstance(event, StreamEnd | StreamError):
                    ended = True
                    break
    except ModelError as error:
        ended = True
        yield sse_error(stream_error(error, writer.model))
    finally:
        await close_stream(events)
    if not ended:  # the model broke its contract: never pass that off as complete
        broken = UnavailableError("the model's stream ended without its end", model=writer.model)
        yield sse_error(stream_error(broken, writer.model))


def _failed(chain: Chain, errors: list[ModelError]) -> HTTPError:
    """The client's answer when no target could answer."""
    summary = "; ".join(f"{type(e).__name__}: {e}" for e in errors) or "no target"
    what = f"route {chain.name!r}" if chain.route is not None else f"model {chain.name!r}"
    message = f"{what}: every target failed ({summary})"
    if errors and all(isinstance(e, RateLimitedError) for e in errors):
        waits = [e.retry_after for e in errors if isinstance(e, RateLimitedError) and e.retry_after]
        headers = [(b"retry-after", str(max(1, int(min(waits) + 0.999))).encode())] if waits else []
        return HTTPError(429, message, code="upstream_rate_limited", headers=headers)
    if errors and all(isinstance(e, ModelTimeoutError) for e in errors):
        return HTTPError(504, message, code="upstream_timeout")
    if errors and isinstance(errors[-1], BadRequestError):
        return HTTPError(400, message, code="upstream_rejected", type="invalid_request_error")
    return HTTPError(502, message, code="upstream_failed", type="upstream_error")
