"""Credentials for outbound tool calls, each bound to the origin it belongs to.

A credential is applied by the safe HTTP client only to requests for its own origin
(scheme, host and port of the configured base URL), so a redirect or a crafted URL
to another host never carries it. Secrets are `SecretStr` and appear in no repr,
message or log.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import httpx
from pydantic import SecretStr

from pilothouse.tools.errors import ServiceAuthError, ToolError
from pilothouse.tools.http import SafeHttpClient, same_origin
from pilothouse.util.urls import safe_url


class ScopedCredential:
    """Base: knows its origin; subclasses put the secret on the request."""

    def __init__(self, origin: str | httpx.URL):
        self.origin = httpx.URL(str(origin))

    def applies_to(self, url: httpx.URL) -> bool:
        return same_origin(url, self.origin)

    async def apply(self, request: httpx.Request, client: SafeHttpClient) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} for {safe_url(self.origin)}>"


class BearerToken(ScopedCredential):
    def __init__(self, origin: str | httpx.URL, token: SecretStr):
        super().__init__(origin)
        self._token = token

    async def apply(self, request: httpx.Request, client: SafeHttpClient) -> None:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"


class BasicAuth(ScopedCredential):
    def __init__(self, origin: str | httpx.URL, username: str, password: SecretStr):
        super().__init__(origin)
        self._username = username
        self._password = password

    async def apply(self, request: httpx.Request, client: SafeHttpClient) -> None:
        raw = f"{self._username}:{self._password.get_secret_value()}".encode()
        request.headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")


class ApiKey(ScopedCredential):
    """A key in a header, a query parameter or a cookie (OpenAPI `apiKey`)."""

    def __init__(
        self,
        origin: str | httpx.URL,
        name: str,
        value: SecretStr,
        location: Literal["header", "query", "cookie"] = "header",
        prefix: str = "",
    ):
        super().__init__(origin)
        self.name = name
        self.location = location
        self._value = value
        self._prefix = prefix

    async def apply(self, request: httpx.Request, client: SafeHttpClient) -> None:
        value = self._prefix + self._value.get_secret_value()
        if self.location == "header":
            request.headers[self.name] = value
        elif self.location == "query":
            request.url = request.url.copy_merge_params({self.name: value})
        else:
            existing = request.headers.get("cookie")
            cookie = f"{self.name}={value}"
            request.headers["Cookie"] = f"{existing}; {cookie}" if existing else cookie


class CombinedCredential(ScopedCredential):
    """Several credentials for one origin (e.g. a key and a token)."""

    def __init__(self, origin: str | httpx.URL, parts: Sequence[ScopedCredential]):
        super().__init__(origin)
        self.parts = tuple(parts)

    async def apply(self, request: httpx.Request, client: SafeHttpClient) -> None:
        for part in self.parts:
            await part.apply(request, client)


@dataclass(slots=True)
class _CachedToken:
    value: str = ""
    expires_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class OAuth2ClientCredentials(ScopedCredential):
    """OAuth 2.0 client-credentials grant: a token fetched from `token_url` (through
    the same safe client and network policy), cached until shortly before it
    expires, and sent as a bearer token."""

    def __init__(
        self,
        origin: str | httpx.URL,
        *,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        scopes: Sequence[str] = (),
        audience: str | None = None,
        client_auth: Literal["body", "basic"] = "body",
        refresh_margin_s: float = 30.0,
        on_token: Callable[[str], None] | None = None,
    ):
        super().__init__(origin)
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self.scopes = tuple(scopes)
        self.audience = audience
        self.client_auth = client_auth
        self.refresh_margin_s = refresh_margin_s
        self._cache = _CachedToken()
        self._on_token = on_token
        self.fetch_count = 0

    async def apply(self, request: httpx.Request, client: SafeHttpClient) -> None:
        token = await self.token(client)
        request.headers["Authorization"] = f"Bearer {token}"

    async def token(self, client: SafeHttpClient) -> str:
        cache = self._cache
        async with cache.lock:
            if cache.value and time.monotonic() < cache.expires_at - self.refresh_margin_s:
                return cache.value
            value, lifetime = await self._fetch(client)
            if self._on_token is not None:
                self._on_token(value)
            cache.value = value
            cache.expires_at = time.monotonic() + lifetime
            return value

    async def _fetch(self, client: SafeHttpClient) -> tuple[str, float]:
        self.fetch_count += 1
        form = {"grant_type": "client_credentials"}
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        if self.audience:
            form["audience"] = self.audience
        headers = {"Accept": "application/json"}
        if self.client_auth == "basic":
            raw = f"{self.client_id}:{self._secret.get_secret_value()}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
        else:
            form["client_id"] = self.client_id
            form["client_secret"] = self._secret.get_secret_value()
        response = await client.request("POST", self.token_url, form=form, headers=headers)
        where = safe_url(self.token_url)
        try:
            data = response.json()
        except ToolError:
            data = None
        if response.status >= 400 or not isinstance(data, dict) or "access_token" not in data:
            reason = ""
            if isinstance(data, dict) and data.get("error"):
                reason = f": {data.get('error')} {data.get('error_description') or ''}".rstrip()
            raise ServiceAuthError(
                f"OAuth2 token request to {where} failed (HTTP {response.status}){reason}; "
                "check client_id, client_secret and scopes in the tool configuration",
                status=response.status,
            )
        try:
            lifetime = float(data.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        return str(data["access_token"]), lifetime
