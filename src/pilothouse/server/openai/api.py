"""The OpenAI-compatible endpoints: `POST /v1/chat/completions`, `POST /v1/embeddings`,
`GET /v1/models` and `GET /v1/models/{id}`.

`model` names, in this order: a copilot (scope `chat:<name>`), a gateway route or a
model given to the app, or a raw `provider:model` id (scope `models`). Unknown names
answer 404 `model_not_found`. Errors are OpenAI-shaped:
`{"error": {"message", "type", "param", "code"}}`.

The two POST endpoints are plain ASGI callables (see app.py): this is the hot path. Each
runs inside the request guard (guard.py: the caller, the body, errors, disconnects, the
access log).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from pilothouse.models.providers import provider_entry
from pilothouse.models.readiness import readiness
from pilothouse.models.registry import KNOWN_MODELS
from pilothouse.server.asgi import SSE_HEADERS, HTTPError, Receive, Scope, Send
from pilothouse.server.auth import MODELS, Principal
from pilothouse.server.context import ServerContext
from pilothouse.server.gateway.chain import Chain
from pilothouse.server.openai.copilot import StreamOut, answer_json, answer_stream
from pilothouse.server.openai.copilot_start import start_run
from pilothouse.server.openai.embeddings import LOCAL_EMBEDDER, Embeddings
from pilothouse.server.openai.guard import (
    Reply,
    RequestGuard,
    error_headers,
    response_start,
    unknown_model,
)
from pilothouse.server.openai.responses import ResponsesAPI


class OpenAIEndpoints:
    def __init__(self, context: ServerContext) -> None:
        self.context = context
        self.embedder = Embeddings(context.gateway.settings)
        self.guard = RequestGuard(context)
        self.responses_api = ResponsesAPI(context, self.guard.run, self.guard.authorize)
        self._available: list[str] | None = None

    # --- POST /v1/chat/completions -----------------------------------------------------

    async def chat_completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.guard.run(scope, receive, send, self._chat)

    async def _chat(
        self, scope: Scope, receive: Receive, reply: Reply, info: dict[str, Any]
    ) -> None:
        data: dict[str, Any] = info["data"]
        principal: Principal = info["principal"]
        name: str = data["model"]
        stream = data.get("stream") is True
        copilots = self.context.copilots
        if name in copilots:
            await self.guard.authorize(principal, f"chat:{name}")
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
                    await reply(response_start(200, headers, b"application/json", len(body)))
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
            raise unknown_model(name)
        await self.guard.authorize(principal, MODELS)
        await self._gateway(chain, data, stream, reply, info)

    async def _gateway(
        self, chain: Chain, data: dict[str, Any], stream: bool, reply: Reply, info: dict[str, Any]
    ) -> None:
        opened = await self.context.gateway.open(chain, data, stream)
        try:
            info["target"] = opened.target
            model_header = (b"x-pilothouse-model", opened.target.encode("latin-1", "replace"))
            if not stream:
                await reply(
                    response_start(200, [model_header], opened.content_type, len(opened.body))
                )
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
            info["trace_id"] = opened.trace_id  # written by aclose when anything failed
            if opened.outcome is not None:  # a broken stream is not logged as a success
                continued_on = opened.outcome.partition(":")[2]
                info["error"] = "stream_continued" if continued_on else opened.outcome
                if continued_on:
                    info["target"] = f"{opened.target}>{continued_on}"

    # --- POST /v1/embeddings -----------------------------------------------------------

    async def embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.guard.run(scope, receive, send, self._embed)

    async def _embed(
        self, scope: Scope, receive: Receive, reply: Reply, info: dict[str, Any]
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
            raise unknown_model(name)
        await self.guard.authorize(info["principal"], MODELS)
        body = await self.embedder.answer(data, targets, name)
        await reply(response_start(200, [], b"application/json", len(body)))
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
        raise unknown_model(wanted)

    async def _principal_of(self, request: Request) -> Principal:
        """The caller, counted against its key's rate limit (401/429 otherwise)."""
        try:
            principal = await self.guard.principal(request.scope)
        except HTTPError as exc:
            raise HTTPException(exc.status, exc.error_object(), error_headers(exc)) from None
        request.state.principal = principal  # the access log names the key
        await self.context.auth.limit(principal)
        return principal


def _model_item(model_id: str, owner: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owner}
