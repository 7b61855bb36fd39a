"""The one outbound HTTP client for every tool call and URL fetch.

Security model (docs/tools.md, "The safe HTTP client"):
- Every new connection resolves the host itself, checks every resolved address
  against the `NetworkPolicy`, and connects to the checked address (the TLS server
  name and the Host header stay the original host name). A DNS answer that changes
  between check and use (rebinding) cannot slip through: the address that was
  checked is the address that is dialled.
- Redirects are followed by this client, not by httpx: each hop is checked again,
  their number is limited, and credentials are applied only to the origin they were
  configured for (a redirect to another host loses them).
- Environment proxies are ignored; URLs with `user:password@` are refused; only
  http and https.
- Response bodies are read up to a byte limit; the whole exchange has a deadline.
- Messages and logs show URLs without query strings or credentials.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import certifi
import httpcore
import httpx

from pilothouse.tools.errors import (
    BlockedAddressError,
    HTTPLimitError,
    ServiceError,
    ServiceUnavailableError,
    ToolError,
    ToolTimeoutError,
)
from pilothouse.tools.guarded_backend import GuardedConnector
from pilothouse.tools.netpolicy import NetworkPolicy, Resolver, system_resolver
from pilothouse.util.urls import safe_url

logger = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SENSITIVE_HEADERS = ("authorization", "proxy-authorization", "cookie")


@dataclass(frozen=True, slots=True)
class HttpLimits:
    timeout_s: float = 30.0
    """Deadline for one whole exchange, redirects and body included."""
    connect_timeout_s: float = 10.0
    max_response_bytes: int = 5_000_000
    max_redirects: int = 5


class Credential(Protocol):
    """Puts credentials on a request, but only for the origin it belongs to."""

    def applies_to(self, url: httpx.URL) -> bool: ...

    async def apply(self, request: httpx.Request, client: SafeHttpClient) -> None: ...


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: httpx.Headers
    content: bytes
    url: httpx.URL
    method: str

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON; a `ServiceError` when it is not JSON."""
        try:
            return json.loads(self.content) if self.content.strip() else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ServiceError(
                f"{self.method} {safe_url(self.url)} answered HTTP {self.status} with a body "
                f"that is not JSON (starts {self.content[:60]!r})",
                status=self.status,
            ) from None


def same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return (a.scheme, a.host.lower(), a.port or _default_port(a)) == (
        b.scheme,
        b.host.lower(),
        b.port or _default_port(b),
    )


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


class GuardedNetworkBackend(
    GuardedConnector[httpcore.AsyncNetworkStream], httpcore.AsyncNetworkBackend
):
    """httpcore backend that connects only to addresses the policy allows."""

    connect_errors = (httpcore.ConnectError, httpcore.ConnectTimeout)


def default_ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


