"""SQLite connections and forward-only migrations, shared by every component that
keeps state in the data directory (knowledge, conversations, traces, ...).

- `connect(path)` opens a database in WAL mode with foreign keys on and a busy
  timeout, in autocommit mode: callers group writes with `transaction(conn)`.
- Each component owns an ordered list of SQL migrations. `migrate(conn, component,
  migrations)` applies those not yet applied, each in its own transaction, and records
  them in `schema_migrations(component, version)`. Migrations are never edited or
  removed once released; a change is a new migration at the end of the list.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, Self

from pilothouse.config import Settings
from pilothouse.errors import ConfigError
from pilothouse.storage.sql import Session

BUSY_TIMEOUT_MS = 10_000

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component  TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (component, version)
)
"""


def connect(path: Path | str, *, check_same_thread: bool = False) -> sqlite3.Connection:
    """Open (creating if needed) the database at `path`.

    WAL journal (readers do not block the writer), foreign keys enforced, a busy
    timeout instead of immediate "database is locked" errors, and autocommit mode so
    that transactions are explicit (see `transaction`).
    """
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(
            str(path),
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=check_same_thread,
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as exc:
        raise ConfigError(
            f"{path}: cannot open as an SQLite database ({exc}); move the file away "
            "or point the data directory elsewhere"
        ) from None
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection, *, immediate: bool = True) -> Iterator[None]:
    """One atomic unit of work: everything inside commits together or not at all.

    `immediate` takes the write lock at the start, so two writers queue on the busy
    timeout instead of failing half-way.
    """
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def current_version(conn: sqlite3.Connection, component: str) -> int:
    """The highest migration applied for `component` (0 when none)."""
    conn.execute(_MIGRATIONS_TABLE)
    row = conn.execute(
        "SELECT MAX(version) FROM schema_migrations WHERE component = ?", (component,)
    ).fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, component: str, migrations: Sequence[str]) -> int:
    """Apply the migrations of `component` that are not applied yet; return the version.

    `migrations[0]` is version 1. Each migration runs in its own transaction with the
    row that records it, so a crash leaves the database at a whole version. A database
    newer than this code (a later version recorded) is refused rather than guessed at.
    """
    version = current_version(conn, component)
    if version > len(migrations):
        raise ConfigError(
            f"the {component} tables are at schema version {version}, newer than this "
            f"Pilothouse knows ({len(migrations)}); upgrade Pilothouse"
        )
    while version < len(migrations):
        number, sql = version + 1, migrations[version]
        # executescript would commit a pending transaction first, so the BEGIN and the
        # COMMIT are part of the script itself; on error the transaction is rolled back.
        script = (
            "BEGIN IMMEDIATE;\n"
            f"{sql.strip().rstrip(';')};\n"
            f"INSERT INTO schema_migrations (component, version) VALUES ('{_quote(component)}', "
            f"{number});\n"
            "COMMIT;"
        )
        try:
            conn.executescript(script)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            # Another connection applied it while this one waited for the write lock
            # (its recorded version is the primary key, so nothing was applied twice).
            applied = current_version(conn, component)
            if applied >= number:
                version = applied
                continue
            raise ConfigError(
                f"migration {number} of {component} failed ({exc}); the database is left "
                f"at version {number - 1}"
            ) from None
        version = number
    return version


def _quote(text: str) -> str:
    return text.replace("'", "''")


class MigratedStore:
    """A store over one connection to a database, its component's tables migrated on
    opening; thread-safe through `_lock`. Subclasses set `COMPONENT` and `MIGRATIONS`."""

    COMPONENT: ClassVar[str]
    MIGRATIONS: ClassVar[Sequence[str]]

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = connect(self.path, check_same_thread=False)
        try:
            migrate(self._conn, self.COMPONENT, self.MIGRATIONS)
        except BaseException:
            self._conn.close()
            raise

    @classmethod
    def for_settings(cls, settings: Settings) -> Self:
        """The store in the data directory's database (`<home>/pilothouse.db`)."""
        return cls(settings.database_path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _session(self, *, write: bool = False) -> Iterator[Session]:
        """The connection, under the lock; `write`: inside one transaction (the shared
        statements of storage/sql.py run on it)."""
        with self._lock:
            if not write:
                yield self._conn
                return
            with transaction(self._conn):
                yield self._conn

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
