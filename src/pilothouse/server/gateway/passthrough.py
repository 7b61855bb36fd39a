"""The gateway's fast path: an OpenAI-protocol upstream spoken to in its own bytes.

The client's JSON body goes to the upstream with only `model` rewritten; the upstream's
answer comes back unchanged, whole events at a time. Nothing reaches the client before
the answer is known to be usable (models/openai_chat/usable.py: a JSON answer that
parses and carries content or tool calls; a stream's first content event), so any
failure before that can still fail over; after it, a broken, stalled or truncated
stream ends with an SSE error event (never silently), or, when the route allows it,
is continued by a later target (failover.py).

Time limits (the route's `timeout`): `connect_s` to connect; a JSON answer has
`total_s` (it sends nothing before it is complete); a stream has `first_byte_s` until
its first content, `idle_s` between bytes and `total_s` in all.

The breaker permit taken for the attempt is settled here: success or failure by what
the upstream did, released without a verdict when the client leaves or the request is
cancelled (`Opened.aclose`, always called).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from pilothouse.errors import (
    AuthenticationError,
    ModelError,
    ModelTimeoutError,
    UnavailableError,
)
from pilothouse.models.breaker import CircuitBreaker, Permit
from pilothouse.models.http import error_for_status
from pilothouse.models.openai_chat.usable import FirstContent, check_completion
from pilothouse.server.asgi import sse_error
from pilothouse.server.gateway.routes import TimeoutSettings
from pilothouse.server.openai.request import EXTENSION

_DONE = b"[DONE]"

# Carries a stream on after it broke: given the error, the text already sent and the
# answer (to note the outcome), it yields the rest of the client's stream.
Continuation = Callable[[ModelError, str, "Opened"], AsyncIterator[bytes]]


class UpstreamClientError(Exception):
    """The upstream refused the request itself (400/422): passed back unchanged."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        super().__init__(f"upstream answered {status}")
        self.status = status
        self.body = body
        self.content_type = content_type
        self.trace_id: str | None = None
        """The request's trace, when an earlier target failed (the access log names it)."""


@dataclass
class Opened:
    """An answer that has started: nothing of it was sent to the client yet.

    JSON: `body` is the whole answer. Stream: `first` holds the first whole events,
    `rest` yields the remaining bytes (ending in an error event if the upstream broke).
    `aclose` must be called once the client is served or gone: it closes the upstream
    and settles what is still open (a breaker permit). `outcome` says how a stream
    ended, for the access log: None (complete), "stream_interrupted", or
    "continued:<target>" when another target carried it on; `error` what broke it;
    `ended` whether the upstream's stream was read to its end (False: the client left).
    """

    target: str
    content_type: bytes
    body: bytes = b""
    first: bytes = b""
    rest: AsyncIterator[bytes] | None = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    outcome: str | None = None
    error: ModelError | None = None
    ended: bool = False
    trace_id: str | None = None
    """The trace of the request, once closed, when it was traced (it failed over)."""

    async def aclose(self) -> None:
        if self.rest is not None:
            await self.rest.aclose()  # type: ignore[attr-defined]
        closers, self.closers = self.closers, []
        for close in closers:
            await close()


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
    prefill: str = ""
    """How this host continues a final assistant message ("" when it cannot; see
    `ProviderEntry.prefill`)."""

    def payload(self, data: Mapping[str, Any]) -> bytes:
        body = dict(data)
        if self.upstream_model is None:
            body.pop("model", None)
        else:
            body["model"] = self.upstream_model
        body.pop(EXTENSION, None)
        return orjson.dumps(body)


@dataclass
class Attempt:
    """One try of one target: its breaker permit, its limits, and (for a stream) what
    to do when it breaks after content."""

    permit: Permit
    timeouts: TimeoutSettings
    client_timeout: aiohttp.ClientTimeout | None = None
    continuation: Continuation | None = None


