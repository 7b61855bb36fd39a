"""Gateway mode: raw models and routes (public names mapped to fallback chains), with
the fast path for targets that speak the OpenAI protocol.

Fast path: the client's JSON body goes to the upstream with only `model` rewritten,
and the upstream's bytes come back unchanged (no neutral types, no re-encoding),
through one pooled aiohttp client for the whole process.

Failover is decided before the first byte reaches the client: a connect error, a
timeout, a 429 or 5xx answer, a 200 whose stream breaks or starts with an error
event, and an open circuit all move on (after the route's retries) to the next target,
invisibly. Once bytes were sent, a broken upstream stream ends the client's stream
with an SSE error event (`{"error": {...}}`, no `[DONE]`): never a silent truncation.
A 400 from an upstream is the client's mistake and is passed back as it is.

Targets of other protocols (Anthropic, Gemini, the embedded local model) and models
given to the app directly go through the neutral model layer (hardened with the same
timeouts, retries and circuit breakers) and are encoded back into OpenAI's format.

This module resolves names to chains and builds their targets; answering a chain
(the failover itself) is in failover.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import aiohttp

from pilothouse.config import Settings
from pilothouse.errors import ConfigError
from pilothouse.models.attempts import observing
from pilothouse.models.base import Model
from pilothouse.models.breaker import BreakerBoard
from pilothouse.models.compose import ResiliencePolicy, harden
from pilothouse.models.local.catalog import CATALOG
from pilothouse.models.profiles import profile_for
from pilothouse.models.providers import provider_entry, resolve_endpoint
from pilothouse.models.registry import create_model, split_model_id
from pilothouse.models.timeout import TimeoutPolicy
from pilothouse.server.asgi import HTTPError
from pilothouse.server.gateway.chain import Chain, ModelTarget, Target
from pilothouse.server.gateway.failover import open_chain
from pilothouse.server.gateway.passthrough import (
    Opened,
    PassThroughTarget,
    UpstreamClientError,
)
from pilothouse.server.gateway.routes import Route, RouteSettings, RoutesFile
from pilothouse.server.gateway.traces import RequestAttempts, write_trace
from pilothouse.tracing import Tracer
from pilothouse.util.urls import safe_url

log = logging.getLogger(__name__)


MAX_CHAINS = 4096


# --- the gateway ---------------------------------------------------------------------


class Gateway:
    def __init__(
        self,
        settings: Settings,
        routes: RoutesFile,
        *,
        board: BreakerBoard | None = None,
        models: Mapping[str, Model] | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        if routes.providers:
            merged = {**settings.providers, **routes.providers}
            settings = settings.model_copy(update={"providers": merged})
        self.settings = settings
        self.file = routes
        self.board = board or BreakerBoard(routes.breaker.policy())
        if board is not None:
            board.policy = routes.breaker.policy()
        self.models = dict(models or {})
        self.routes = {
            name: Route(name, spec, routes.defaults) for name, spec in routes.routes.items()
        }
        self._default = Route("", RouteSettings(targets=["x:y"]), routes.defaults)
        self._chains: dict[str, Chain] = {}
        self._session: aiohttp.ClientSession | None = None
        self._tracer = tracer
        self._owns_tracer = tracer is None
        for route in self.routes.values():  # unknown providers fail at start, not later
            for target in route.targets:
                if target not in self.models:
                    provider_entry(split_model_id(target)[0], self.settings)

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=1024, limit_per_host=256, ttl_dns_cache=300, keepalive_timeout=60
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        tracer, self._tracer = self._tracer, None
        if tracer is not None and self._owns_tracer:
            tracer.close()  # the traces still waiting are written first
        chains, self._chains = self._chains, {}
        closed: set[int] = set()
        for chain in chains.values():
            for target in chain.targets:
                if isinstance(target, ModelTarget) and id(target.model) not in closed:
                    closed.add(id(target.model))
                    await target.model.aclose()

    @property
    def tracer(self) -> Tracer:
        """Where the traces of requests that failed over go: the data directory's
        trace store, opened at the first one."""
        if self._tracer is None:
            from pilothouse.storage.tracer import open_tracer

            self._tracer = open_tracer(self.settings, background=True)
        return self._tracer

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the gateway is not started")
        return self._session

    # --- names -------------------------------------------------------------------------

    def route_names(self) -> list[str]:
        return sorted(self.routes)

    def model_names(self) -> list[str]:
        return sorted(self.models)

    def resolve(self, name: str) -> Chain | None:
        """The chain for a route name, a model given to the app, or a raw
        `provider:model` id; None when `name` is none of these."""
        chain = self._chains.get(name)
        if chain is not None:
            return chain
        route = self.routes.get(name)
        if route is not None:
            ids = route.targets
        elif name in self.models:
            ids = [name]
        else:
            provider, sep, model = name.partition(":")
            if not sep or not provider or not model:
                return None
            try:
                entry = provider_entry(provider, self.settings)
            except ConfigError:
                return None
            if entry.protocol == "local" and model not in CATALOG:
                return None  # a client never names a file on this machine (routes may)
            ids = [name]
        policy = route or self._default
        last = len(ids) - 1
        targets = [self._target(i, policy, before_fallback=n < last) for n, i in enumerate(ids)]
        timeouts = policy.timeout
        chain = Chain(
            name,
            targets,
            route,
            retry=replace(policy.retry.policy(), deadline_s=timeouts.total_s),
            timeout=timeouts,
            # A JSON answer is bounded by total_s (open_passthrough), a stream's bytes
            # by idle_s; both connect within connect_s.
            json_timeout=aiohttp.ClientTimeout(connect=timeouts.connect_s),
            stream_timeout=aiohttp.ClientTimeout(
                connect=timeouts.connect_s, sock_read=timeouts.idle_s
            ),
            continue_streams=policy.continue_streams,
        )
        if len(self._chains) >= MAX_CHAINS:  # raw ids come from clients: bounded
            self._evict()
        self._chains[name] = chain
        return chain

    def _evict(self) -> None:
        """Forget the oldest raw-id chain; its own models are closed a minute later
        (requests may still be using them)."""
        for name, chain in self._chains.items():
            if chain.route is None and name not in self.models:
                del self._chains[name]
                owned = [
                    t.model
                    for t in chain.targets
                    if isinstance(t, ModelTarget) and t.id not in self.models
                ]
                if owned:
                    _close_later(owned)
                return

    def _target(self, model_id: str, route: Route, *, before_fallback: bool) -> Target:
        timeouts = route.timeout
        if model_id in self.models:
            return ModelTarget(model_id, self.models[model_id])
        provider, name = split_model_id(model_id)
        endpoint = resolve_endpoint(provider, self.settings)
        # The fast path forwards the body as it is; a model without native tools needs
        # its tool calls emulated, which only the model path does.
        native_tools = profile_for(model_id, endpoint.profile).native_tools
        if endpoint.protocol != "openai" or not native_tools:
            resilience = ResiliencePolicy(
                retry=route.retry.policy(),
                timeout=TimeoutPolicy(
                    connect_s=timeouts.connect_s,
                    first_byte_s=timeouts.first_byte_s,
                    idle_s=timeouts.idle_s,
                    total_s=timeouts.total_s,
                ),
            )
            adapter = create_model(model_id, self.settings)
            model = harden(adapter, resilience, self.board, before_fallback=before_fallback)
            return ModelTarget(model_id, model)
        entry = provider_entry(provider, self.settings)
        base = endpoint.base_url
        missing = None
        if not base:
            missing = f"provider {provider!r} has no base URL; set base_url for it"
        if endpoint.flavor == "azure":
            url = (
                f"{base}/openai/deployments/{quote(name, safe='')}/chat/completions"
                f"?api-version={quote(endpoint.api_version or '', safe='')}"
            )
            upstream_model: str | None = None
        else:
            url = f"{base}/chat/completions"
            upstream_model = name
        if endpoint.api_key is None and entry.key_required and endpoint.auth != "none":
            missing = f"no API key for provider {provider!r}: set {entry.key_env}"
        headers = {
            **endpoint.headers,
            **endpoint.auth_headers(),
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",
            "User-Agent": "pilothouse",
        }
        return PassThroughTarget(
            id=model_id,
            url=url,
            shown_url=safe_url(url) if base else provider,
            upstream_model=upstream_model,
            headers=headers,
            breaker=self.board.get(model_id),
            missing_key=missing,
            prefill=endpoint.prefill,
        )

    # --- answering ---------------------------------------------------------------------

    async def open(self, chain: Chain, data: dict[str, Any], stream: bool) -> Opened:
        """Start the answer on the first target that can give one (see the module
        docstring). Raises HTTPError when every target failed, UpstreamClientError
        when an upstream refused the request itself. A request in which anything
        failed is traced (server/gateway/traces.py), once it is answered or failed."""
        attempts = RequestAttempts(chain.name, stream)
        with observing(attempts):
            try:
                opened = await open_chain(self.session, chain, data, stream)
            except BaseException as error:
                trace_id = self._trace(attempts, None, error)
                if isinstance(error, HTTPError | UpstreamClientError):
                    error.trace_id = trace_id  # for the access log
                raise

        async def traced() -> None:
            broken = opened.error if opened.outcome == "stream_interrupted" else None
            opened.trace_id = self._trace(attempts, opened.target, broken)

        opened.closers.append(traced)
        return opened

    def _trace(
        self,
        attempts: RequestAttempts,
        answered_by: str | None,
        error: BaseException | str | None,
    ) -> str | None:
        if not attempts.worth_a_trace(error):
            return None
        return write_trace(self.tracer, attempts, answered_by=answered_by, error=error)


# --- helpers -------------------------------------------------------------------------


_CLOSING: set[asyncio.Task[None]] = set()


def _close_later(models: list[Model], delay_s: float = 60.0) -> None:
    loop = asyncio.get_running_loop()

    def close() -> None:
        for model in models:
            task = loop.create_task(model.aclose())
            _CLOSING.add(task)
            task.add_done_callback(_CLOSING.discard)

    loop.call_later(delay_s, close)
