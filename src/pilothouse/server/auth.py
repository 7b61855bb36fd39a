"""Who is calling, and may they: API-key authentication, scopes and per-key rate limits.

A request carries its key as `Authorization: Bearer <key>` (what every OpenAI client
sends) or `X-API-Key: <key>`. The key is hashed (SHA-256; keys are 256-bit random
tokens, so a fast hash is enough) and looked up in the key store; the key itself is
never stored, logged or kept in memory beyond the request.

Scopes:
- `chat:<copilot>` talks to one copilot over `/v1/chat/completions`; `chat:*` to all;
- `approve:<copilot>` decides the paused tool calls of one copilot's runs, whoever
  started them; `approve:*` of every copilot's;
- `models` uses raw models and gateway routes (`/v1/chat/completions` with a
  `provider:model` id or a route name, `/v1/embeddings`);
- `promote:<copilot>` starts, approves and aborts one copilot's promotions and reads
  them (docs/promotion.md); `promote:*` every copilot's;
- `copilots:write` creates, updates and deletes copilots through the management API;
- `admin` is the management API (everything under `/api`) and implies every scope.

For the management API: `Depends(require_scope("admin"))` on a route (or router)
returns the authenticated `Principal`, or answers 401 (no or unknown key), 403 (key
lacks the scope) or 429 (rate limited, with `Retry-After`) as OpenAI-shaped JSON:
`{"error": {"message", "type", "param", "code"}}`. `Depends(require_key)` needs a key
of any scope (the route then decides what the key may see); the principal is on
`request.state.principal` either way.

Keys and rate-limit counters in a shared database (PostgreSQL) are read from a worker
thread, never on the event loop: a slow or locked database makes the requests that
need it wait (at most `storage_wait_s`, then 503 `storage_unavailable`), not the whole
server. A key the store holds in memory (`is_cached`), and local stores (the data
directory's SQLite, this process's buckets), are read on the loop: that is cheaper
than a thread hop.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from fastapi import HTTPException
from starlette.requests import Request

from pilothouse.errors import StorageUnavailableError

ADMIN = "admin"
MODELS = "models"
CHAT_ANY = "chat:*"
APPROVE_ANY = "approve:*"
PROMOTE_ANY = "promote:*"
COPILOTS_WRITE = "copilots:write"

AUTH_STATE_KEY = "pilothouse_auth"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request: a key (by id and name) and what it may do."""

    key_id: str | None
    name: str
    scopes: frozenset[str]
    rate_per_min: int | None = None

    @property
    def anonymous(self) -> bool:
        """True when the server runs with `--no-auth` (loopback only)."""
        return self.key_id is None

    def allows(self, scope: str) -> bool:
        """Whether this principal holds `scope` (directly, through `chat:*`, or admin)."""
        return scope_allows(self.scopes, scope)


ANONYMOUS = Principal(key_id=None, name="anonymous (--no-auth)", scopes=frozenset({ADMIN}))


def scope_allows(held: Iterable[str], wanted: str) -> bool:
    """`admin` implies everything; `chat:*` implies every `chat:<name>`, `approve:*`
    every `approve:<name>`, `promote:*` every `promote:<name>`."""
    held = set(held)
    if ADMIN in held or wanted in held:
        return True
    for family in ("chat:", "approve:", "promote:"):
        if wanted.startswith(family):
            return f"{family}*" in held
    return False


