"""API keys, stored hashed in the data directory's database.

A key is `ph-` followed by 43 URL-safe characters (256 random bits). Only its SHA-256
is stored, with a short public id, a name, its scopes and an optional rate limit; the
key itself is shown once, when created, and never stored, logged or listed.

The server looks keys up by hash on every request. Lookups are served from memory and
the cache is dropped whenever the database changed (SQLite's `data_version`), so a
key revoked with `pilothouse keys revoke` in another process stops working on the
next request (within half a second).
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from pilothouse.config import Settings
from pilothouse.errors import ConfigError, NotFoundError
from pilothouse.server.auth import (
    ADMIN,
    APPROVE_ANY,
    CHAT_ANY,
    COPILOTS_WRITE,
    MODELS,
    PROMOTE_ANY,
    Principal,
    RateLimiter,
    hash_key,
)
from pilothouse.storage.sqlite import connect, migrate, transaction

COMPONENT = "server_keys"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE api_keys (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        key_hash     TEXT NOT NULL UNIQUE,
        scopes       TEXT NOT NULL,
        rate_per_min INTEGER,
        created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        revoked_at   TEXT
    )
    """,
)

KEY_PREFIX = "ph-"
_SCOPE = re.compile(
    r"^(admin|models|copilots:write|(chat|approve|promote):(\*|[a-z0-9][a-z0-9_-]{0,62}))$"
)
_RATE = re.compile(r"^\s*(\d+)\s*(?:/\s*(min|minute|m|s|sec|second|h|hour))?\s*$")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What is stored about a key (never the key)."""

    id: str
    name: str
    scopes: tuple[str, ...]
    rate_per_min: int | None
    created_at: str
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def principal(self) -> Principal:
        return Principal(self.id, self.name, frozenset(self.scopes), self.rate_per_min)


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The scopes, validated and de-duplicated, or ConfigError naming the bad one."""
    if not scopes:
        raise ConfigError(
            f"a key needs at least one scope: {ADMIN}, {MODELS}, {CHAT_ANY}, chat:<copilot>, "
            f"{APPROVE_ANY}, approve:<copilot>, {PROMOTE_ANY}, promote:<copilot> or "
            f"{COPILOTS_WRITE}"
        )
    out: list[str] = []
    for scope in scopes:
        scope = scope.strip()
        if not _SCOPE.match(scope):
            raise ConfigError(
                f"unknown scope {scope!r}: use {ADMIN} (management API and everything), "
                f"{MODELS} (raw models and gateway routes), {CHAT_ANY} (every copilot), "
                f"chat:<copilot-name>, {APPROVE_ANY} or approve:<copilot-name> (decide "
                f"paused tool calls), {PROMOTE_ANY} or promote:<copilot-name> (start, approve "
                f"and abort promotions), {COPILOTS_WRITE} (upload copilots)"
            )
        if scope not in out:
            out.append(scope)
    return tuple(out)


