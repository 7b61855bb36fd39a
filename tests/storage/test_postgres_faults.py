"""PostgreSQL faults: a migration killed half-way (kill -9 of the process applying it)
is applied again cleanly, and a store fails with a clear error while the server is
down and works again, without being reopened, once it is back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pilothouse.config import DATABASE_URL_ENV, Settings
from pilothouse.copilot.conversations import ConversationStore
from pilothouse.errors import StorageUnavailableError
from pilothouse.storage.backends import close_database
from pilothouse.storage.postgres import PostgresDatabase, current_version
from pilothouse.testing.postgres import ThrowawayPostgres
from pilothouse.types import Message

MIGRATIONS = (
    "CREATE TABLE faulty_one (x INTEGER)",
    "CREATE TABLE faulty_two (x INTEGER); INSERT INTO faulty_two VALUES (1); "
    "INSERT INTO faulty_one VALUES (2); SELECT pg_sleep(3)",
)
APPLY = textwrap.dedent(
    """
    import sys
    from pilothouse.storage.postgres import PostgresDatabase
    from tests.storage.test_postgres_faults import MIGRATIONS
    PostgresDatabase(sys.argv[1]).migrate("faulty", MIGRATIONS)
    """
)


def _running(database: PostgresDatabase, text: str) -> bool:
    with database.connection() as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
            (f"%{text}%",),
        ).fetchone()
    return bool(row and row[0])


def test_a_migration_killed_half_way_is_applied_again_cleanly(postgres_url: str) -> None:
    database = PostgresDatabase(postgres_url)
    try:
        root = Path(__file__).resolve().parents[2]
        process = subprocess.Popen(
            [sys.executable, "-c", APPLY, postgres_url], cwd=root, env={**os.environ}
        )
        deadline = time.monotonic() + 60
        while not _running(database, "pg_sleep(3)"):
            assert process.poll() is None and time.monotonic() < deadline, "never started"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)  # migration 2 is half done: a table made, rows in
        process.wait(10)

        assert database.migrate("faulty", MIGRATIONS) == 2  # waits for the dead one's rollback
        with database.connection() as conn:
            assert current_version(conn, "faulty") == 2
            assert conn.execute("SELECT x FROM faulty_two").fetchall() == [(1,)]
            assert conn.execute("SELECT x FROM faulty_one").fetchall() == [(2,)]  # once
            versions = conn.execute(
                "SELECT version FROM schema_migrations WHERE component = 'faulty' ORDER BY 1"
            ).fetchall()
        assert versions == [(1,), (2,)]
    finally:
        database.close()


@pytest.fixture
def own_server(postgres_server: ThrowawayPostgres) -> Iterator[ThrowawayPostgres]:
    """A server of this test's own, crash-safe: it is stopped and started again
    (`postgres_server` first: it skips, or fails under `make test`, where no PostgreSQL
    can be had)."""
    with ThrowawayPostgres(durable=True) as server:
        yield server


async def test_a_store_fails_clearly_while_the_server_is_down_and_recovers(
    own_server: ThrowawayPostgres, tmp_path: Path
) -> None:
    url = own_server.database("outage").replace("postgres@", "postgres:pw-Secret-77@")
    settings = Settings.from_sources(home=tmp_path, environ={DATABASE_URL_ENV: url})
    try:
        store = ConversationStore.for_settings(settings)
        conversation = await store.create("helpdesk")
        own_server.stop(immediate=True)
        with pytest.raises(StorageUnavailableError) as raised:
            await store.append(conversation.id, [Message.user("lost?")])
        message = str(raised.value)
        assert "PostgreSQL at postgresql://postgres:***@127.0.0.1" in message
        assert "pw-Secret-77" not in message and "nothing was changed" in message
        own_server.start()
        deadline = time.monotonic() + 30
        while True:  # the same store, not reopened: it works again within a moment
            try:
                await store.append(conversation.id, [Message.user("back")])
                break
            except StorageUnavailableError:
                assert time.monotonic() < deadline, "the store did not recover"
                await asyncio.sleep(0.2)
        assert [m.text for m in await store.messages(conversation.id)] == ["back"]
    finally:
        close_database(settings)
