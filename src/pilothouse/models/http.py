"""What every HTTP protocol adapter shares: the adapter base with one pooled client per
model, HTTP status and transport failures mapped to typed errors, JSON and SSE reading.

Error messages name the host and path, never the query string or a header, so a key
cannot leak through them; and whatever a host sends back (an error body, a stream's
error event) has the adapter's own credentials masked before an error carries it out
(some hosts repeat the Authorization header or the key they refused).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

import httpx
from httpx_sse import EventSource, ServerSentEvent

from pilothouse.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilteredError,
    ContextTooLongError,
    MalformedResponseError,
    ModelError,
    ModelTimeoutError,
    RateLimitedError,
    UnavailableError,
)
from pilothouse.models.base import ProtocolModel
from pilothouse.models.profiles import profile_for
from pilothouse.models.providers import Endpoint
from pilothouse.tracing import Redactor
from pilothouse.util.retry_after import parse_retry_after
from pilothouse.util.urls import safe_url

_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "context length",
    "context window",
    "prompt is too long",
    "too many tokens",
    "maximum context",
    "input token count",
)
_FILTER_MARKERS = ("content_filter", "content management policy", "safety", "blocked")


class HTTPProtocolModel(ProtocolModel):
    """A protocol adapter over HTTP: the model's name at its host, the endpoint that
    hosts it, and one pooled client, made on first use and released by `aclose`.

    Its time limits: `connect_s` to open a connection, the provider's `timeout_s`
    between the bytes of a stream, and `answer_s` for a whole JSON answer, which sends
    nothing before it is complete (None: the provider's `timeout_s` too).
    `compose.harden` sets `connect_s` and `answer_s` from the resilience policy
    (`connect_s`, `total_s`), so a long JSON answer is bounded by the total limit and
    not cut at the read timeout."""

    connect_s: float = 10.0
    answer_s: float | None = None

    def __init__(self, model_id: str, name: str, endpoint: Endpoint) -> None:
        super().__init__(model_id, profile_for(model_id, endpoint.profile))
        self.name = name
        self.endpoint = endpoint
        self._client: httpx.AsyncClient | None = None
        self._own_secrets: Redactor | None = None

    def _mask(self, error: ModelError) -> ModelError:
        if self._own_secrets is None:
            self._own_secrets = Redactor()
            self._own_secrets.register(credential_values(self.endpoint))
        self._own_secrets.scrub_exception(error)
        return error

    def continues_assistant(self) -> bool:
        """The host continues a final assistant message (`ProviderEntry.prefill`)."""
        return bool(self.endpoint.prefill)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = make_client(self.endpoint, connect_timeout=self.connect_s)
        return self._client

    def _json_timeout(self) -> httpx.Timeout:
        """The limits of a request whose answer comes back whole (JSON)."""
        return httpx.Timeout(
            self.endpoint.timeout_s,
            connect=min(self.connect_s, self.endpoint.timeout_s),
            read=self.answer_s or self.endpoint.timeout_s,
        )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class StatusErrorMapper(Protocol):
    """Maps a non-2xx answer to a typed error; `error_for_status` is the shared one, a
    protocol with richer error bodies (Gemini) passes its own."""

    def __call__(
        self, status: int, body: bytes | str, headers: Mapping[str, str], *, model: str, url: str
    ) -> ModelError: ...


def credential_values(endpoint: Endpoint) -> list[str]:
    """What the endpoint sends that is secret: the key (and the header carrying it) and
    any configured header whose name looks secret."""
    probe = Redactor()
    values = [
        v
        for k, v in {**endpoint.headers, **endpoint.auth_headers()}.items()
        if probe.is_secret_key(k)
    ]
    values += [v.partition(" ")[2] for v in values]  # the token of "Bearer TOKEN"
    if endpoint.api_key is not None:
        values.append(endpoint.api_key.get_secret_value())
    return values


def make_client(endpoint: Endpoint, *, connect_timeout: float = 10.0) -> httpx.AsyncClient:
    """A pooled client for one endpoint. The read timeout bounds the gap between bytes,
    so a stalled stream fails with a timeout instead of hanging."""
    timeout = httpx.Timeout(endpoint.timeout_s, connect=min(connect_timeout, endpoint.timeout_s))
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    return httpx.AsyncClient(timeout=timeout, limits=limits, headers=endpoint.headers)


def error_message(body: bytes | str) -> str:
    """The human message inside an error body. OpenAI, Anthropic and Gemini all put it
    at `error.message`; anything else is shown as (trimmed) text."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text.strip()[:300] or "(empty body)"
    if isinstance(data, list) and data:  # Gemini streams errors as a one-item list
        data = data[0]
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            parts = [str(err.get(k)) for k in ("type", "code", "status") if err.get(k)]
            message = str(err.get("message") or "")
            return f"{message} ({', '.join(parts)})" if parts else message
        if isinstance(err, str):
            return err
        if "message" in data:
            return str(data["message"])
    return text.strip()[:300]


def error_for_status(
    status: int, body: bytes | str, headers: Mapping[str, str], *, model: str, url: str
) -> ModelError:
    """The typed error for a non-2xx answer."""
    detail = error_message(body)
    lowered = detail.lower()
    where = f"HTTP {status} from {url}: {detail}"
    if status in (401, 403):
        return AuthenticationError(where, model=model, status=status)
    if status == 429:
        return RateLimitedError(where, model=model, retry_after=parse_retry_after(headers))
    if status in (408, 504):
        return ModelTimeoutError(where, model=model, status=status)
    if status == 413 or any(marker in lowered for marker in _CONTEXT_MARKERS):
        return ContextTooLongError(where, model=model, status=status)
    if any(marker in lowered for marker in _FILTER_MARKERS) and status < 500:
        return ContentFilteredError(where, model=model, status=status)
    if status >= 500:  # 500, 502, 503, and Anthropic's 529 "overloaded"
        error = UnavailableError(where, model=model, status=status)
        return error
    return BadRequestError(where, model=model, status=status)


def error_for_transport(exc: httpx.HTTPError, *, model: str, url: str) -> ModelError:
    """The typed error for a failure below HTTP: refused, reset, timed out."""
    if isinstance(exc, httpx.TimeoutException):
        return ModelTimeoutError(
            f"no answer from {url} in time ({type(exc).__name__})", model=model
        )
    if isinstance(exc, httpx.ConnectError):
        return UnavailableError(f"cannot connect to {url}: {exc}", model=model)
    if isinstance(exc, httpx.RemoteProtocolError):
        return UnavailableError(f"{url} closed the connection mid-response: {exc}", model=model)
    return UnavailableError(f"request to {url} failed: {type(exc).__name__}: {exc}", model=model)


def parse_json_body(body: bytes, *, model: str, url: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedResponseError(
            f"{url} answered with invalid JSON: {exc}; body starts {body[:80]!r}", model=model
        ) from None
    if not isinstance(data, dict):
        raise MalformedResponseError(f"{url} answered JSON that is not an object", model=model)
    return data


def parse_json_data(event: ServerSentEvent, *, model: str, url: str) -> Any:
    try:
        return json.loads(event.data)
    except json.JSONDecodeError:
        raise MalformedResponseError(
            f"{url} sent a stream event that is not JSON: {event.data[:80]!r}", model=model
        ) from None


def number_list(value: Any) -> list[float] | None:
    """A JSON array of numbers (an embedding) as floats, or None when `value` is not
    one. Booleans are not numbers here, although Python counts them as ints."""
    if not isinstance(value, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        return None
    return [float(v) for v in value]


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    payload: dict[str, Any],
    headers: dict[str, str],
    *,
    model: str,
    error_for: StatusErrorMapper = error_for_status,
    limits: httpx.Timeout | None = None,
) -> dict[str, Any]:
    """POST and return the JSON object, or raise the typed error. `limits` replace the
    client's timeouts (a JSON answer is waited for whole, not byte by byte)."""
    shown = safe_url(url)
    try:
        response = await client.post(
            url, json=payload, headers=headers, timeout=limits or client.timeout
        )
    except httpx.HTTPError as exc:
        raise error_for_transport(exc, model=model, url=shown) from None
    if response.status_code >= 400:
        raise error_for(
            response.status_code, response.content, response.headers, model=model, url=shown
        )
    return parse_json_body(response.content, model=model, url=shown)


@asynccontextmanager
async def open_sse(
    client: httpx.AsyncClient,
    url: str,
    payload: dict[str, Any],
    headers: dict[str, str],
    *,
    model: str,
    error_for: StatusErrorMapper = error_for_status,
) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
    """POST and yield the server-sent events; errors before and during the stream come
    out typed (a transport failure mid-stream becomes `UnavailableError`)."""
    shown = safe_url(url)
    try:
        async with client.stream(
            "POST", url, json=payload, headers={**headers, "Accept": "text/event-stream"}
        ) as response:
            if response.status_code >= 400:
                body = await response.aread()
                raise error_for(
                    response.status_code, body, response.headers, model=model, url=shown
                )
            yield _events(EventSource(response), model=model, url=shown)
    except httpx.HTTPError as exc:
        raise error_for_transport(exc, model=model, url=shown) from None


async def _events(source: EventSource, *, model: str, url: str) -> AsyncIterator[ServerSentEvent]:
    try:
        async for event in source.aiter_sse():
            yield event
    except httpx.HTTPError as exc:
        raise error_for_transport(exc, model=model, url=url) from None
