"""API keys and their rate-limit counters in PostgreSQL, shared by every replica.

Keys: the key store's interface (`KeyStore`) over PostgreSQL. Every change (create,
revoke) bumps a version row in the same transaction; each replica serves lookups from
memory and drops its cache when it sees a new version (looked at every `recheck_s`),
so a key revoked through one replica stops working on all within half a second.

Rate limits: one token bucket per key in `rate_buckets`, taken in one statement
(`INSERT ... ON CONFLICT DO UPDATE`, which locks the key's row), with the database's
clock: requests from any number of replicas at once take tokens one at a time, never
more than the key's rate, whatever the replicas' own clocks say. A row locked for
longer than the database's `wait_s` (another connection holding it, a stuck
transaction) makes that one call fail with `StorageUnavailableError` instead of
waiting without end; the server calls it from a worker thread (server/auth.py).
"""

from __future__ import annotations

import secrets

from pilothouse.config import Settings
from pilothouse.errors import ConfigError, NotFoundError, StorageUnavailableError
from pilothouse.server.auth import Principal, hash_key
from pilothouse.server.keys import _SELECT, KEY_PREFIX, KeyRecord, KeyStore, _record, check_scopes
from pilothouse.storage.postgres import PostgresDatabase

COMPONENT = "server_keys"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE api_keys (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        key_hash     TEXT NOT NULL UNIQUE,
        scopes       TEXT NOT NULL,
        rate_per_min INTEGER,
        created_at   TEXT NOT NULL
            DEFAULT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        revoked_at   TEXT
    );
    CREATE TABLE api_keys_version (
        one     BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        version BIGINT NOT NULL
    );
    INSERT INTO api_keys_version (version) VALUES (1);
    CREATE TABLE rate_buckets (
        key_id  TEXT PRIMARY KEY,
        tokens  DOUBLE PRECISION NOT NULL,
        updated DOUBLE PRECISION NOT NULL,
        granted BOOLEAN NOT NULL
    )
    """,
)
_NOW_UTC = "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
_BUMP = "UPDATE api_keys_version SET version = version + 1"


class PostgresKeyStore(KeyStore):
    """Keys in PostgreSQL (see the module docstring)."""

    def __init__(self, database: PostgresDatabase) -> None:
        self.path = database.display  # type: ignore[assignment]  # named in messages
        self.database = database
        database.migrate(COMPONENT, MIGRATIONS)
        self._cache = {}
        self._version = self._data_version()
        self._next_check = 0.0

    def close(self) -> None:
        """Nothing to close: the connection pool belongs to the settings."""

    def create(
        self, name: str, scopes: list[str] | tuple[str, ...], *, rate_per_min: int | None = None
    ) -> tuple[str, KeyRecord]:
        checked = check_scopes(scopes)
        if rate_per_min is not None and rate_per_min < 1:
            raise ConfigError("a rate limit must allow at least one request per minute")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(4)
        name = name.strip() or key_id
        with self.database.transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys (id, name, key_hash, scopes, rate_per_min) "
                "VALUES (%s, %s, %s, %s, %s)",
                (key_id, name, hash_key(key), " ".join(checked), rate_per_min),
            )
            conn.execute(_BUMP)
        return key, self.get(key_id)

    def get(self, key_id: str) -> KeyRecord:
        with self.database.connection() as conn:
            row = conn.execute(_SELECT + " WHERE id = %s", (key_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no API key with id {key_id!r} (see `pilothouse keys list`)")
        return _record(tuple(row))

    def list(self, *, include_revoked: bool = False) -> list[KeyRecord]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        with self.database.connection() as conn:
            rows = conn.execute(_SELECT + where + " ORDER BY created_at, id").fetchall()
        return [_record(tuple(r)) for r in rows]

    def revoke(self, id_or_name: str) -> KeyRecord:
        with self.database.transaction() as conn:
            rows = conn.execute(
                "SELECT id FROM api_keys WHERE revoked_at IS NULL AND (id = %s OR name = %s) "
                "FOR UPDATE",
                (id_or_name, id_or_name),
            ).fetchall()
            if len(rows) != 1:
                what = "no active API key" if not rows else "several active API keys"
                raise NotFoundError(
                    f"{what} with id or name {id_or_name!r}; revoke by id (`pilothouse keys list`)"
                )
            conn.execute(
                f"UPDATE api_keys SET revoked_at = {_NOW_UTC} WHERE id = %s", (rows[0][0],)
            )
            conn.execute(_BUMP)
        self._cache.clear()
        return self.get(rows[0][0])

    def count_active(self) -> int:
        with self.database.connection() as conn:
            row = conn.execute("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()
        return int(row[0]) if row else 0

    def _lookup(self, key_hash: str) -> Principal | None:
        with self.database.bounded() as conn:
            row = conn.execute(
                _SELECT + " WHERE key_hash = %s AND revoked_at IS NULL", (key_hash,)
            ).fetchone()
        return _record(tuple(row)).principal() if row is not None else None

    def _data_version(self) -> int:
        """The keys' version; while the database cannot be reached, the one last seen
        (keys already looked up keep working through an outage; new ones wait)."""
        try:
            with self.database.bounded() as conn:
                row = conn.execute("SELECT version FROM api_keys_version").fetchone()
        except StorageUnavailableError:
            return getattr(self, "_version", 0)
        return int(row[0]) if row else 0


class PostgresRateLimiter:
    """Token buckets per key in PostgreSQL: `rate` requests per minute, bursts up to
    `rate`, shared by every replica (see the module docstring)."""

    def __init__(self, database: PostgresDatabase) -> None:
        self.database = database
        database.migrate(COMPONENT, MIGRATIONS)

    def check(self, key_id: str, rate_per_min: int) -> float | None:
        """Take one token; None when allowed, else the seconds until one is available."""
        capacity = float(rate_per_min)
        per_s = rate_per_min / 60.0
        refill = "LEAST(%(cap)s, b.tokens + GREATEST(0, EXCLUDED.updated - b.updated) * %(per_s)s)"
        with self.database.bounded() as conn:
            row = conn.execute(
                "INSERT INTO rate_buckets AS b (key_id, tokens, updated, granted) "
                "VALUES (%(key)s, %(cap)s - 1, extract(epoch FROM clock_timestamp()), TRUE) "
                "ON CONFLICT (key_id) DO UPDATE SET "
                f"tokens = CASE WHEN {refill} >= 1 THEN {refill} - 1 ELSE {refill} END, "
                f"granted = {refill} >= 1, updated = EXCLUDED.updated "
                "RETURNING tokens, granted",
                {"key": key_id, "cap": capacity, "per_s": per_s},
            ).fetchone()
        if row is None or row[1]:
            return None
        return (1.0 - float(row[0])) / per_s


def open_key_store(database: PostgresDatabase, settings: Settings) -> PostgresKeyStore:
    """The postgresql backend's factory for `keys` (storage/backends.py)."""
    del settings
    return PostgresKeyStore(database)


def open_rate_limiter(database: PostgresDatabase, settings: Settings) -> PostgresRateLimiter:
    """The postgresql backend's factory for `rate_limits` (storage/backends.py)."""
    del settings
    return PostgresRateLimiter(database)
