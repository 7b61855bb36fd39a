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
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from pilothouse.config import Settings
from pilothouse.errors import (
    AuthenticationError,
    BadRequestError,
    CircuitOpenError,
    ConfigError,
    ContextTooLongError,
    ModelError,
    ModelTimeoutError,
    RateLimitedError,
    UnavailableError,
)
from pilothouse.models.base import Model, close_stream
from pilothouse.models.breaker import BreakerBoard, CircuitBreaker
from pilothouse.models.compose import ResiliencePolicy, harden
from pilothouse.models.http import error_for_status, safe_url
from pilothouse.models.providers import provider_entry, resolve_endpoint
from pilothouse.models.registry import create_model, split_model_id
from pilothouse.models.timeout import TimeoutPolicy
from pilothouse.server.asgi import HTTPError, sse_error
from pilothouse.server.openai_wire import (
    EXTENSION,
    ChunkWriter,
    completion,
    to_model_request,
    wants_usage,
)
from pilothouse.server.routes import Route, RouteSettings, RoutesFile, load_routes
from pilothouse.types import (
    StreamEnd,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageEvent,
)

log = logging.getLogger(__name__)

__all__ = ["Chain", "Gateway", "Opened", "load_routes"]

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


# --- targets -------------------------------------------------------------------------


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


# --- the gateway ---------------------------------------------------------------------


class Gateway:
    def __init__(
        self,
        settings: Settings,
        routes: RoutesFile,
        *,
        board: BreakerBoard | None = None,
        models: Mapping[str, Model] | None = None,
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
        chains, self._chains = self._chains, {}
        closed: set[int] = set()
        for chain in chains.values():
            for target in chain.targets:
                if isinstance(target, ModelTarget) and id(target.model) not in closed:
                    closed.add(id(target.model))
                    await target.model.aclose()

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
                provider_entry(provider, self.settings)
            except ConfigError:
                return None
            ids = [name]
        policy = route or self._default
        chain = Chain(name, [self._target(i, policy) for i in ids], route)
        chain.retry = policy.retry.policy()
        timeouts = chain.timeout = policy.timeout
        chain.json_timeout = aiohttp.ClientTimeout(
            total=timeouts.total_s, connect=timeouts.connect_s, sock_read=timeouts.idle_s
        )
        chain.stream_timeout = aiohttp.ClientTimeout(
            connect=timeouts.connect_s, sock_read=timeouts.idle_s
        )
        if len(self._chains) < 4096:  # raw ids come from clients: bounded
            self._chains[name] = chain
        return chain

    def _target(self, model_id: str, route: Route) -> Target:
        timeouts = route.timeout
        if model_id in self.models:
            return ModelTarget(model_id, self.models[model_id])
        provider, name = split_model_id(model_id)
        endpoint = resolve_endpoint(provider, self.settings)
        if endpoint.protocol != "openai":
            resilience = ResiliencePolicy(
                retry=route.retry.policy(),
                timeout=TimeoutPolicy(timeouts.total_s, timeouts.first_byte_s, timeouts.idle_s),
            )
            model = harden(create_model(model_id, self.settings), resilience, self.board)
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
        )

    # --- answering ---------------------------------------------------------------------

    async def open(self, chain: Chain, data: dict[str, Any], stream: bool) -> Opened:
        """Start the answer on the first target that can give one (see the module
        docstring). Raises HTTPError when every target failed, UpstreamClientError
        when an upstream refused the request itself."""
        errors: list[ModelError] = []
        for target in chain.targets:
            if isinstance(target, ModelTarget):
                try:
                    return await self._open_model(target, chain, data, stream)
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
                    return await self._open_passthrough(target, chain, data, stream)
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

    async def _open_passthrough(
        self, target: PassThroughTarget, chain: Chain, data: dict[str, Any], stream: bool
    ) -> Opened:
        if target.missing_key:
            raise AuthenticationError(target.missing_key, model=target.id)
        timeouts = chain.timeout
        payload = target.payload(data)
        client_timeout = chain.stream_timeout if stream else chain.json_timeout
        response: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(timeouts.first_byte_s):
                response = await self.session.post(
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
                    raise error_for_status(
                        status, body, headers, model=target.id, url=target.shown_url
                    )
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

    async def _open_model(
        self, target: ModelTarget, chain: Chain, data: dict[str, Any], stream: bool
    ) -> Opened:
        request = to_model_request(data)
        if not stream:
            response = await target.model.complete(request)
            body = orjson.dumps(completion(response))
            return Opened(target.id, b"application/json", body=body)
        writer = ChunkWriter(target.id, include_usage=wants_usage(data))
        events = target.model.stream(request)
        held: list[bytes] = [writer.role()]
        try:
            async for event in events:
                held.append(_encode(writer, event))
                if isinstance(event, StreamEnd | StreamError) or _is_content(event):
                    break
        except BaseException:
            await close_stream(events)
            raise
        return Opened(
            target.id,
            b"text/event-stream; charset=utf-8",
            first=b"".join(held),
            rest=_model_rest(writer, events),
        )


# --- helpers -------------------------------------------------------------------------


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
        yield sse_error(_stream_error(error, target.id))
        return
    finally:
        response.close()
    if pending.strip() or _DONE not in tail:
        error = UnavailableError(
            f"the stream from {target.shown_url} ended before it was complete", model=target.id
        )
        target.breaker.record_failure(error)
        yield sse_error(_stream_error(error, target.id))
        return
    target.breaker.record_success()


def _stream_error(error: ModelError, target: str) -> dict[str, Any]:
    return {
        "message": f"{error} (the answer above is incomplete)",
        "type": "upstream_error",
        "param": None,
        "code": "stream_interrupted",
        "model": target,
    }


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
            _stream_error(
                error if isinstance(error, ModelError) else UnavailableError(str(error)),
                event.partial.model,
            )
        )
    assert isinstance(event, UsageEvent)
    return b""


async def _model_rest(
    writer: ChunkWriter, events: AsyncIterator[StreamEvent]
) -> AsyncIterator[bytes]:
    ended = False
    try:
        async for event in events:
            out = _encode(writer, event)
            if out:
                yield out
            if isinstance(event, StreamEnd | StreamError):
                ended = True
                break
    except ModelError as error:
        ended = True
        yield sse_error(_stream_error(error, writer.model))
    finally:
        await close_stream(events)
    if not ended:
        # The held first events may already hold the end (a short answer).
        return


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