def parse_rate(text: str | None) -> int | None:
    """`"60/min"`, `"2/s"`, `"1000/hour"` or `"60"` (per minute) as requests per minute."""
    if text is None or not text.strip():
        return None
    match = _RATE.match(text.lower())
    if not match:
        raise ConfigError(f"rate {text!r}: write it as N/min (for example 60/min), N/s or N/hour")
    count = int(match.group(1))
    unit = match.group(2) or "min"
    per_min = count * 60 if unit in ("s", "sec", "second") else count
    if unit in ("h", "hour"):
        per_min = max(1, count // 60)
    if per_min < 1:
        raise ConfigError(f"rate {text!r}: must allow at least one request per minute")
    return per_min


class KeyStore:
    """Create, list, revoke and look up keys in `path` (the data directory's database)."""

    recheck_s: float = 0.5
    """How often the server looks for key changes made by other processes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection = connect(path, check_same_thread=False)
        migrate(self._conn, COMPONENT, MIGRATIONS)
        self._cache: dict[str, Principal | None] = {}
        self._version = self._data_version()
        self._next_check = 0.0

    @classmethod
    def for_settings(cls, settings: Settings) -> KeyStore:
        """The key store of the settings' storage backend (the data directory's
        database, or the shared PostgreSQL one)."""
        from pilothouse.storage.backends import open_store

        store: KeyStore = open_store(settings, "keys")
        return store

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- managing ----------------------------------------------------------------------

    def create(
        self, name: str, scopes: list[str] | tuple[str, ...], *, rate_per_min: int | None = None
    ) -> tuple[str, KeyRecord]:
        """A new key: returns (the key, shown only now; its stored record)."""
        checked = check_scopes(scopes)
        if rate_per_min is not None and rate_per_min < 1:
            raise ConfigError("a rate limit must allow at least one request per minute")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(4)
        name = name.strip() or key_id
        with transaction(self._conn):
            self._conn.execute(
                "INSERT INTO api_keys (id, name, key_hash, scopes, rate_per_min)"
                " VALUES (?, ?, ?, ?, ?)",
                (key_id, name, hash_key(key), " ".join(checked), rate_per_min),
            )
        return key, self.get(key_id)

    def get(self, key_id: str) -> KeyRecord:
        row = self._conn.execute(_SELECT + " WHERE id = ?", (key_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no API key with id {key_id!r} (see `pilothouse keys list`)")
        return _record(row)

    def list(self, *, include_revoked: bool = False) -> list[KeyRecord]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        rows = self._conn.execute(_SELECT + where + " ORDER BY created_at, id").fetchall()
        return [_record(r) for r in rows]

    def revoke(self, id_or_name: str) -> KeyRecord:
        """Revoke the key with this id (or this name, when exactly one active key has
        it). NotFoundError when there is none."""
        with transaction(self._conn):
            rows = self._conn.execute(
                "SELECT id FROM api_keys WHERE revoked_at IS NULL AND (id = ? OR name = ?)",
                (id_or_name, id_or_name),
            ).fetchall()
            if len(rows) != 1:
                what = "no active API key" if not rows else "several active API keys"
                raise NotFoundError(
                    f"{what} with id or name {id_or_name!r}; revoke by id (`pilothouse keys list`)"
                )
            self._conn.execute(
                "UPDATE api_keys SET revoked_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
                " WHERE id = ?",
                (rows[0][0],),
            )
        self._cache.clear()
        return self.get(rows[0][0])

    def count_active(self) -> int:
        row = self._conn.execute("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")
        return int(row.fetchone()[0])

    # --- the hot path ------------------------------------------------------------------

    def principal_for_hash(self, key_hash: str) -> Principal | None:
        """The principal of an active key with this hash, or None. Changes made by
        other processes (a revocation) are seen within `recheck_s`."""
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self.recheck_s
            version = self._data_version()
            if version != self._version:
                self._cache.clear()
                self._version = version
        try:
            return self._cache[key_hash]
        except KeyError:
            pass
        principal = self._lookup(key_hash)
        if len(self._cache) > 10_000:  # unknown keys must not grow memory without bound
            self._cache.clear()
        self._cache[key_hash] = principal
        return principal

    def is_cached(self, key_hash: str) -> bool:
        """Whether `principal_for_hash` answers from memory now (no database read)."""
        return time.monotonic() < self._next_check and key_hash in self._cache

    def _lookup(self, key_hash: str) -> Principal | None:
        row = self._conn.execute(
            _SELECT + " WHERE key_hash = ? AND revoked_at IS NULL", (key_hash,)
        ).fetchone()
        return _record(row).principal() if row is not None else None

    def _data_version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])


_SELECT = "SELECT id, name, scopes, rate_per_min, created_at, revoked_at FROM api_keys"


def _record(row: tuple[object, ...]) -> KeyRecord:
    key_id, name, scopes, rate, created, revoked = row
    return KeyRecord(
        id=str(key_id),
        name=str(name),
        scopes=tuple(str(scopes).split()),
        rate_per_min=int(rate) if isinstance(rate, int) else None,
        created_at=str(created),
        revoked_at=str(revoked) if revoked is not None else None,
    )


def open_sqlite_key_store(path: Path, settings: Settings) -> KeyStore:
    """The sqlite backend's factory for `keys` (storage/backends.py)."""
    del settings
    return KeyStore(path)


def open_memory_rate_limiter(path: Path, settings: Settings) -> RateLimiter:
    """The sqlite backend's factory for `rate_limits`: buckets in this process's memory
    (one server process on one machine; nothing on the request path touches disk)."""
    del path, settings
    return RateLimiter()
