"""The OpenAI-compatible endpoints: `POST /v1/chat/completions`, `POST /v1/embeddings`,
`GET /v1/models` and `GET /v1/models/{id}`.

`model` names, in this order: a copilot (scope `chat:<name>`), a gateway route or a
model given to the app, or a raw `provider:model` id (scope `models`). Unknown names
answer 404 `model_not_found`. Errors are OpenAI-shaped:
`{"error": {"message", "type", "param", "code"}}`.

The two POST endpoints are plain ASGI callables (see app.py): this is the hot path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from pilothouse.errors import StorageUnavailableError
from pilothouse.models.providers import provider_entry
from pilothouse.models.readiness import readiness
from pilothouse.models.registry import KNOWN_MODELS
from pilothouse.server.asgi import (
    SSE_HEADERS,
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
from pilothouse.server.auth import MODELS, AuthError, Principal
from pilothouse.server.context import ServerContext
from pilothouse.server.gateway.failover import Chain
from pilothouse.server.gateway.passthrough import UpstreamClientError
from pilothouse.server.openai.copilot import StreamOut, answer_json, answer_stream, start_run
from pilothouse.server.openai.embeddings import LOCAL_EMBEDDER, Embeddings
from pilothouse.server.openai.request import parse_body
from pilothouse.server.openai.responses import ResponsesAPI
from pilothouse.server.ops import log_access

log = logging.getLogger(__name__)

SHUTDOWN_ERROR = {
    "message": "the server is shutting down; the answer above is incomplete, retry it",
    "type": "server_error",
    "param": None,
    "code": "server_shutdown",
}


class _Reply:
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


class OpenAIEndpoints:
    def __init__(self, context: ServerContext) -> None:
        self.context = context
        self.embedder = Embeddings(context.gateway.settings)
        self.responses_api = ResponsesAPI(context, self._guarded, self._authorize)
        self._available: list[str] | None = None

    # --- shared ------------------------------------------------------------------------

    async def _principal(self, scope: Scope) -> Principal:
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
            raise _from_auth(exc) from None

    async def _authorize(self, principal: Principal, scope: str) -> None:
        try:
            await self.context.auth.authorize(principal, scope)
        except AuthError as exc:
            raise _from_auth(exc) from None

    async def _body(self, scope: Scope, receive: Receive) -> dict[str, Any]:
        limits = self.context.limits
        body = await read_body(
            receive, scope, limit=limits.max_body_bytes, timeout_s=limits.body_timeout_s
        )
        return parse_body(body) if scope["path"].endswith("/completions") else _object(body)

    async def _guarded(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        work: Callable[[Scope, Receive, _Reply, dict[str, Any]], Awaitable[None]],
    ) -> None:
        """Run one request: errors become OpenAI-shaped answers, a client that leaves
        cancels the work, and one access-log line is written."""
        started = time.perf_counter()
        reply = _Reply(send)
        info: dict[str, Any] = {}
        watcher: DisconnectWatcher | None = None
        status = 0
        try:
            try:
                principal = await self._principal(scope)
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
            if not reply.started:
                await reply(_start(exc.status, exc.headers, b"application/json", len(exc.body())))
                await reply({"type": "http.response.body", "body": exc.body()})
            else:
                await _end_with_error(reply, exc.error_object())
        except UpstreamClientError as exc:
            status = exc.status
            info["error"] = "upstream_rejected"
            if not reply.started:
                await reply(_start(exc.status, [], exc.content_type.encode(), len(exc.body)))
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
                await reply(_start(500, [], b"application/json", len(error.body())))
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
            )

    # --- POST /v1/chat/completions -----------------------------------------------------

    async def chat_completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._guarded(scope, receive, send, self._chat)

    async def _chat(
        self, scope: Scope, receive: Receive, reply: _Reply, info: dict[str, Any]
    ) -> None:
        data: dict[str, Any] = info["data"]
        principal: Principal = info["principal"]
        name: str = data["model"]
        stream = data.get("stream") is True
        copilots = self.context.copilots
        if name in copilots:
            await self._authorize(principal, f"chat:{name}")
            copilot = copilots.acquire(name)
            promotions = self.context.promotions
            routed = await promotions.route(copilot, data, principal) if promotions else None
            try:
                if routed is None:
                    events = await start_run(copilot, data, principal)
                else:
                    answering = routed.copilot(copilot)
                    started = await start_run(
                        answering, data, principal, attributes=routed.attributes
                    )
                    events = routed.follow(started)
                if not stream:
                    body, headers = await answer_json(copilot, events)
                    await reply(_start(200, headers, b"application/json", len(body)))
                    await reply({"type": "http.response.body", "body": body})
                    return
                out = StreamOut(reply, list(SSE_HEADERS))
                try:
                    await answer_stream(copilot, data, events, out)
                finally:
                    await events.aclose()  # type: ignore[attr-defined]
                if out.started:
                    await reply({"type": "http.response.body", "body": b""})
            finally:
                if routed is not None:
                    await routed.release()
                await copilots.release(copilot)
            return
        chain = self.context.gateway.resolve(name)
        if chain is None:
            raise _unknown_model(name)
        await self._authorize(principal, MODELS)
        await self._gateway(chain, data, stream, reply, info)

    async def _gateway(
        self, chain: Chain, data: dict[str, Any], stream: bool, reply: _Reply, info: dict[str, Any]
    ) -> None:
        opened = await self.context.gateway.open(chain, data, stream)
        try:
            info["target"] = opened.target
            model_header = (b"x-pilothouse-model", opened.target.encode("latin-1", "replace"))
            if not stream:
                await reply(_start(200, [model_header], opened.content_type, len(opened.body)))
                await reply({"type": "http.response.body", "body": opened.body})
                return
            headers = [
                (b"content-type", opened.content_type),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
                model_header,
            ]
            await reply({"type": "http.response.start", "status": 200, "headers": headers})
            await reply({"type": "http.response.body", "body": opened.first, "more_body": True})
            if opened.rest is not None:
                async for chunk in opened.rest:
                    await reply({"type": "http.response.body", "body": chunk, "more_body": True})
            await reply({"type": "http.response.body", "body": b""})
        finally:
            await opened.aclose()  # settles the upstream and its breaker, client gone or not
            if opened.outcome is not None:  # a broken stream is not logged as a success
                continued_on = opened.outcome.partition(":")[2]
                info["error"] = "stream_continued" if continued_on else opened.outcome
                if continued_on:
                    info["target"] = f"{opened.target}>{continued_on}"

    # --- POST /v1/embeddings -----------------------------------------------------------

    async def embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._guarded(scope, receive, send, self._embed)

    async def _embed(
        self, scope: Scope, receive: Receive, reply: _Reply, info: dict[str, Any]
    ) -> None:
        data: dict[str, Any] = info["data"]
        name = data.get("model")
        if not isinstance(name, str) or not name:
            raise HTTPError(400, "'model' is required and must be a string", param="model")
        route = self.context.gateway.routes.get(name)
        if route is not None:
            targets = list(route.targets)
        elif name == LOCAL_EMBEDDER or ":" in name:
            targets = [name]
        else:
            raise _unknown_model(name)
        await self._authorize(info["principal"], MODELS)
        body = await self.embedder.answer(data, targets, name)
        await reply(_start(200, [], b"application/json", len(body)))
        await reply({"type": "http.response.body", "body": body})

    # --- GET /v1/models ----------------------------------------------------------------

    def available_models(self) -> list[str]:
        """Raw models that can answer here now (checked once: keys and weights)."""
        if self._available is None:
            settings = self.context.gateway.settings
            ids = dict.fromkeys([settings.default_model, *KNOWN_MODELS])
            found = []
            for model_id in ids:
                provider = model_id.partition(":")[0]
                try:
                    entry = provider_entry(provider, settings)
                    # Listed: local models with weights, and hosts with a key or that
                    # are configured here (not every default localhost port).
                    wanted = (
                        provider == "local"
                        or entry.key_required
                        or provider in settings.providers
                        or model_id == settings.default_model
                    )
                    if wanted and readiness(model_id, settings).ready:
                        found.append(model_id)
                except Exception:  # a misconfigured provider is simply not listed
                    continue
            found.append(LOCAL_EMBEDDER)
            self._available = found
        return self._available

    def _listing(self, principal: Principal) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for name in self.context.copilots.names():
            if principal.allows(f"chat:{name}"):
                items.append(_model_item(name, "pilothouse-copilot"))
        if principal.allows(MODELS):
            gateway = self.context.gateway
            for name in gateway.route_names():
                items.append(_model_item(name, "pilothouse-route"))
            for name in [*gateway.model_names(), *self.available_models()]:
                items.append(_model_item(name, name.partition(":")[0]))
        return items

    async def list_models(self, request: Request) -> Response:
        principal = await self._principal_of(request)
        body = {"object": "list", "data": self._listing(principal)}
        return Response(orjson.dumps(body), media_type="application/json")

    async def get_model(self, request: Request) -> Response:
        principal = await self._principal_of(request)
        wanted = request.path_params["model"]
        for item in self._listing(principal):
            if item["id"] == wanted:
                return Response(orjson.dumps(item), media_type="application/json")
        raise _unknown_model(wanted)

    async def _principal_of(self, request: Request) -> Principal:
        """The caller, counted against its key's rate limit (401/429 otherwise)."""
        try:
            principal = await self._principal(request.scope)
        except HTTPError as exc:
            raise HTTPException(exc.status, exc.error_object(), _headers(exc)) from None
        request.state.principal = principal  # the access log names the key
        await self.context.auth.limit(principal)
        return principal


def _from_auth(exc: AuthError) -> HTTPError:
    return HTTPError(
        exc.status_code,
        exc.error["message"],
        code=exc.error["code"],
        type=exc.error["type"],
        headers=[(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()],
    )


def _headers(exc: HTTPError) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in exc.headers}


def _unknown_model(name: str) -> HTTPError:
    return HTTPError(
        404,
        f"the model {name!r} does not exist here: use a copilot name, a gateway route or "
        "a provider:model id (GET /v1/models lists them)",
        code="model_not_found",
        param="model",
    )


def _model_item(model_id: str, owner: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owner}


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


def _start(
    status: int, extra: list[tuple[bytes, bytes]], content_type: bytes, length: int
) -> Message:
    headers = [(b"content-type", content_type), (b"content-length", str(length).encode())]
    headers.extend(extra)
    return {"type": "http.response.start", "status": status, "headers": headers}


async def _end_with_error(reply: _Reply, error: dict[str, Any]) -> None:
    """End a started stream with an error event (no `[DONE]`)."""
    try:
        await reply({"type": "http.response.body", "body": sse_error(error), "more_body": True})
        await reply({"type": "http.response.body", "body": b""})
    except Exception:  # the connection is gone already
        log.debug("could not send the closing error event", exc_info=True)
