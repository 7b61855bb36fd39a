"""Operations: health and readiness, structured access logs without secrets, request
size and body-time limits for every route, and graceful shutdown.

- `GET /healthz` answers 200 while the process serves at all (liveness).
- `GET /readyz` answers 200 once the copilots are open and the gateway is started and
  every copilot and route has a model that can answer (readiness.py), 503 otherwise:
  while starting, while draining for shutdown, or with the models that cannot answer.
- Every request is logged once on the `pilothouse.access` logger as one JSON object:
  time, method, path (never the query string), status, duration, bytes out, client,
  key id (never the key or any header), model and route where known.
- On SIGTERM/SIGINT the server stops accepting connections, turns not-ready, lets
  in-flight requests and streams finish for up to the grace period, then ends the
  streams still running with an SSE error event (`code: server_shutdown`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import IO, TYPE_CHECKING, Any

import orjson
import uvicorn
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from pilothouse.errors import StorageUnavailableError
from pilothouse.server.asgi import HTTPError, Message, Receive, Scope, Send, too_large
from pilothouse.server.auth import AuthError
from pilothouse.server.context import ServerContext, server_context
from pilothouse.server.readiness import readiness_report

if TYPE_CHECKING:
    from pilothouse.server.app import PilothouseApp

access_log = logging.getLogger("pilothouse.access")
log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: started, not shutting down, and every copilot and route has a "
    "model that can answer",
    responses={503: {"description": "starting, draining, or a copilot or route has no model"}},
)
async def readyz(request: Request) -> Response:
    """The whole report (copilots, routes, models) to a caller with a valid key (or on
    a --no-auth server); to anyone else only the status: a probe needs no more, and
    the names are not for strangers."""
    context = server_context(request)
    status, body = await readiness_report(context)
    if not await _holds_a_key(context, request):
        body = {"status": body["status"]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def _holds_a_key(context: ServerContext, request: Request) -> bool:
    try:
        await context.auth.authenticate(
            request.headers.get("authorization"), request.headers.get("x-api-key")
        )
    except (AuthError, StorageUnavailableError):  # a probe gets the status alone
        return False
    return True


# --- access log --------------------------------------------------------------------


def log_access(
    scope: Scope,
    status: int,
    started: float,
    *,
    sent: int = 0,
    key_id: str | None = None,
    model: str | None = None,
    target: str | None = None,
    error: str | None = None,
    trace_id: str | None = None,
) -> None:
    """One structured line per request. Only fields listed here are ever logged: no
    header, no query string, no body. `trace_id`: the request's stored trace, when it
    has one (`pilothouse trace ID` shows it)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    record: dict[str, Any] = {
        "ts": round(time.time(), 3),
        "method": scope.get("method"),
        "path": scope.get("path"),
        "status": status,
        "ms": round((time.perf_counter() - started) * 1000, 2),
        "bytes": sent,
        "client": client[0] if client else None,
    }
    if key_id is not None:
        record["key"] = key_id
    if model is not None:
        record["model"] = model
    if target is not None:
        record["target"] = target
    if error is not None:
        record["error"] = error
    if trace_id is not None:
        record["trace"] = trace_id
    access_log.info(orjson.dumps(record).decode())


class BufferedLineHandler(logging.Handler):
    """Writes formatted records to a stream in batches: when `capacity` lines are
    waiting, and every `interval_s` from a background thread (and on close). One write
    per batch instead of one per request keeps the access log off the hot path."""

    def __init__(self, stream: IO[str], *, capacity: int = 256, interval_s: float = 0.5) -> None:
        super().__init__()
        self.stream = stream
        self.capacity = capacity
        self._lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._flush_every, args=(interval_s,), name="access-log", daemon=True
        )
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        lines = self._lines
        lines.append(line)
        if len(lines) >= self.capacity:
            self.flush()

    def flush(self) -> None:
        with self.lock or threading.Lock():
            lines, self._lines = self._lines, []
            if lines:
                try:
                    self.stream.write("\n".join(lines) + "\n")
                    self.stream.flush()
                except (OSError, ValueError):
                    pass  # the stream is gone (closed at exit): nothing to do

    def _flush_every(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self.flush()
        super().close()


class BodyLimitExceeded(HTTPError):
    """Raised from `receive` when a body goes over its size limit."""


class BodyTimedOut(HTTPError):
    """Raised from `receive` when a body trickles in slower than allowed."""


async def guarded_http(app: PilothouseApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run a framework-routed request with the body limits, the key id and status
    captured for the access log.

    A body over its size limit or arriving too slowly makes `receive` raise; whatever
    the framework then answers (a 400 from form parsing, a 500), the client gets the
    413 or 408 that says what happened.
    """
    context = app.context
    started = time.perf_counter()
    limit = context.limits.max_upload_bytes
    if scope["path"].startswith("/v1/"):
        limit = context.limits.max_body_bytes
    status = 0
    sent = 0
    received = 0
    body_done = False
    tripped: HTTPError | None = None
    replaced = False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + context.limits.body_timeout_s

    async def limited_receive() -> Message:
        nonlocal received, body_done, tripped
        if body_done or status:  # the body is in: this waits for a disconnect
            return await receive()
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            tripped = BodyTimedOut(
                408,
                f"the request body did not arrive within {context.limits.body_timeout_s:g} s",
                code="request_timeout",
                headers=[(b"connection", b"close")],
            )
            raise tripped from None
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                error = too_large(limit)
                tripped = BodyLimitExceeded(
                    error.status, error.message, code=error.code, headers=error.headers
                )
                raise tripped
            if not message.get("more_body"):
                body_done = True
        return message

    async def logged_send(message: Message) -> None:
        nonlocal status, sent, replaced
        if tripped is not None:  # answer with the limit that tripped, not the app's take
            if not replaced and message["type"] == "http.response.start":
                replaced = True
                status = tripped.status
                sent += len(tripped.body())
                await _send_plain_error(send, tripped)
            return
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            sent += len(message.get("body", b""))
        await send(message)

    declared = _content_length(scope)
    try:
        if declared is not None and declared > limit:
            await _send_plain_error(logged_send, too_large(limit))
            return
        with contextlib.suppress(BodyLimitExceeded, BodyTimedOut):  # answered below
            await app.framework(scope, limited_receive, logged_send)
        if tripped is not None and not replaced and not status:
            replaced = True
            status = tripped.status
            await _send_plain_error(send, tripped)
    finally:
        principal = (scope.get("state") or {}).get("principal")
        log_access(
            scope,
            status or 500,
            started,
            sent=sent,
            key_id=getattr(principal, "key_id", None),
        )


async def refuse(scope: Scope, send: Send, error: HTTPError) -> None:
    """Answer a request refused before routing (browser checks), and log it."""
    started = time.perf_counter()
    await _send_plain_error(send, error)
    log_access(scope, error.status, started, sent=len(error.body()), error=error.code)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_plain_error(send: Send, error: HTTPError) -> None:
    body = error.body()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *error.headers,
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- graceful shutdown -------------------------------------------------------------


class GracefulServer(uvicorn.Server):
    """uvicorn's server, telling the app to drain (not ready, streams told to wrap up)
    as soon as a shutdown signal arrives, before connections are closed."""

    def __init__(self, config: uvicorn.Config, context: ServerContext) -> None:
        super().__init__(config)
        self.context = context

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.context.phase != "draining":
            log.info("shutting down: draining in-flight requests")
        self.context.drain()
        super().handle_exit(sig, frame)