class SafeHttpClient:
    """Pooled, policy-checked HTTP client. Use one per tool source; close it."""

    def __init__(
        self,
        policy: NetworkPolicy | None = None,
        *,
        limits: HttpLimits | None = None,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = "pilothouse-tools",
    ):
        self.policy = policy or NetworkPolicy()
        self.limits = limits or HttpLimits()
        context = ssl_context or default_ssl_context()
        transport = httpx.AsyncHTTPTransport(verify=context, trust_env=False, retries=0)
        # Swap the transport's pool for one whose network backend checks addresses;
        # httpx maps requests and errors exactly as it does for its own pool.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=64,
            max_keepalive_connections=16,
            network_backend=GuardedNetworkBackend(self.policy, resolver, httpcore.AnyIOBackend()),
        )
        # Requests go to the transport directly, not through httpx.AsyncClient: the
        # client would log every URL with its query string (where some APIs put keys)
        # and keep a cookie jar shared across calls.
        self._transport = transport
        self._timeout = httpx.Timeout(self.limits.timeout_s, connect=self.limits.connect_timeout_s)
        self._user_agent = user_agent

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> SafeHttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        form: Mapping[str, str] | None = None,
        credential: Credential | None = None,
        max_bytes: int | None = None,
        timeout_s: float | None = None,
    ) -> HttpResponse:
        """Send a request and read the whole (bounded) response. Redirects are
        followed here, each hop checked; HTTP error statuses are returned, not
        raised (see `raise_for_status`)."""
        deadline = timeout_s or self.limits.timeout_s
        target = _checked_url(url, self.policy)
        if params:
            target = target.copy_merge_params(
                {k: _param(v) for k, v in params.items() if v is not None}
            )
        try:
            async with asyncio.timeout(deadline):
                return await self._exchange(
                    method.upper(),
                    target,
                    headers=dict(headers or {}),
                    json_body=json_body,
                    content=content,
                    form=form,
                    credential=credential,
                    max_bytes=max_bytes or self.limits.max_response_bytes,
                )
        except TimeoutError:
            raise ToolTimeoutError(
                f"{method.upper()} {safe_url(target)} took longer than {deadline:g} s"
            ) from None
        except httpx.TimeoutException:
            raise ToolTimeoutError(f"{method.upper()} {safe_url(target)} timed out") from None
        except httpx.HTTPError as exc:
            raise _transport_error(exc, method.upper(), target) from None

    async def _exchange(
        self,
        method: str,
        url: httpx.URL,
        *,
        headers: dict[str, str],
        json_body: Any,
        content: bytes | None,
        form: Mapping[str, str] | None,
        credential: Credential | None,
        max_bytes: int,
    ) -> HttpResponse:
        origin = url
        for _hop in range(self.limits.max_redirects + 1):
            request = httpx.Request(
                method,
                url,
                headers={"User-Agent": self._user_agent, **headers},
                json=json_body,
                content=content,
                data=form,
                extensions={"timeout": self._timeout.as_dict()},
            )
            if credential is not None and credential.applies_to(url):
                await credential.apply(request, self)
            logger.debug("tool http %s %s", method, safe_url(url))
            response = await self._transport.handle_async_request(request)
            response.request = request
            try:
                body = await _read_limited(response, max_bytes, method, url)
            finally:
                await response.aclose()
            location = response.headers.get("location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                return HttpResponse(response.status_code, response.headers, body, url, method)
            next_url = _checked_url(url.join(location), self.policy)
            if response.status_code == 303 or (
                response.status_code in (301, 302) and method == "POST"
            ):
                method, json_body, content, form = "GET", None, None, None
                headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            if not same_origin(next_url, origin):
                headers = {k: v for k, v in headers.items() if k.lower() not in _SENSITIVE_HEADERS}
            url = next_url
        raise HTTPLimitError(
            f"{safe_url(origin)} redirected more than {self.limits.max_redirects} times; "
            "use the final URL"
        )


def _param(value: Any) -> str | list[str]:
    if isinstance(value, list | tuple):
        return [str(_param(v)) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _checked_url(url: str | httpx.URL, policy: NetworkPolicy) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise BlockedAddressError(f"refused: not a valid URL ({exc})") from None
    if parsed.scheme not in policy.schemes:
        raise BlockedAddressError(
            f"refused: scheme {parsed.scheme or '(none)'!r}; only "
            f"{', '.join(sorted(policy.schemes))} URLs are allowed"
        )
    if parsed.userinfo:
        raise BlockedAddressError(
            f"refused: {safe_url(parsed)} carries user:password@ in the URL; configure the "
            "tool's auth instead"
        )
    if not parsed.host:
        raise BlockedAddressError("refused: the URL has no host")
    policy.check_name(parsed.host, parsed.port or _default_port(parsed))
    return parsed


async def _read_limited(
    response: httpx.Response, max_bytes: int, method: str, url: httpx.URL
) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPLimitError(
            f"{method} {safe_url(url)}: response of {int(declared)} bytes is over the "
            f"{max_bytes}-byte limit"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise HTTPLimitError(
                f"{method} {safe_url(url)}: response is over the {max_bytes}-byte limit"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _transport_error(exc: httpx.HTTPError, method: str, url: httpx.URL) -> ToolError:
    where = f"{method} {safe_url(url)}"
    if isinstance(exc, httpx.ConnectError):
        return ServiceUnavailableError(f"cannot connect to {safe_url(url)}: {exc}")
    if isinstance(exc, httpx.RemoteProtocolError):
        return ServiceUnavailableError(f"{where}: the server broke the connection: {exc}")
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return BlockedAddressError(f"refused: {where}: {exc}")
    return ServiceUnavailableError(f"{where} failed: {type(exc).__name__}: {exc}")


@dataclass(frozen=True, slots=True)
class ClientFactory:
    """Builds `SafeHttpClient`s with shared defaults (tests swap the resolver)."""

    resolver: Resolver = system_resolver
    limits: HttpLimits = field(default_factory=HttpLimits)
    ssl_context: ssl.SSLContext | None = None

    def __call__(self, policy: NetworkPolicy, limits: HttpLimits | None = None) -> SafeHttpClient:
        return SafeHttpClient(
            policy,
            limits=limits or self.limits,
            resolver=self.resolver,
            ssl_context=self.ssl_context,
        )
