"""Copilot folders published in PostgreSQL, for every replica (copilot_folders.py).

One row per copilot: its latest archive (or deletion mark), checksum and version.
Publications take a transaction-level advisory lock, so they commit one at a time in
version order: a replica that has seen version N has seen every version below it, and
polling `max(version)` (an index lookup) is all it takes to know whether anything
changed. A publication waits for that lock at most the database's `wait_s`, then fails
with `StorageUnavailableError` (the management API then undoes its change: a 503).
"""

from __future__ import annotations

from pilothouse.config import Settings
from pilothouse.storage.copilot_folders import FolderExistsError, FolderRecord, checksum
from pilothouse.storage.postgres import PostgresDatabase

COMPONENT = "copilot_folders"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE copilot_folders (
        name       TEXT PRIMARY KEY,
        version    BIGINT NOT NULL UNIQUE,
        checksum   TEXT NOT NULL,
        deleted    BOOLEAN NOT NULL,
        archive    BYTEA NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
    )
    """,
)
PUBLISH_LOCK = 0x70696C66  # "pilf": publications one at a time, in version order
_UPSERT = (
    "INSERT INTO copilot_folders AS f (name, version, checksum, deleted, archive) "
    "VALUES (%s, (SELECT COALESCE(MAX(version), 0) + 1 FROM copilot_folders), %s, %s, %s) "
    "ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, "
    "checksum = EXCLUDED.checksum, deleted = EXCLUDED.deleted, archive = EXCLUDED.archive, "
    "updated_at = clock_timestamp() "
    "RETURNING version"
)


class PostgresCopilotFolders:
    """Published copilot folders in PostgreSQL (see the module docstring)."""

    def __init__(self, database: PostgresDatabase) -> None:
        self.database = database
        database.migrate(COMPONENT, MIGRATIONS)

    def publish(self, name: str, archive: bytes, *, new: bool = False) -> FolderRecord:
        digest = checksum(archive)
        with self.database.bounded_transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (PUBLISH_LOCK,))
            if new:
                row = conn.execute(
                    "SELECT version FROM copilot_folders WHERE name = %s AND NOT deleted",
                    (name,),
                ).fetchone()
                if row is not None:
                    raise FolderExistsError(
                        f"copilot {name!r} was published already (version {row[0]}), by "
                        "this or another replica"
                    )
            row = conn.execute(_UPSERT, (name, digest, False, archive)).fetchone()
        assert row is not None
        return FolderRecord(name, int(row[0]), digest, False, archive)

    def delete(self, name: str) -> FolderRecord:
        with self.database.bounded_transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (PUBLISH_LOCK,))
            row = conn.execute(_UPSERT, (name, "", True, b"")).fetchone()
        assert row is not None
        return FolderRecord(name, int(row[0]), "", True)

    def latest_version(self) -> int:
        with self.database.bounded() as conn:
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM copilot_folders").fetchone()
        return int(row[0]) if row else 0

    def changes(self, since: int) -> list[FolderRecord]:
        with self.database.bounded() as conn:
            rows = conn.execute(
                "SELECT name, version, checksum, deleted, archive FROM copilot_folders "
                "WHERE version > %s ORDER BY version",
                (since,),
            ).fetchall()
        return [
            FolderRecord(str(name), int(version), str(digest), bool(deleted), bytes(archive))
            for name, version, digest, deleted, archive in rows
        ]

    def close(self) -> None:
        """Nothing to close: the connection pool belongs to the settings."""


def open_store(database: PostgresDatabase, settings: Settings) -> PostgresCopilotFolders:
    """The postgresql backend's factory for `copilot_folders` (storage/backends.py)."""
    del settings
    return PostgresCopilotFolders(database)
