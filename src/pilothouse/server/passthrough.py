"""The gateway's fast path: an OpenAI-protocol upstream spoken to in its own bytes.

The client's JSON body goes to the upstream with only `model` rewritten; the upstream's
answer comes back unchanged, whole events at a time. Until the first content event
nothing reaches the client, so any failure before it can still fail over; after it, a
broken, stalled or truncated stream ends with an SSE error event (never silently).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from pilothouse.errors import (
    AuthenticationError,
    ModelError,
    ModelTimeoutError,
    UnavailableError,
)
from pilothouse.models.breaker import CircuitBreaker
from pilothouse.models.http import error_for_status
from pilothouse.server.asgi import sse_error
from pilothouse.server.openai_wire import EXTENSION
from pilothouse.server.routes import TimeoutSettings

_DONE = b"[DONE]"


class UpstreamClientError(Exception):
    """The upstream refused the request itself (400/422): passed back unchanged."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        super().__init__(f"upstream answered {status}")
        self.status = status
        self.body = body
        self.content_type = content_type


@dataclass
class Opened:
    """An answer that has started: nothing of it was sent to the client yet.

    JSON: `body` is the whole answer. Stream: `first` holds the first whole events,
    `rest` yields the remaining bytes (ending in an error event if the upstream broke).
    """

    target: str
    content_type: bytes
    body: bytes = b""
    first: bytes = b""
    rest: AsyncIterator[bytes] | None = None

    async def aclose(self) -> None:
        if self.rest is not None:
            await self.rest.aclose()  # type: ignore[attr-defined]


@dataclass
class PassThroughTarget:
    """An OpenAI-protocol upstream, spoken to in its own bytes."""

    id: str
    url: str
    shown_url: str
    upstream_model: str | None
    headers: dict[str, str]
    breaker: CircuitBreaker
    missing_key: str | None = None

    def payload(self, data: Mapping[str, Any]) -> bytes:
        body = dict(data)
        if self.upstream_model is None:
            body.pop("model", None)
        else:
            body["model"] = self.upstream_model
        body.pop(EXTENSION, None)
        return orjson.dumps(body)


async def open_passthrough(
    session: aiohttp.ClientSession,
    target: PassThroughTarget,
    timeouts: TimeoutSettings,
    client_timeout: aiohttp.ClientTimeout | None,
    data: dict[str, Any],
    stream: bool,
) -> Opened:
    """Send the client's body to `target` and read until the answer started (the
    whole body for JSON, the first content event for a stream). Raises a typed
    `ModelError` for what may fail over, `UpstreamClientError` for an upstream 400."""
    if target.missing_key:
        raise AuthenticationError(target.missing_key, model=target.id)
    payload = target.payload(data)
    response: aiohttp.ClientResponse | None = None
    try:
        async with asyncio.timeout(timeouts.first_byte_s):
            response = await session.post(
                target.url, data=payload, headers=target.headers, timeout=client_timeout
            )
            status = response.status
            if status >= 400:
                body = await response.read()
                response.release()
                headers = response.headers
                response = None
                if status in (400, 422) and not _context_error(body):
                    raise UpstreamClientError(
                        status, body, headers.get("Content-Type", "application/json")
                    )
                raise error_for_status(status, body, headers, model=target.id, url=target.shown_url)
            content_type = response.headers.get("Content-Type", "application/json").encode()
            if not stream:
                body = await response.read()
                response.release()
                response = None
                target.breaker.record_success()
                return Opened(target.id, content_type, body=body)
            first, pending = await _first_events(response, target)
    except TimeoutError:
        if response is not None:
            response.close()
        raise ModelTimeoutError(
            f"no answer from {target.shown_url} within {timeouts.first_byte_s:g} s",
            model=target.id,
        ) from None
    except aiohttp.ClientError as exc:
        if response is not None:
            response.close()
        raise UnavailableError(
            f"request to {target.shown_url} failed: {type(exc).__name__}: {exc}",
            model=target.id,
        ) from None
    except BaseException:
        if response is not None:
            response.close()
        raise
    rest = _pump(response, pending, first, target)
    return Opened(target.id, content_type, first=first, rest=rest)


def _context_error(body: bytes) -> bool:
    lowered = body[:2000].lower()
    return b"context_length" in lowered or b"context length" in lowered


def _boundary(buffer: bytes) -> int:
    """The end of the last whole SSE event in `buffer` (0 when none)."""
    end = buffer.rfind(b"\n\n")
    if end >= 0:
        return end + 2
    end = buffer.rfind(b"\r\n\r\n")
    return end + 4 if end >= 0 else 0


async def _first_events(
    response: aiohttp.ClientResponse, target: PassThroughTarget
) -> tuple[bytes, bytes]:
    """Read whole events until one carries content (text, a tool call, a refusal, a
    finish reason or `[DONE]`). An error event, or an end before any content, is a
    failure that may still fail over: nothing was sent to the client yet."""
    buffer = b""
    checked = 0
    while True:
        chunk = await response.content.readany()
        if not chunk:
            raise UnavailableError(
                f"{target.shown_url} ended the stream before sending any content",
                model=target.id,
            )
        buffer += chunk
        end = _boundary(buffer)
        if end > checked:
            if _has_content(buffer[checked:end], target):
                return buffer[:end], buffer[end:]
            checked = end
        if len(buffer) > 1 << 20:
            raise UnavailableError(f"{target.shown_url} sent no content in 1 MiB", model=target.id)


def _has_content(events: bytes, target: PassThroughTarget) -> bool:
    for line in events.splitlines():
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == _DONE:
            return True
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return True  # not ours to judge: the client sees it as it is
        if not isinstance(data, dict):
            return True
        error = data.get("error")
        if error:
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise UnavailableError(
                f"{target.shown_url} streamed an error before any content: {message}",
                model=target.id,
            )
        for choice in data.get("choices") or ():
            if not isinstance(choice, dict):
                return True
            delta = choice.get("delta") or {}
            if choice.get("finish_reason") or (
                isinstance(delta, dict)
                and (delta.get("content") or delta.get("tool_calls") or delta.get("refusal"))
            ):
                return True
    return False


async def _pump(
    response: aiohttp.ClientResponse, pending: bytes, first: bytes, target: PassThroughTarget
) -> AsyncIterator[bytes]:
    """The upstream's remaining bytes, whole events at a time; an error event when the
    stream breaks, stalls or ends without `[DONE]`."""
    tail = first[-32:]
    content = response.content
    try:
        while True:
            chunk = await content.readany()
            if not chunk:
                break
            buffer = pending + chunk if pending else chunk
            end = _boundary(buffer)
            if not end:
                pending = buffer
                continue
            pending = buffer[end:]
            out = buffer[:end] if pending else buffer
            tail = out[-32:]
            yield out
    except (aiohttp.ClientError, TimeoutError) as exc:
        what = "stalled" if isinstance(exc, TimeoutError) else "broke"
        error = UnavailableError(f"the stream from {target.shown_url} {what}", model=target.id)
        target.breaker.record_failure(error)
        yield sse_error(stream_error(error, target.id))
        return
    finally:
        response.close()
    if pending.strip() or _DONE not in tail:
        error = UnavailableError(
            f"the stream from {target.shown_url} ended before it was complete", model=target.id
        )
        target.breaker.record_failure(error)
        yield sse_error(stream_error(error, target.id))
        return
    target.breaker.record_success()


def stream_error(error: ModelError, target: str) -> dict[str, Any]:
    return {
        "message": f"{error} (the answer above is incomplete)",
        "type": "upstream_error",
        "param": None,
        "code": "stream_interrupted",
        "model": target,
    }