async def open_passthrough(
    session: aiohttp.ClientSession,
    target: PassThroughTarget,
    attempt: Attempt,
    data: dict[str, Any],
    stream: bool,
) -> Opened:
    """Send the client's body to `target` and read until the answer is known to be
    usable (the whole body for JSON, the first content event for a stream). Raises a
    typed `ModelError` for what may fail over, `UpstreamClientError` for an upstream
    400. The permit is settled for JSON; for a stream it travels with `Opened`."""
    if target.missing_key:
        raise AuthenticationError(target.missing_key, model=target.id)
    timeouts = attempt.timeouts
    limit, limit_name = (
        (timeouts.first_byte_s, "first_byte_s") if stream else (timeouts.total_s, "total_s")
    )
    started = asyncio.get_running_loop().time()
    response: aiohttp.ClientResponse | None = None
    try:
        async with asyncio.timeout(limit):
            response = await session.post(
                target.url,
                data=target.payload(data),
                headers=target.headers,
                timeout=attempt.client_timeout,
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
                check_completion(body, model=target.id, url=target.shown_url)
                attempt.permit.success()
                return Opened(target.id, content_type, body=body)
            first, pending = await _first_events(response, target)
    except TimeoutError:
        if response is not None:
            response.close()
        raise ModelTimeoutError(
            f"no {'content' if stream else 'answer'} from {target.shown_url} within "
            f"{limit:g} s ({limit_name})",
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
    opened = Opened(target.id, content_type, first=first)
    deadline = started + timeouts.total_s
    opened.rest = _pump(response, pending, first, target, attempt, deadline, opened)

    async def settle() -> None:
        response.close()  # also when the client left before the rest was read
        attempt.permit.release()

    opened.closers.append(settle)
    return opened


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
    """Read whole events until the first content (see `FirstContent`); anything that
    is not a usable start raises the failure it is: nothing was sent to the client."""
    judge = FirstContent(model=target.id, url=target.shown_url)
    buffer = b""
    checked = 0
    while True:
        chunk = await response.content.readany()
        if not chunk and judge.ended():  # ended() raises unless a usable end
            return buffer, b""
        buffer += chunk
        end = _boundary(buffer)
        if end > checked:
            if _has_content(buffer[checked:end], judge):
                return buffer[:end], buffer[end:]
            checked = end
        if len(buffer) > 1 << 20:
            raise UnavailableError(f"{target.shown_url} sent no content in 1 MiB", model=target.id)


def _has_content(events: bytes, judge: FirstContent) -> bool:
    """Whether one of these whole SSE events starts the answer."""
    if b"\r" in events:
        events = events.replace(b"\r\n", b"\n")
    for block in events.split(b"\n\n"):
        name = ""
        data: list[bytes] = []
        for line in block.split(b"\n"):
            field_name, _, value = line.partition(b":")
            value = value[1:] if value.startswith(b" ") else value
            if field_name == b"data":
                data.append(value)
            elif field_name == b"event":
                name = value.decode("utf-8", "replace").strip()
        if data and judge.feed(name, b"\n".join(data)):
            return True
    return False


async def _pump(
    response: aiohttp.ClientResponse,
    pending: bytes,
    first: bytes,
    target: PassThroughTarget,
    attempt: Attempt,
    deadline: float,
    opened: Opened,
) -> AsyncIterator[bytes]:
    """The upstream's remaining bytes, whole events at a time; an error event (or the
    continuation) when the stream breaks, stalls, runs past `total_s` or ends without
    `[DONE]`."""
    tail = first[-32:]
    content = response.content
    loop = asyncio.get_running_loop()
    sent = [first] if attempt.continuation is not None else None
    error: ModelError | None = None
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
            if sent is not None:
                sent.append(out)
            yield out
            if loop.time() > deadline:
                error = ModelTimeoutError(
                    f"the stream from {target.shown_url} ran past "
                    f"{attempt.timeouts.total_s:g} s (total_s)",
                    model=target.id,
                )
                break
    except (aiohttp.ClientError, TimeoutError) as exc:
        if isinstance(exc, TimeoutError):
            error = ModelTimeoutError(
                f"the stream from {target.shown_url} stalled for "
                f"{attempt.timeouts.idle_s:g} s (idle_s)",
                model=target.id,
            )
        else:
            error = UnavailableError(f"the stream from {target.shown_url} broke", model=target.id)
    finally:
        response.close()
    if error is None and (pending.strip() or _DONE not in tail):
        error = UnavailableError(
            f"the stream from {target.shown_url} ended before it was complete", model=target.id
        )
    opened.ended = True
    if error is None:
        attempt.permit.success()
        return
    attempt.permit.failure(error)
    opened.outcome = "stream_interrupted"
    opened.error = error
    if attempt.continuation is not None and sent is not None:
        text, calls = sent_text(b"".join(sent))
        if not calls:  # a tool call cannot be carried on: the error event, as always
            async for out in attempt.continuation(error, text, opened):
                yield out
            return
    yield sse_error(stream_error(error, target.id))


def sent_text(events: bytes) -> tuple[str, bool]:
    """The answer text in the stream chunks already sent, and whether they held a
    tool call (which a continuation cannot carry on)."""
    parts: list[str] = []
    calls = False
    for line in events.splitlines():
        if not line.startswith(b"data:"):
            continue
        try:
            chunk = orjson.loads(line[5:])
        except orjson.JSONDecodeError:
            continue
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        for choice in choices if isinstance(choices, list) else ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            if isinstance(delta.get("content"), str):
                parts.append(delta["content"])
            calls = calls or bool(delta.get("tool_calls") or delta.get("function_call"))
    return "".join(parts), calls


def stream_error(error: ModelError, target: str) -> dict[str, Any]:
    return {
        "message": f"{error} (the answer above is incomplete)",
        "type": "upstream_error",
        "param": None,
        "code": "stream_interrupted",
        "model": target,
    }