def hash_key(key: str) -> str:
    """The stored form of a key: hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class AuthError(HTTPException):
    """401/403/429 with an OpenAI-shaped body; `detail` is the inner `error` object.

    The server's exception handler renders `{"error": detail}`; a FastAPI app without
    that handler still renders `{"detail": detail}` with the right status.
    """

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        type: str,
        code: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        detail = {"message": message, "type": type, "param": None, "code": code}
        super().__init__(status_code=status_code, detail=detail, headers=dict(headers or {}))
        self.error: dict[str, Any] = detail


class KeyLookup(Protocol):
    """What the authenticator needs from the key store."""

    def principal_for_hash(self, key_hash: str) -> Principal | None: ...

    def is_cached(self, key_hash: str) -> bool:
        """Whether `principal_for_hash` answers from memory now (no I/O)."""
        ...


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class Limiter(Protocol):
    """What the authenticator needs from rate-limit counters: this process's
    `RateLimiter`, or counters shared by every replica (the storage backend's
    `rate_limits`; see the rate-limiter conformance suite)."""

    def check(self, key_id: str, rate_per_min: int) -> float | None: ...


@dataclass
class RateLimiter:
    """Token buckets per key in this process's memory: `rate` requests per minute,
    bursts up to `rate` (one server process; not thread-safe: used on its event loop)."""

    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def check(self, key_id: str, rate_per_min: int) -> float | None:
        """Take one token; None when allowed, else the seconds until one is available."""
        now = self.clock()
        per_s = rate_per_min / 60.0
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(tokens=float(rate_per_min), updated=now)
        else:
            bucket.tokens = min(float(rate_per_min), bucket.tokens + (now - bucket.updated) * per_s)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / per_s


class Authenticator:
    """Turns request headers into a Principal, checks scopes and rate limits.

    `keys=None` means no authentication (`--no-auth`): every request is the
    anonymous principal, which holds every scope and has no rate limit.
    """

    def __init__(
        self,
        keys: KeyLookup | None,
        *,
        limiter: Limiter | None = None,
        storage_wait_s: float | None = None,
    ) -> None:
        self.keys = keys
        self.limiter: Limiter = limiter or RateLimiter()
        self.storage_wait_s = storage_wait_s
        """None: the key store and limiter are local (called on the event loop); else
        they are in a shared database: called from a worker thread, and a call still
        unanswered after this many seconds fails with StorageUnavailableError."""

    @property
    def enabled(self) -> bool:
        return self.keys is not None

    async def authenticate(
        self, authorization: str | None, api_key: str | None = None
    ) -> Principal:
        """The principal for the given header values, or AuthError(401)."""
        if self.keys is None:
            return ANONYMOUS
        key = _bearer(authorization) or (api_key.strip() if api_key else None)
        if not key:
            raise AuthError(
                401,
                "no API key: send it as 'Authorization: Bearer <key>' "
                "(create one with `pilothouse keys create --scope ...`)",
                type="invalid_request_error",
                code="missing_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        key_hash = hash_key(key)
        if self.keys.is_cached(key_hash):  # most requests: memory, no thread hop
            principal = self.keys.principal_for_hash(key_hash)
        else:
            principal = await self._stored(self.keys.principal_for_hash, key_hash)
        if principal is None:
            raise AuthError(
                401,
                "the API key is not valid (unknown or revoked)",
                type="invalid_request_error",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return principal

    async def authorize(self, principal: Principal, scope: str) -> None:
        """AuthError(403) unless the principal holds `scope`; AuthError(429) when the
        key is over its rate limit (the request counts against the limit)."""
        if not principal.allows(scope):
            raise AuthError(
                403,
                f"this API key lacks the scope '{scope}' "
                f"(it has: {', '.join(sorted(principal.scopes)) or 'none'})",
                type="permission_error",
                code="insufficient_scope",
            )
        await self.limit(principal)

    async def limit(self, principal: Principal) -> None:
        """AuthError(429) when the key is over its rate limit; the request counts."""
        if principal.rate_per_min is not None and principal.key_id is not None:
            wait = await self._stored(self.limiter.check, principal.key_id, principal.rate_per_min)
            if wait is not None:
                seconds = max(1, math.ceil(wait))
                raise AuthError(
                    429,
                    f"rate limit of {principal.rate_per_min} requests per minute reached "
                    f"for key '{principal.name}'; retry in {seconds} s",
                    type="rate_limit_error",
                    code="rate_limit_exceeded",
                    headers={"Retry-After": str(seconds)},
                )

    async def check(
        self, authorization: str | None, scope: str, *, api_key: str | None = None
    ) -> Principal:
        """authenticate + authorize in one call."""
        principal = await self.authenticate(authorization, api_key)
        await self.authorize(principal, scope)
        return principal

    async def _stored(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)` on the key store or limiter: on the loop when they are local,
        else in a worker thread, waiting at most `storage_wait_s`."""
        if self.storage_wait_s is None:
            return call(*args)
        try:
            return await asyncio.wait_for(asyncio.to_thread(call, *args), self.storage_wait_s)
        except TimeoutError:
            raise StorageUnavailableError(
                f"the shared database did not answer within {self.storage_wait_s:g} s "
                "(API key or rate limit); nothing was changed; retry in a moment"
            ) from None


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def authenticator_of(request: Request) -> Authenticator:
    """The server's Authenticator: from lifespan state, else `app.state`."""
    state = request.scope.get("state") or {}
    auth = state.get(AUTH_STATE_KEY)
    if auth is None:
        auth = getattr(request.app.state, AUTH_STATE_KEY, None)
    if not isinstance(auth, Authenticator):
        raise RuntimeError(
            "no Authenticator on this app: build the app with pilothouse.server.create_app"
        )
    return auth


def require_scope(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the authenticated Principal holding `scope`, or a
    401/403/429 AuthError. Use as `Depends(require_scope("admin"))`."""

    async def dependency(request: Request) -> Principal:
        auth = authenticator_of(request)
        principal = await auth.check(
            request.headers.get("authorization"),
            scope,
            api_key=request.headers.get("x-api-key"),
        )
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_scope_{scope.replace(':', '_').replace('*', 'any')}"
    return dependency


async def require_key(request: Request) -> Principal:
    """A FastAPI dependency: the authenticated Principal, whatever its scopes (the
    route decides what it may see), or a 401/429 AuthError."""
    auth = authenticator_of(request)
    principal = await auth.authenticate(
        request.headers.get("authorization"), request.headers.get("x-api-key")
    )
    await auth.limit(principal)
    request.state.principal = principal
    return principal


def principal_of(request: Request) -> Principal:
    """The Principal a `require_scope`/`require_key` dependency put on the request."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise RuntimeError("no principal on this request: the route needs an auth dependency")
    return principal
