"""Managed copilots shared by replicas: what one replica's management API changes, the
others serve, without a restart.

With a shared store (PostgreSQL), every create, replace, file edit and delete of a
managed copilot is published in the `copilot_folders` store once it is done here
(storage/copilot_folders.py): the folder as a deterministic zip archive, or a deletion
mark. Every replica asks the store for its latest version every `poll_s` (one index
lookup) and applies what it has not: a folder is unpacked beside `<data
dir>/copilots/<name>/` with the limits of an upload, moved in (the folder there moved
aside, and put back if the new one does not open) and opened, replacing the served
copilot; a deletion stops serving it and removes its folder. A copilot is opened as an
upload is, under this replica's own code policy (upload_policy.py): a replica without
`--allow-code-upload` serves no copilot that brings code, whoever published it (it logs
why and keeps what it served).

Each replica remembers, per copilot, the version it serves; its own publications are
not applied again, and a folder whose archive is identical to what it holds (after a
restart) is not replaced. At start-up, managed copilots the store has never heard of
(made before the data directory's server used the shared store) are published.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import secrets
import shutil
import stat
import zipfile
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from pilothouse.copilot.definition import DEFINITION_FILE, load_definition
from pilothouse.errors import PilothouseError
from pilothouse.server.context import ServerContext
from pilothouse.server.management.copilots import put_in_place, remove_managed
from pilothouse.server.management.staging import STAGING
from pilothouse.server.management.state import ManagementState, copilots_dir, is_managed
from pilothouse.server.management.uploads import unpack_zip
from pilothouse.storage.copilot_folders import (
    CopilotFolderStore,
    FolderExistsError,
    FolderRecord,
    checksum,
)

log = logging.getLogger(__name__)

POLL_S = 1.0
_EPOCH = (1980, 1, 1, 0, 0, 0)


def pack_folder(folder: Path) -> bytes:
    """The files of `folder` as a zip archive that depends on their paths and bytes
    only (sorted, fixed times and modes; `__pycache__` and links left out)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(names):
                path = Path(root, name)
                if path.is_symlink() or not path.is_file():
                    continue
                info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), _EPOCH)
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


@dataclass
class CopilotReplication:
    """Publishes this replica's managed-copilot changes and applies the others' (see
    the module docstring). `start()` applies what was published while this replica was
    away, then follows the store until `aclose()`."""

    context: ServerContext
    state: ManagementState
    store: CopilotFolderStore
    poll_s: float = POLL_S
    seen: int = 0
    """The highest version looked at."""
    served: dict[str, int] = field(default_factory=dict)
    """Per copilot, the version this replica serves (or deleted) from the store."""
    _task: asyncio.Task[None] | None = None

    # --- this replica's changes -----------------------------------------------------

    async def publish(self, name: str, folder: Path, *, new: bool) -> None:
        """Publish the folder of managed copilot `name` (the caller holds the copilot
        lock). FolderExistsError when `new` and another replica has the name."""
        archive = await asyncio.to_thread(pack_folder, folder)
        record = await asyncio.to_thread(self.store.publish, name, archive, new=new)
        self.served[name] = record.version

    async def unpublish(self, name: str) -> None:
        """Publish the deletion of managed copilot `name` (the caller holds the lock)."""
        record = await asyncio.to_thread(self.store.delete, name)
        self.served[name] = record.version

    async def _publish_unknown(self) -> None:
        """Publish the managed copilots served here whose names the store has never
        seen (made before this data directory's server used the shared store), so the
        other replicas serve them too; a name another replica published first is left
        to it."""
        for copilot in self.context.copilots.all():
            name = copilot.name
            if name in self.served or not is_managed(self.state.settings, copilot.folder):
                continue
            async with self.state.copilot_lock:
                try:
                    await self.publish(name, copilot.folder, new=True)
                except FolderExistsError:
                    continue
            log.info("replication: published copilot %s, served here before", name)

    # --- the others' ----------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self.sync()
            await self._publish_unknown()
        except Exception as exc:  # the store is down: serve what is here, follow later
            log.warning("applying the published copilots failed: %s", exc)
        self._task = asyncio.create_task(self._follow(), name="copilot-replication")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self.sync()
            except Exception as exc:  # the store is down: try again next time
                log.warning("following the published copilots failed: %s", exc)

    async def sync(self) -> list[str]:
        """Apply the publications newer than `seen`; returns what was done."""
        latest = await asyncio.to_thread(self.store.latest_version)
        if latest <= self.seen:
            return []
        done: list[str] = []
        for record in await asyncio.to_thread(self.store.changes, self.seen):
            async with self.state.copilot_lock:
                if record.version > self.served.get(record.name, 0):
                    line = await self._apply(record)
                    if line:
                        log.info("replication: %s", line)
                        done.append(line)
            self.seen = max(self.seen, record.version)
        return done

    async def _apply(self, record: FolderRecord) -> str | None:
        name = record.name
        current = self.context.copilots.get(name)
        if current is not None and not is_managed(self.state.settings, current.folder):
            log.warning(
                "replication: copilot %s is served from %s here, not from the data "
                "directory; version %d published by another replica is not applied",
                name,
                current.folder,
                record.version,
            )
            self.served[name] = record.version
            return None
        folder = copilots_dir(self.state.settings) / name
        if record.deleted:
            self.served[name] = record.version
            if current is None and not folder.exists():
                return None
            await remove_managed(self.context, self.state, name)
            return f"copilot {name} deleted (version {record.version})"
        if folder.is_dir() and current is not None:
            here = await asyncio.to_thread(pack_folder, folder)
            if checksum(here) == record.checksum:
                self.served[name] = record.version
                return None
        try:
            await self._put_in_place(record)
        except PilothouseError as exc:
            log.error(
                "replication: copilot %s version %d is not served here: %s",
                name,
                record.version,
                exc,
            )
            self.served[name] = record.version
            return None
        self.served[name] = record.version
        return f"copilot {name} now at version {record.version}"

    async def _put_in_place(self, record: FolderRecord) -> None:
        root = copilots_dir(self.state.settings) / STAGING
        staging = root / secrets.token_hex(8)
        try:
            await asyncio.to_thread(self._unpack, record, staging)
            definition, _ = await asyncio.to_thread(load_definition, staging, uploaded=True)
            if definition.name != record.name:
                raise PilothouseError(
                    f"its copilot.yaml names the copilot {definition.name!r}, not {record.name!r}"
                )
            await put_in_place(self.context, self.state, record.name, staging)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)

    def _unpack(self, record: FolderRecord, staging: Path) -> None:
        if checksum(record.archive) != record.checksum:
            raise PilothouseError("its archive does not match its checksum")
        staging.mkdir(parents=True)
        try:
            unpack_zip(
                io.BytesIO(record.archive), staging, self.state.upload_limits, DEFINITION_FILE
            )
        except Exception as exc:  # the upload module's refusals are not PilothouseErrors
            raise PilothouseError(f"its archive does not unpack: {exc}") from None
