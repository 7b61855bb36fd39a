"""One request on the OpenAI-compatible API, guarded (`RequestGuard.run`): the caller
authenticated, the body read within its limits, every error answered in OpenAI's shape
(`{"error": {"message", "type", "param", "code"}}`, or a closing error event once a
stream has started), a client that leaves cancels the work, and one access-log line is
written. `POST /v1/chat/completions`, `/v1/embeddings` (api.py) and `/v1/responses`
(responses.py) run inside it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from pilothouse.errors import StorageUnavailableError
from pilothouse.server.asgi import (
    ClientGone,
    DisconnectWatcher,
    HTTPError,
    Message,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    sse_error,
    storage_unavailable,
)
from pilothouse.server.auth import AuthError, Principal
from pilothouse.server.context import ServerContext
from pilothouse.server.gateway.passthrough import UpstreamClientError
from pilothouse.server.openai.request import parse_body
from pilothouse.server.ops import log_access

log = logging.getLogger(__name__)

SHUTDOWN_ERROR = {
    "message": "the server is shutting down; the answer above is incomplete, retry it",
    "type": "server_error",
    "param": None,
    "code": "server_shutdown",
}


class Reply:
    """`send`, remembering whether the answer started and how much went out."""

    __slots__ = ("_send", "sent", "started", "status")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.status = 0
        self.sent = 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
        else:
            self.sent += len(message.get("body", b""))
        await self._send(message)


Work = Callable[[Scope, Receive, Reply, dict[str, Any]], Awaitable[None]]
"""What a guarded request does: `info` holds the caller (`principal`), the body
(`data`), and what the access log reports (`model`, `target`, `error`, `trace_id`)."""


class RequestGuard:
    """The caller, the body and the answer's errors of the server's OpenAI requests."""

    def __init__(self, context: ServerContext) -> None:
        self.context = context

    async def principal(self, scope: Scope) -> Principal:
        auth = self.context.auth
        if not auth.enabled:
            return await auth.authenticate(None)
        authorization = header(scope, b"authorization")
        api_key = header(scope, b"x-api-key")
        try:
            return await auth.authenticate(
                authorization.decode("latin-1") if authorization else None,
                api_key.decode("latin-1") if api_key else None,
            )
        except AuthError as exc:
            raise from_auth(exc) from None

    async def authorize(self, principal: Principal, scope: str) -> None:
        try:
            await self.context.auth.authorize(principal, scope)
        except AuthError as exc:
            raise from_auth(exc) from None

    async def _body(self, scope: Scope, receive: Receive) -> dict[str, Any]:
        limits = self.context.limits
        body = await read_body(
            receive, scope, limit=limits.max_body_bytes, timeout_s=limits.body_timeout_s
        )
        return parse_body(body) if scope["path"].endswith("/completions") else _object(body)

    async def run(self, scope: Scope, receive: Receive, send: Send, work: Work) -> None:
        """Run one request: errors become OpenAI-shaped answers, a client that leaves
        cancels the work, and one access-log line is written."""
        started = time.perf_counter()
        reply = Reply(send)
        info: dict[str, Any] = {}
        watcher: DisconnectWatcher | None = None
        status = 0
        try:
            try:
                principal = await self.principal(scope)
                info["key_id"] = principal.key_id
                info["principal"] = principal
                data = await self._body(scope, receive)
                info["model"] = data.get("model") if isinstance(data.get("model"), str) else None
                watcher = DisconnectWatcher(receive)
                info["data"] = data
                await work(scope, receive, reply, info)
                status = reply.status
            except StorageUnavailableError as exc:
                raise storage_unavailable(exc) from None
        except HTTPError as exc:
            status = exc.status
            info["error"] = exc.code
            info["trace_id"] = exc.trace_id or info.get("trace_id")
            if not reply.started:
                await reply(
                    response_start(exc.status, exc.headers, b"application/json", len(exc.body()))
                )
                await reply({"type": "http.response.body", "body": exc.body()})
            else:
                await _end_with_error(reply, exc.error_object())
        except UpstreamClientError as exc:
            status = exc.status
            info["error"] = "upstream_rejected"
            info["trace_id"] = exc.trace_id
            if not reply.started:
                await reply(
                    response_start(exc.status, [], exc.content_type.encode(), len(exc.body))
                )
                await reply({"type": "http.response.body", "body": exc.body})
        except ClientGone:
            status = 499
        except asyncio.CancelledError:
            if watcher is not None and watcher.disconnected:
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                status = 499
                info["error"] = "client_disconnected"
            else:  # the server is stopping (grace period over): say so, then stop
                status = reply.status or 503
                info["error"] = "server_shutdown"
                if reply.started:
                    await _end_with_error(reply, SHUTDOWN_ERROR)
                raise
        except Exception:
            log.exception("%s failed", scope.get("path"))
            status = 500
            info["error"] = "internal_error"
            error = HTTPError(500, "internal server error", code="internal_error")
            if not reply.started:
                await reply(response_start(500, [], b"application/json", len(error.body())))
                await reply({"type": "http.response.body", "body": error.body()})
            else:
                await _end_with_error(reply, error.error_object())
        finally:
            if watcher is not None:
                watcher.done()
            log_access(
                scope,
                status or 500,
                started,
                sent=reply.sent,
                key_id=info.get("key_id"),
                model=info.get("model"),
                target=info.get("target"),
                error=info.get("error"),
                trace_id=info.get("trace_id"),
            )


def from_auth(exc: AuthError) -> HTTPError:
    """An authentication or authorization refusal as an OpenAI-shaped error."""
    return HTTPError(
        exc.status_code,
        exc.error["message"],
        code=exc.error["code"],
        type=exc.error["type"],
        headers=[(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()],
    )


def unknown_model(name: str) -> HTTPError:
    """The 404 for a `model` that is no copilot, gateway route or provider:model id
    (chat completions, the Responses API, the model lookup)."""
    return HTTPError(
        404,
        f"the model {name!r} does not exist here: use a copilot name, a gateway route or "
        "a provider:model id (GET /v1/models lists them)",
        code="model_not_found",
        param="model",
    )


def error_headers(exc: HTTPError) -> dict[str, str]:
    """An error's headers as Starlette's `HTTPException` takes them."""
    return {k.decode(): v.decode() for k, v in exc.headers}


def _object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPError(
            400, f"the request body is not valid JSON: {exc}", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise HTTPError(400, "the request body must be a JSON object", code="invalid_json")
    return data


def response_start(
    status: int, extra: list[tuple[bytes, bytes]], content_type: bytes, length: int
) -> Message:
    headers = [(b"content-type", content_type), (b"content-length", str(length).encode())]
    headers.extend(extra)
    return {"type": "http.response.start", "status": status, "headers": headers}


async def _end_with_error(reply: Reply, error: dict[str, Any]) -> None:
    """End a started stream with an error event (no `[DONE]`)."""
    try:
        await reply({"type": "http.response.body", "body": sse_error(error), "more_body": True})
        await reply({"type": "http.response.body", "body": b""})
    except Exception:  # the connection is gone already
        log.debug("could not send the closing error event", exc_info=True)
