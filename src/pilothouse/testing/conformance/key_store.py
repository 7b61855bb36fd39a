"""The key-store and rate-limiter suites: what every store of server API keys does (the
SQLite `KeyStore`, the PostgreSQL one), and what every rate-limit counter does (this
process's token buckets, the PostgreSQL ones every replica shares).

Keys: a key is shown once and stored only as a hash; lookups find active keys only; a
revocation made through one store (another process, another replica) is seen by every
other within its `recheck_s`.

Rate limits: a key gets `rate` requests in a burst, then waits about 60/rate seconds;
buckets are per key; counters declared `shared` hold across limiters on one storage
(replicas) under concurrent requests: never more than the rate, never fewer.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any, Protocol

from pilothouse.errors import ConfigError, NotFoundError
from pilothouse.testing.conformance.stores import PERSISTENT, THREADS, StoreSubject
from pilothouse.testing.conformance.suite import Suite, expect

KEY_STORES: Suite[StoreSubject[Any]] = Suite(
    "key stores", "server API keys: stored hashed, looked up fast, revoked everywhere"
)
RATE_LIMITERS: Suite[StoreSubject[Any]] = Suite(
    "rate limiters", "per-key token buckets: the rate holds, across replicas where shared"
)

SHARED = "shared"
"""A rate limiter capability: limiters opened on one storage share their counters."""


class Limiter(Protocol):
    """A rate limiter as the server's authenticator uses it (server/auth.py)."""

    def check(self, key_id: str, rate_per_min: int) -> float | None: ...


Subject = StoreSubject[Any]  # a key store (server/keys.py: KeyStore and its subclasses)


def hash_key(key: str) -> str:
    """How every key store keeps a key: hex SHA-256 of its UTF-8 bytes (one scheme for
    all backends, so `pilothouse storage copy` moves keys that still work)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@KEY_STORES.check()
async def check_a_key_is_stored_hashed_and_found(subject: Subject) -> None:
    """`create` returns the key once; the store finds its principal by the key's hash,
    lists and gets its record, and never holds the key itself."""
    with subject.opened() as store:
        key, record = store.create("ci bot", ["chat:helpdesk", "models"], rate_per_min=30)
        assert key.startswith("ph-") and len(key) > 40, key
        assert record.name == "ci bot" and record.scopes == ("chat:helpdesk", "models")
        assert record.rate_per_min == 30 and record.active
        principal = store.principal_for_hash(hash_key(key))
        assert principal is not None and principal.key_id == record.id
        assert principal.allows("chat:helpdesk") and not principal.allows("admin")
        assert store.principal_for_hash(hash_key(key + "x")) is None
        assert store.get(record.id) == record
        assert [r.id for r in store.list()] == [record.id]
        assert store.count_active() == 1
        assert key not in repr(store.list())


@KEY_STORES.check()
async def check_a_revoked_key_stops_working(subject: Subject) -> None:
    """Revoking (by id or by name) ends lookups at once in the store that revoked;
    the record stays, listed with revoked keys only."""
    with subject.opened() as store:
        key, record = store.create("temp", ["admin"])
        other_key, other = store.create("keeper", ["models"])
        assert store.principal_for_hash(hash_key(key)) is not None
        revoked = store.revoke("temp")
        assert revoked.id == record.id and not revoked.active
        assert store.principal_for_hash(hash_key(key)) is None
        assert [r.id for r in store.list()] == [other.id]
        assert {r.id for r in store.list(include_revoked=True)} == {record.id, other.id}
        assert store.count_active() == 1
        assert store.principal_for_hash(hash_key(other_key)) is not None
        with expect(NotFoundError, match="no active API key"):
            store.revoke("temp")


@KEY_STORES.check()
async def check_bad_keys_are_refused(subject: Subject) -> None:
    """Unknown scopes, a zero rate and unknown ids are refused with what to do."""
    with subject.opened() as store:
        with expect(ConfigError, match="unknown scope 'root'"):
            store.create("x", ["root"])
        with expect(ConfigError, match="at least one request per minute"):
            store.create("x", ["admin"], rate_per_min=0)
        with expect(NotFoundError, match="keys list"):
            store.get("key_nope")
        assert store.count_active() == 0


@KEY_STORES.check(PERSISTENT)
async def check_a_revocation_is_seen_by_other_stores(subject: Subject) -> None:
    """A key made through one store works through another opened on the same storage
    (another process, another replica); revoked through the first, the second stops
    accepting it within its `recheck_s`."""
    with subject.opened() as first, subject.opened() as second:
        key, record = first.create("shared", ["chat:*"])
        second.recheck_s = 0.0  # look for changes on every lookup
        assert second.principal_for_hash(hash_key(key)) is not None  # now cached
        first.revoke(record.id)
        assert second.principal_for_hash(hash_key(key)) is None
    with subject.opened() as again:
        assert again.get(record.id).revoked_at is not None


# --- rate limiters -----------------------------------------------------------------------


@RATE_LIMITERS.check()
async def check_a_burst_is_cut_at_the_rate(subject: StoreSubject[Limiter]) -> None:
    """A key gets `rate` requests at once, then waits at most 60/rate seconds; another
    key has its own bucket."""
    with subject.opened() as limiter:
        allowed = [limiter.check("key_a", 5) for _ in range(7)]
        assert allowed[:5] == [None] * 5, allowed
        wait = allowed[5]
        assert wait is not None and 0 < wait <= 12.0, wait
        assert allowed[6] is not None
        assert limiter.check("key_b", 5) is None


@RATE_LIMITERS.check()
async def check_tokens_come_back(subject: StoreSubject[Limiter]) -> None:
    """After the burst, tokens come back at the rate: at 600/min one is back after
    a short pause."""
    with subject.opened() as limiter:
        for _ in range(2000):
            if limiter.check("key_fast", 600) is not None:
                break
        else:
            raise AssertionError("600/min allowed 2,000 requests at once")
        await asyncio.sleep(0.25)  # 10 tokens a second: at least two are back
        assert limiter.check("key_fast", 600) is None


@RATE_LIMITERS.check(THREADS, SHARED)
async def check_replicas_share_the_rate(subject: StoreSubject[Limiter]) -> None:
    """Limiters opened on one storage (two replicas) taking tokens for one key from
    many threads at once: exactly `rate` requests pass, whichever replica served them."""
    with subject.opened() as first, subject.opened() as second:
        limiters = [first, second] * 20

        def take(limiter: Limiter) -> bool:
            return limiter.check("key_shared", 10) is None

        results = await asyncio.gather(*(asyncio.to_thread(take, lim) for lim in limiters))
        assert sum(results) == 10, f"{sum(results)} of 40 requests passed a 10/min limit"
