"""PostgreSQL: one connection pool per process and settings, transactions, and
forward-only numbered migrations (the same rules as SQLite's, storage/sqlite.py).

- `PostgresDatabase(url)` opens a psycopg 3 `ConnectionPool` (autocommit connections,
  each checked before it is handed out, so connections broken by a server restart are
  replaced instead of failing a request). `transaction()` is one atomic unit of work.
- Errors of the server's reach (down, restarting, unreachable) become
  `StorageUnavailableError` naming the server without its password; nothing of an
  interrupted transaction is kept (PostgreSQL rolls it back).
- `migrate(component, migrations)` applies each pending migration in its own
  transaction with the row that records it, under a transaction-level advisory lock,
  so replicas starting together apply each migration once, and a migration killed
  half-way (kill -9) leaves the database at the version before it: the next run
  applies it again from the start (PostgreSQL's DDL is transactional).

Stores use the synchronous pool from worker threads (`asyncio.to_thread`), as the
SQLite stores do: stores are shared by event loops that come and go (each CLI command's
`asyncio.run`), by the tracer's background thread and by request handlers, and one
thread pool serves them all; an asyncio pool is bound to the loop that opened it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from pilothouse.config import Settings
from pilothouse.errors import ConfigError, StorageUnavailableError
from pilothouse.storage.sql import QmarkSession, Session

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x70696C6F  # "pilo": the advisory lock every migration takes
INSTALL_HINT = "pip install 'pilothouse[postgresql]'"

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component  TEXT        NOT NULL,
    version    INTEGER     NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""


def display_url(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


class PostgresDatabase:
    """One PostgreSQL database: a pool of connections shared by this process's stores."""

    backend = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        max_size: int = 8,
        connect_timeout_s: float = 10.0,
        application_name: str = "pilothouse",
    ) -> None:
        try:
            import psycopg  # noqa: F401 - checked here to say how to install it
            import psycopg_pool  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"[storage] url is a PostgreSQL database, but psycopg is not installed: "
                f"{INSTALL_HINT}"
            ) from None
        self.url = url
        self.display = display_url(url)
        self._closed = False
        self._down_until = 0.0
        self._down_message = ""
        self.wait_s = min(connect_timeout_s, 5.0)
        """How long an operation waits for a connection (the pool is full, or the
        server is coming back) before it fails with `StorageUnavailableError`."""
        self.retry_s = 1.0
        """After a failure, how long operations fail at once before trying again."""
        self._migrated: set[str] = set()
        self._lock = threading.Lock()
        self._max_size = max_size
        self._connect_timeout_s = connect_timeout_s
        self._application_name = application_name
        self.pool = self._make_pool()
        self._bounded_pool: ConnectionPool[Any] | None = None
        try:
            self.pool.open(wait=True, timeout=connect_timeout_s)
        except Exception as exc:
            self.pool.close()
            raise StorageUnavailableError(
                f"cannot connect to PostgreSQL at {self.display} within {connect_timeout_s:g} s "
                f"({_first_line(exc)}); check [storage] url (or PILOTHOUSE_DATABASE_URL) and "
                "that the server is running"
            ) from None

    def _make_pool(self, statement_timeout_ms: int | None = None) -> ConnectionPool[Any]:
        from psycopg.conninfo import conninfo_to_dict
        from psycopg_pool import ConnectionPool

        kwargs: dict[str, Any] = {
            "autocommit": True,
            "application_name": self._application_name,
            "connect_timeout": max(1, int(self._connect_timeout_s)),
        }
        if statement_timeout_ms is not None:  # added to the URL's own options
            options = str(conninfo_to_dict(self.url).get("options") or "")
            kwargs["options"] = f"{options} -c statement_timeout={statement_timeout_ms}".strip()
        return ConnectionPool(
            self.url,
            min_size=1,
            max_size=self._max_size,
            kwargs=kwargs,
            check=ConnectionPool.check_connection,
            timeout=self._connect_timeout_s,
            # no background retry loop with growing delays: a caller that finds no
            # connection makes the pool try to connect again at once
            reconnect_timeout=0,
            open=False,
            name="pilothouse" if statement_timeout_ms is None else "pilothouse-bounded",
        )

    @classmethod
    def for_settings(cls, settings: Settings) -> PostgresDatabase:
        url = settings.storage_url
        if url is None:
            raise ConfigError("no PostgreSQL URL: set [storage] url or PILOTHOUSE_DATABASE_URL")
        return cls(
            url,
            max_size=settings.storage.pool_size,
            connect_timeout_s=settings.storage.connect_timeout_s,
        )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.pool.close()
            with self._lock:
                if self._bounded_pool is not None:
                    self._bounded_pool.close()

    def __repr__(self) -> str:
        return f"PostgresDatabase({self.display!r})"

    # --- connections and transactions -------------------------------------------------

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection in autocommit mode; server failures become
        `StorageUnavailableError`. Its statements have no time limit: for the work
        that may take long or must wait its turn (migrations, knowledge ingestion and
        its index, retention, the trace writer, `storage copy`); the request path's
        statements take `bounded()` connections."""
        with self._unavailable_as_error(), self._pooled() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection inside one transaction: committed when the block ends, rolled
        back when it raises."""
        with self._unavailable_as_error(), self._pooled() as conn, conn.transaction():
            yield conn

    @contextmanager
    def bounded(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (autocommit) whose statements each give up after
        `wait_s` (a row another connection holds locked, an overloaded server):
        `StorageUnavailableError` then, without marking the database down (it answered).
        For the short statements of the request path (every store's but knowledge's:
        keys, rate limits, conversations, paused runs, stored responses, promotions,
        eval runs, copilot folders, trace reads); its own pool, whose connections carry
        the time limit from their start (no extra round trip), opened on first use."""
        import psycopg

        with self._unavailable_as_error(), self._pooled(self._bounded()) as conn:
            try:
                yield conn
            except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable):
                raise StorageUnavailableError(
                    f"PostgreSQL at {self.display} did not answer within {self.wait_s:g} s "
                    "(a row locked by another connection, or a busy server); nothing was "
                    "changed by this operation; retry in a moment"
                ) from None

    @contextmanager
    def bounded_transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A `bounded()` connection inside one transaction (rolled back when it raises,
        a statement over its time limit included)."""
        with self.bounded() as conn, conn.transaction():
            yield conn

    def _bounded(self) -> ConnectionPool[Any]:
        with self._lock:
            if self._bounded_pool is None:
                pool = self._make_pool(max(1, round(self.wait_s * 1000)))
                pool.open(wait=False)
                self._bounded_pool = pool
            return self._bounded_pool

    @property
    def call_wait_s(self) -> float:
        """The longest one bounded call waits: for a connection (`_pooled` may try
        twice), then for its statements (`wait_s` each), with a second to spare.
        Request handlers give up on a call to this database after that."""
        return 3 * self.wait_s + 1.0

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[QmarkSession]:
        """A bounded connection (`bounded()`) taking the `?` placeholders of statements
        shared with SQLite (storage/sql.py); `write`: inside one transaction."""
        with self.bounded_transaction() if write else self.bounded() as conn:
            yield QmarkSession(conn)

    @contextmanager
    def _pooled(self, pool: ConnectionPool[Any] | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A connection from the pool. While the server is known to be down (a failure
        less than `retry_s` ago) callers fail at once instead of each waiting for the
        pool: request handlers must not stall one after another during an outage."""
        from psycopg_pool import PoolTimeout

        pool = self.pool if pool is None else pool
        if time.monotonic() < self._down_until:
            raise StorageUnavailableError(self._down_message)
        try:
            conn = pool.getconn(timeout=min(2.0, self.wait_s))
        except PoolTimeout:
            # Every connection busy: wait for one. Fewer connections than the pool may
            # hold: the server is not letting new ones in (down): fail now.
            if pool.get_stats().get("pool_size", 0) < pool.max_size:
                raise
            conn = pool.getconn(timeout=self.wait_s)
        try:
            yield conn
        finally:
            pool.putconn(conn)

    @contextmanager
    def _unavailable_as_error(self) -> Iterator[None]:
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            yield
        except (psycopg.OperationalError, PoolTimeout) as exc:
            if isinstance(exc, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable):
                raise
            self._down_message = (
                f"PostgreSQL at {self.display} is unavailable ({_first_line(exc)}); nothing "
                "was changed by this operation; retry in a moment"
            )
            self._down_until = time.monotonic() + self.retry_s
            raise StorageUnavailableError(self._down_message) from None

    # --- migrations -----------------------------------------------------------------------

    def migrate(self, component: str, migrations: Sequence[str]) -> int:
        """Apply the migrations of `component` not applied yet; return the version.
        Done once per component and process (later calls return at once)."""
        with self._lock:
            if component in self._migrated:
                return len(migrations)
        version = migrate(self, component, migrations)
        with self._lock:
            self._migrated.add(component)
        return version


class PostgresStatements:
    """What a store running the statements it shares with SQLite (storage/sql.py) needs
    on PostgreSQL: its database's sessions. Mixed in before the SQLite store's class."""

    database: PostgresDatabase

    def _open(self, database: PostgresDatabase, component: str, migrations: Sequence[str]) -> None:
        self.database = database
        database.migrate(component, migrations)

    def close(self) -> None:
        """Nothing to close: the connection pool belongs to the settings."""

    @contextmanager
    def _session(self, *, write: bool = False) -> Iterator[Session]:
        with self.database.session(write=write) as session:
            yield session


def current_version(conn: psycopg.Connection[Any], component: str) -> int:
    row = conn.execute(
        "SELECT MAX(version) FROM schema_migrations WHERE component = %s", (component,)
    ).fetchone()
    return int(row[0] or 0) if row else 0


def migrate(database: PostgresDatabase, component: str, migrations: Sequence[str]) -> int:
    """Apply the pending migrations of `component` (see the module docstring)."""
    import psycopg

    with database.connection() as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(_MIGRATIONS_TABLE)
        version = current_version(conn, component)
    if version > len(migrations):
        raise ConfigError(
            f"the {component} tables in {database.display} are at schema version {version}, "
            f"newer than this Pilothouse knows ({len(migrations)}); upgrade Pilothouse"
        )
    while version < len(migrations):
        with database.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            version = current_version(conn, component)  # another replica may have moved on
            if version >= len(migrations):
                break
            number = version + 1
            try:
                conn.execute(migrations[number - 1])
            except psycopg.Error as exc:
                raise ConfigError(
                    f"migration {number} of {component} failed in {database.display} "
                    f"({_first_line(exc)}); the database is left at version {number - 1}"
                ) from None
            conn.execute(
                "INSERT INTO schema_migrations (component, version) VALUES (%s, %s)",
                (component, number),
            )
        log.info("%s: %s migrated to version %d", database.display, component, number)
        version = number
    return version


def knowledge_prefix(name: str) -> str:
    """The table-name prefix of the knowledge base `name` (`kb_` and a digest: any name
    makes a valid, fixed-length identifier)."""
    return "kb_" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def vector_literal(values: Iterable[float]) -> str:
    """pgvector's text form of a float32 vector, exact: `[0.1,0.2,...]` with the 9
    significant digits that give every float32 back unchanged."""
    return "[" + ",".join(f"{x:.9g}" for x in values) + "]"


def open_database(settings: Settings) -> PostgresDatabase:
    """The `open` of the postgresql backend (see storage/backends.py)."""
    return PostgresDatabase.for_settings(settings)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
