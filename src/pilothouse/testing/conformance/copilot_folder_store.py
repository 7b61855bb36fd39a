"""The copilot-folder suite: what every store of published copilot folders does (the
sqlite backend's in-memory one, the PostgreSQL one every replica shares;
storage/copilot_folders.py). Replicas apply what they fetch in version order and
remember the last version applied, so the suite checks that versions only grow, that
`changes(since)` misses nothing newer, and that archives come back byte for byte."""

from __future__ import annotations

import asyncio
from typing import Any

from pilothouse.storage.copilot_folders import CopilotFolderStore, FolderExistsError, checksum
from pilothouse.testing.conformance.stores import PERSISTENT, THREADS, StoreSubject
from pilothouse.testing.conformance.suite import Suite, expect

COPILOT_FOLDER_STORES: Suite[StoreSubject[Any]] = Suite(
    "copilot folder stores",
    "managed copilot folders published for other replicas: versioned archives and "
    "deletions, fetched in order by every replica",
)

SHARED = "shared"
"""A capability: stores opened on one storage see each other's publications."""

Subject = StoreSubject[CopilotFolderStore]
ARCHIVE = b"PK\x05\x06" + bytes(18)  # an empty zip archive; any bytes do
OTHER = b"PK\x03\x04 not really a zip \x00\xff"


@COPILOT_FOLDER_STORES.check()
async def check_a_publication_comes_back_whole(subject: Subject) -> None:
    """A published archive comes back byte for byte with its SHA-256, under a version
    above every earlier one; `latest_version` says so."""
    with subject.opened() as store:
        start = store.latest_version()
        first = store.publish("helpdesk", ARCHIVE)
        assert first.version > start and first.checksum == checksum(ARCHIVE), first
        assert store.latest_version() == first.version
        [found] = store.changes(start)
        assert (found.name, found.version, found.deleted) == ("helpdesk", first.version, False)
        assert found.archive == ARCHIVE and found.checksum == checksum(ARCHIVE)
        assert store.changes(first.version) == []


@COPILOT_FOLDER_STORES.check()
async def check_changes_are_the_latest_of_each_copilot_in_order(subject: Subject) -> None:
    """Replacing a copilot moves it past the others; `changes` gives each changed
    copilot once, its latest record, oldest first; a deletion is a record with no
    archive."""
    with subject.opened() as store:
        start = store.latest_version()
        store.publish("alpha", ARCHIVE)
        beta = store.publish("beta", ARCHIVE)
        again = store.publish("alpha", OTHER)
        gone = store.delete("beta")
        assert beta.version < again.version < gone.version
        found = store.changes(start)
        assert [(r.name, r.version) for r in found] == [
            ("alpha", again.version),
            ("beta", gone.version),
        ], found
        assert found[0].archive == OTHER and not found[0].deleted
        assert found[1].deleted and found[1].archive == b"" and found[1].checksum == ""
        assert [r.name for r in store.changes(again.version)] == ["beta"]


@COPILOT_FOLDER_STORES.check()
async def check_a_new_copilot_cannot_take_a_published_name(subject: Subject) -> None:
    """`publish(new=True)` refuses a name that is published and not deleted, and
    changes nothing; after a deletion the name is free again."""
    with subject.opened() as store:
        first = store.publish("taken", ARCHIVE, new=True)
        with expect(FolderExistsError, "taken"):
            store.publish("taken", OTHER, new=True)
        assert store.latest_version() == first.version
        store.delete("taken")
        assert store.publish("taken", OTHER, new=True).archive == OTHER


@COPILOT_FOLDER_STORES.check(PERSISTENT, THREADS, SHARED)
async def check_replicas_see_each_others_publications(subject: Subject) -> None:
    """Two stores on one storage (two replicas) publishing from many threads at once:
    every publication gets its own version, and each store's `changes` shows the other's
    latest records."""
    with subject.opened() as first, subject.opened() as second:
        start = first.latest_version()

        def publish(n: int) -> int:
            store = first if n % 2 else second
            return store.publish(f"copilot-{n % 4}", ARCHIVE + bytes([n])).version

        versions = await asyncio.gather(*(asyncio.to_thread(publish, n) for n in range(16)))
        assert len(set(versions)) == 16 and min(versions) > start, versions
        assert second.latest_version() == max(versions) == first.latest_version()
        found = second.changes(start)
        assert sorted(r.name for r in found) == [f"copilot-{n}" for n in range(4)]
        latest = {r.name: r for r in found}
        for n, version in enumerate(versions):
            if version == latest[f"copilot-{n % 4}"].version:
                assert latest[f"copilot-{n % 4}"].archive == ARCHIVE + bytes([n])
    with subject.opened() as again:
        assert again.latest_version() == max(versions)
