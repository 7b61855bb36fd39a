"""Raw ASGI helpers for the hot path: header lookup, bounded body reading, JSON and
OpenAI-shaped error answers, and a watcher that cancels work when the client leaves.

The `/v1` endpoints are plain ASGI callables (no framework request objects, no body
model validation) because they are what a gateway spends its time on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from pilothouse.errors import StorageUnavailableError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_HEADERS = [(b"content-type", b"application/json")]
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
}


class HTTPError(Exception):
    """An error answer: status and the OpenAI-shaped `error` object."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type or _ERROR_TYPES.get(status, "server_error" if status >= 500 else "error")
        self.headers = headers or []
        self.trace_id: str | None = None
        """The trace of the request that ended in this error, when it has one (the
        access log names it)."""

    def error_object(self) -> dict[str, Any]:
        return {"message": self.message, "type": self.type, "param": self.param, "code": self.code}

    def body(self) -> bytes:
        return orjson.dumps({"error": self.error_object()})


def storage_unavailable(exc: StorageUnavailableError) -> HTTPError:
    """The 503 for a shared database that cannot be reached (nothing was changed)."""
    return HTTPError(
        503,
        str(exc),
        code="storage_unavailable",
        headers=[(b"retry-after", str(exc.retry_after_s).encode())],
    )


def error_type(status: int) -> str:
    return _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header `name` (lower-case bytes), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


async def read_body(receive: Receive, scope: Scope, *, limit: int, timeout_s: float) -> bytes:
    """The whole request body, at most `limit` bytes, arriving within `timeout_s`.

    413 when it is larger (judged from Content-Length before reading when given), 408
    when it trickles in too slowly, and `ClientGone` when the client disconnects.
    """
    length = header(scope, b"content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise HTTPError(
                400, "Content-Length is not a number", code="bad_content_length"
            ) from None
        if declared > limit:
            raise too_large(limit)
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        if len(body) > limit:
            raise too_large(limit)
        return body
    parts = [body]
    size = len(body)
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
                parts.append(chunk)
                if not message.get("more_body"):
                    break
    except TimeoutError:
        raise HTTPError(
            408,
            f"the request body did not arrive within {timeout_s:g} s",
            code="request_timeout",
            headers=[(b"connection", b"close")],
        ) from None
    return b"".join(parts)


def too_large(limit: int) -> HTTPError:
    return HTTPError(
        413,
        f"the request body is larger than the limit of {limit} bytes",
        code="request_too_large",
        headers=[(b"connection", b"close")],
    )


class ClientGone(Exception):
    """The client disconnected before the answer was complete."""


async def send_json(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    out = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    if headers:
        out.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: HTTPError) -> None:
    await send_json(send, error.status, error.body(), error.headers)


def sse_error(error: HTTPError | dict[str, Any]) -> bytes:
    """One SSE `data:` line with an OpenAI-shaped error object, which the OpenAI SDKs
    raise as an APIError."""
    obj = error.error_object() if isinstance(error, HTTPError) else error
    return b"data: " + orjson.dumps({"error": obj}) + b"\n\n"


class DisconnectWatcher:
    """Waits for `http.disconnect` in the background and cancels `task` when the client
    leaves before `done()` is called, so the upstream call it is making is cancelled
    (its connection closed) instead of running on for nobody.

    The watching task starts `delay_s` after the request, not at once: most gateway
    answers from a fast upstream are complete before that, and they then cost a timer
    instead of a task. A client leaving is noticed at most `delay_s` late.
    """

    __slots__ = ("_done", "_receive", "_task", "_timer", "disconnected", "watcher")

    def __init__(
        self, receive: Receive, task: asyncio.Task[Any] | None = None, *, delay_s: float = 0.05
    ) -> None:
        self._task = task or asyncio.current_task()
        self._receive = receive
        self._done = False
        self.disconnected = False
        self.watcher: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        if delay_s > 0:
            self._timer = loop.call_later(delay_s, self._start)
        else:
            self._start()

    def _start(self) -> None:
        self._timer = None
        if not self._done:
            self.watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                break
        if not self._done and self._task is not None:
            self.disconnected = True
            self._task.cancel()

    def done(self) -> None:
        """The answer is complete (or failed on its own): stop watching."""
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.watcher is not None and not self.watcher.done():
            self.watcher.cancel()
