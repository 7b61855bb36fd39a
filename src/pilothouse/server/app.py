"""The app factory: one ASGI app serving copilots and raw models over the OpenAI API,
the gateway routes, the management API and the operations endpoints.

    app = create_app(settings, copilots=["examples/helpdesk"], routes="routes.yaml")

The app is a FastAPI app (the management API and its OpenAPI document live there),
with the hot endpoints (`POST /v1/chat/completions`, `POST /v1/embeddings`) answered
by plain ASGI callables before the framework's routing and middleware are reached.

Old traces are pruned at start-up and every hour by a background task (retention.py).

The management API plugs in from `pilothouse.server.management`: its `install(app)`
is called when it has one, else its `router` (or `create_router()`) is included. Its
routes use `Depends(require_scope("admin"))` (server/auth.py) and reach the running
server's copilots through `server_context(request).copilots` (server/context.py).
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.errors import ConfigError, StorageUnavailableError
from pilothouse.models.base import Model
from pilothouse.models.breaker import BreakerBoard
from pilothouse.pipeline.promotion.controller import ModelFactory
from pilothouse.server import ops
from pilothouse.server.asgi import (
    ASGIApp,
    HTTPError,
    Receive,
    Scope,
    Send,
    error_type,
    storage_unavailable,
)
from pilothouse.server.auth import AUTH_STATE_KEY, Authenticator
from pilothouse.server.browser import BrowserGuard, with_cors
from pilothouse.server.context import (
    CONTEXT_STATE_KEY,
    CopilotHost,
    Limits,
    ServerContext,
    copilot_sources,
)
from pilothouse.server.docs_pages import install_docs
from pilothouse.server.gateway.gateway import Gateway
from pilothouse.server.gateway.routes import load_routes
from pilothouse.server.keys import KeyStore
from pilothouse.server.openai import schema as openai_schema
from pilothouse.server.openai.api import OpenAIEndpoints
from pilothouse.server.promotions import POLL_S, ServedPromotions
from pilothouse.server.redaction import redacting
from pilothouse.server.retention import TracePruner
from pilothouse.server.upload_policy import CodePolicy
from pilothouse.storage.backends import call_wait_s, close_database, open_store
from pilothouse.storage.secrets import redactor_for
from pilothouse.tracing import install_log_redaction, remove_log_redaction

log = logging.getLogger(__name__)
LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "pilothouse.access")
"""Loggers whose handlers mask secrets while the app runs (the root and uvicorn's)."""


class PilothouseApp(FastAPI):
    """FastAPI, with a short way in for the hot endpoints."""

    context: ServerContext
    fast: dict[str, ASGIApp]
    pruner: TracePruner
    guard: BrowserGuard
    entry: ASGIApp
    """What an HTTP request goes through first: `route`, behind CORS when configured."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.entry(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def route(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self.guard.check(scope)
        if refusal is not None:
            await ops.refuse(scope, send, refusal)
            return
        handler = self.fast.get(scope["path"])
        if handler is not None and scope["method"] == "POST":
            await handler(scope, receive, send)
            return
        await ops.guarded_http(self, scope, receive, send)

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The FastAPI app proper (routing, dependencies, exception handlers)."""
        await super().__call__(scope, receive, send)


def is_loopback(host: str) -> bool:
    """Whether `host` (as given to --host) is a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def create_app(
    settings: Settings,
    *,
    copilots: Sequence[str | Path | Copilot] = (),
    routes: str | Path | Mapping[str, Any] | None = None,
    no_auth: bool = False,
    host: str = "127.0.0.1",
    keys: KeyStore | None = None,
    models: Mapping[str, Model] | None = None,
    limits: Limits | None = None,
    sync_knowledge: bool = True,
    copilot_models: Mapping[str, Sequence[Model]] | None = None,
    allow_code_upload: bool | None = None,
    model_factory: ModelFactory | None = None,
    promotion_poll_s: float = POLL_S,
) -> PilothouseApp:
    """Build the server app.

    - `copilots`: copilot folders to open at start-up (or opened `Copilot`s, which the
      app then owns and closes);
    - `routes`: a gateway routes file (YAML) or its parsed content;
    - `no_auth`: serve without keys; refused unless `host` is a loopback address;
    - `keys`: the key store (by default the storage backend's: the data directory's
      database, or the shared PostgreSQL one, whose rate-limit counters it then uses);
      with auth on, at least one active key must exist;
    - `models`: ready models by public name, served like raw models (tests pass test
      doubles here);
    - `copilot_models`: ready models for copilots, by copilot name, replacing the
      model policy of their copilot.yaml (tests pass test doubles here);
    - `allow_code_upload`: let uploaded copilots bring code (`--allow-code-upload`;
      None: config.toml's `[server] allow_code_upload`); see upload_policy.py;
    - `model_factory`: model id -> ready models, for promotions (candidates, judges,
      a promoted copilot opened again; tests pass test doubles); `promotion_poll_s`:
      how often the promotion store is read for changes made elsewhere.
    """
    if no_auth and not is_loopback(host):
        raise ConfigError(
            f"--no-auth is only allowed on a loopback address (127.0.0.1, ::1, localhost), "
            f"not {host!r}: anyone who can reach {host} could use every copilot and model. "
            "Create a key with `pilothouse keys create --scope ...` instead."
        )
    origins = settings.server.cors_origins
    if no_auth and "*" in origins:
        raise ConfigError(
            f"{settings.config_path}: [server] cors_origins = ['*'] with --no-auth would let "
            "every web page drive this server; list the origins of your own web apps instead"
        )
    sources = copilot_sources(copilots)
    board = BreakerBoard()
    gateway = Gateway(settings, load_routes(routes), board=board, models=dict(models or {}))
    store: KeyStore | None = None
    if not no_auth:
        store = keys or KeyStore.for_settings(settings)
        if store.count_active() == 0:
            raise ConfigError(
                "no API keys exist, so nobody could call this server: create one with "
                "`pilothouse keys create --scope admin` (or --scope models, chat:<copilot>), "
                "or run with --no-auth on 127.0.0.1 for local use"
            )
    auth = Authenticator(
        store, limiter=open_store(settings, "rate_limits"), storage_wait_s=call_wait_s(settings)
    )
    context = ServerContext(
        settings=settings,
        copilots=CopilotHost(
            settings,
            board=board,
            sync_knowledge=sync_knowledge,
            models=copilot_models,
            code_policy=CodePolicy.of(settings.server, allow_code=allow_code_upload),
        ),
        auth=auth,
        gateway=gateway,
        keys=store,
        limits=limits or Limits.of(settings.server),
        copilot_paths=sources,
    )
    promotions = ServedPromotions(context, model_factory=model_factory, poll_s=promotion_poll_s)
    context.promotions = promotions
    endpoints = OpenAIEndpoints(context)
    pruner = TracePruner(settings)
    redactor = redactor_for(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        log_filter = install_log_redaction(redactor, LOGGERS)
        try:
            await gateway.start()
            for source in sources:
                if isinstance(source, Copilot):
                    await context.copilots.add(source)
                else:
                    await context.copilots.open(source)
            await promotions.start()
            context.phase = "ready"
            pruner.start()
            log.info(
                "serving copilots %s and %d gateway routes",
                ", ".join(context.copilots.names()) or "(none)",
                len(gateway.route_names()),
            )
            yield {CONTEXT_STATE_KEY: context, AUTH_STATE_KEY: auth}
        finally:
            await pruner.aclose()
            context.drain()
            context.phase = "stopped"
            await promotions.aclose()
            await context.copilots.aclose()
            await endpoints.embedder.aclose()
            endpoints.responses_api.close()
            await gateway.aclose()
            if store is not None and keys is None:
                store.close()
            if keys is None:
                close_database(settings)  # the shared database's pool, if one was opened
            for handler in logging.getLogger("pilothouse.access").handlers:
                handler.flush()  # a buffered access log loses nothing at exit
            remove_log_redaction(log_filter, LOGGERS)

    app = PilothouseApp(
        title="Pilothouse",
        summary="Copilots and models over the OpenAI API, with a management API.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served offline by docs_pages, not from a CDN
        redoc_url=None,
    )
    app.context = context
    app.pruner = pruner
    app.guard = BrowserGuard(no_auth=no_auth, origins=origins)
    # Outermost: no answer leaves with a secret the settings know (server/redaction.py).
    app.entry = redacting(with_cors(app.route, origins) if origins else app.route, redactor)
    setattr(app.state, CONTEXT_STATE_KEY, context)
    setattr(app.state, AUTH_STATE_KEY, auth)
    app.fast = {
        "/v1/chat/completions": endpoints.chat_completions,
        "/v1/embeddings": endpoints.embeddings,
        "/v1/responses": endpoints.responses_api.handle,
    }
    app.include_router(openai_schema.router)
    app.add_api_route(
        "/v1/models",
        endpoints.list_models,
        methods=["GET"],
        tags=["OpenAI-compatible"],
        summary="The copilots, routes and models this key may use",
        responses=openai_schema.ERRORS,  # type: ignore[arg-type]
    )
    app.add_api_route(
        "/v1/models/{model:path}",
        endpoints.get_model,
        methods=["GET"],
        tags=["OpenAI-compatible"],
        summary="One copilot, route or model",
        responses=openai_schema.ERRORS,  # type: ignore[arg-type]
    )
    app.include_router(ops.router)
    install_docs(app)
    _install_error_handlers(app)
    _install_management(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    async def http_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPError):
            return Response(
                exc.body(),
                status_code=exc.status,
                media_type="application/json",
                headers={k.decode(): v.decode() for k, v in exc.headers},
            )
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail
        if isinstance(detail, dict) and "message" in detail:
            error = detail
        else:
            error = {
                "message": str(detail),
                "type": error_type(exc.status_code),
                "param": None,
                "code": None,
            }
        return Response(
            orjson.dumps({"error": error}),
            status_code=exc.status_code,
            media_type="application/json",
            headers=dict(exc.headers or {}),
        )

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = exc.errors()
        first = problems[0] if problems else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        message = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in problems
        )
        error = {
            "message": message or "the request is not valid",
            "type": "invalid_request_error",
            "param": ".".join(loc) or None,
            "code": "invalid_request",
        }
        return Response(
            orjson.dumps({"error": error}), status_code=422, media_type="application/json"
        )

    async def storage_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StorageUnavailableError)
        return await http_error(request, storage_unavailable(exc))

    app.add_exception_handler(HTTPError, http_error)
    app.add_exception_handler(StorageUnavailableError, storage_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)


def _install_management(app: FastAPI) -> None:
    """Plug in the management API (pilothouse.server.management) when it is there."""
    try:
        module = importlib.import_module("pilothouse.server.management")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("pilothouse.server.management"):
            return
        raise
    install = getattr(module, "install", None)
    if callable(install):
        install(app)
        return
    router = getattr(module, "router", None)
    if router is None and callable(getattr(module, "create_router", None)):
        router = module.create_router()
    if router is not None:
        app.include_router(router)
