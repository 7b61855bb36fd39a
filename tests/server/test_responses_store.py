"""The stored-responses store on both backends (SQLite, and PostgreSQL on a throwaway
server): what `previous_response_id` needs. On PostgreSQL, a response stored through
one replica's store (a pool of its own) is found through another's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pilothouse.server.openai.responses_store import ResponseStore, StoredResponse
from tests.storage.replicas import replica_stores

Opener = Callable[[], ResponseStore]


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    if request.param == "sqlite":
        yield lambda: ResponseStore(tmp_path / "db.sqlite3")
        return
    url = request.getfixturevalue("postgres_url")
    with replica_stores(url, tmp_path, ResponseStore.for_settings) as replica:
        yield replica


def stored(response_id: str, key_id: str | None = "key_1", **fields: object) -> StoredResponse:
    values: dict[str, object] = {
        "response_id": response_id,
        "model": "helpdesk",
        "key_id": key_id,
        "conversation_id": "conv-1",
        "run_id": "run-1",
        "messages": [{"role": "user", "content": "VPN? 🔒"}, {"role": "assistant", "content": "x"}],
        "response": {"id": response_id, "output_text": "WireGuard ✓", "usage": None},
        **fields,
    }
    return StoredResponse(**values)  # type: ignore[arg-type]


async def test_a_response_reads_back_for_the_key_that_made_it(open_store: Opener) -> None:
    first, second = open_store(), open_store()
    try:
        await first.save(stored("resp_1"), None)
        await first.save(stored("resp_2", run_id="run-2"), "resp_1")
        await first.save(stored("resp_anon", key_id=None), None)
        assert await second.get("resp_1", "key_1") == stored("resp_1")
        assert (await second.get("resp_2", "key_1")) == stored("resp_2", run_id="run-2")
        assert await second.get("resp_1", "key_2") is None  # another key: as if unknown
        assert await second.get("resp_1", None) is None
        assert await second.get("resp_anon", None) == stored("resp_anon", key_id=None)
        assert await second.get("resp_nosuch", "key_1") is None
    finally:
        first.close()
        second.close()


async def test_a_response_saved_again_replaces_it(open_store: Opener) -> None:
    store = open_store()
    try:
        await store.save(stored("resp_1"), None)
        await store.save(stored("resp_1", messages=[], response={"id": "resp_1"}), None)
        assert await store.get("resp_1", "key_1") == stored(
            "resp_1", messages=[], response={"id": "resp_1"}
        )
    finally:
        store.close()
    again = open_store()
    try:
        found = await again.get("resp_1", "key_1")
        assert found is not None and found.response == {"id": "resp_1"}
    finally:
        again.close()


def test_storage_copy_reads_every_column_the_store_writes(tmp_path: Path) -> None:
    """`storage copy` and the store share one column list: a column of the table that
    the copy did not read would be lost on the way to PostgreSQL."""
    from pilothouse.storage.copy_tables import MAIN

    with ResponseStore(tmp_path / "db.sqlite3") as store, store._session() as db:
        written = [row[1] for row in db.execute("PRAGMA table_info(responses)")]
    copied = next(t.columns for _, tables in MAIN for t in tables if t.source == "responses")
    assert list(copied) == written
