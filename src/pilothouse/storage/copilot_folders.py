"""Copilot folders published for other replicas: the `copilot_folders` kind of state.

A copilot created, replaced, edited or deleted through the management API is written to
the data directory of the replica that took the request. With a shared store
(PostgreSQL) that replica also publishes the folder: a zip archive with its SHA-256
checksum, or a deletion mark, under a version number that grows with every publication
(one order for all copilots). The other replicas poll `latest_version()` and fetch the
`changes(since)` they have not applied (server/management/replication.py).

The interface (`CopilotFolderStore`, synchronous: called from worker threads) and the
sqlite backend's store, `MemoryCopilotFolders`: one process on one machine has no one
to publish to, so it keeps the records in memory only (the conformance suite's
unshared checks run on it; the server does not use it). The PostgreSQL store is in
copilot_folders_postgres.py.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pilothouse.config import Settings
from pilothouse.errors import PilothouseError


class FolderExistsError(PilothouseError):
    """`publish(..., new=True)` for a name that another replica published already."""


@dataclass(frozen=True, slots=True)
class FolderRecord:
    """One publication: a copilot's folder as a zip archive, or its deletion."""

    name: str
    version: int
    checksum: str
    """Hex SHA-256 of `archive` ("" for a deletion)."""
    deleted: bool
    archive: bytes = b""


def checksum(archive: bytes) -> str:
    return hashlib.sha256(archive).hexdigest()


class CopilotFolderStore(Protocol):
    """What replicas share about managed copilot folders (see the module docstring)."""

    def publish(self, name: str, archive: bytes, *, new: bool = False) -> FolderRecord:
        """Record `archive` as copilot `name`'s folder under the next version. `new`:
        FolderExistsError when `name` is published and not deleted."""
        ...

    def delete(self, name: str) -> FolderRecord:
        """Record that copilot `name` was deleted, under the next version."""
        ...

    def latest_version(self) -> int:
        """The highest version published (0 when none): a cheap question to poll."""
        ...

    def changes(self, since: int) -> list[FolderRecord]:
        """The latest record of each copilot changed after version `since`, oldest first."""
        ...

    def close(self) -> None: ...


class MemoryCopilotFolders:
    """Records in this process's memory (the sqlite backend's store)."""

    def __init__(self) -> None:
        self._records: dict[str, FolderRecord] = {}
        self._version = 0
        self._lock = threading.Lock()

    def publish(self, name: str, archive: bytes, *, new: bool = False) -> FolderRecord:
        with self._lock:
            current = self._records.get(name)
            if new and current is not None and not current.deleted:
                raise FolderExistsError(f"copilot {name!r} is published already")
            return self._put(FolderRecord(name, 0, checksum(archive), False, archive))

    def delete(self, name: str) -> FolderRecord:
        with self._lock:
            return self._put(FolderRecord(name, 0, "", True))

    def _put(self, record: FolderRecord) -> FolderRecord:
        self._version += 1
        stored = FolderRecord(
            record.name, self._version, record.checksum, record.deleted, record.archive
        )
        self._records[record.name] = stored
        return stored

    def latest_version(self) -> int:
        return self._version

    def changes(self, since: int) -> list[FolderRecord]:
        with self._lock:
            found = [r for r in self._records.values() if r.version > since]
        return sorted(found, key=lambda r: r.version)

    def close(self) -> None:
        """Nothing to close."""


def open_memory_store(path: Path, settings: Settings) -> MemoryCopilotFolders:
    """The sqlite backend's factory for `copilot_folders` (storage/backends.py)."""
    del path, settings
    return MemoryCopilotFolders()
