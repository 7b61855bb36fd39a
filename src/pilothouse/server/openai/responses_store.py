"""Stored responses, for `previous_response_id`: the conversation so far (raw models:
every message without the instructions, the response's output included; copilots: the
copilot conversation the response belongs to): in the data directory's database
(`ResponseStore`), or in the PostgreSQL database server replicas share
(`PostgresResponseStore`, responses_store_postgres.py: the same statements,
storage/sql.py), so a response stored by one replica is continued on another.
`ResponseStore.for_settings` opens the configured one.

A response continues only for the key that created it (another key gets a 404, as for
a response that does not exist).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pilothouse.config import Settings
from pilothouse.storage.copy_tables import RESPONSE_COLUMNS
from pilothouse.storage.sqlite import MigratedStore

COMPONENT = "responses"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE responses (
        response_id     TEXT PRIMARY KEY,
        created         REAL NOT NULL,
        model           TEXT NOT NULL,
        key_id          TEXT,
        previous_id     TEXT,
        conversation_id TEXT,
        run_id          TEXT,
        messages        TEXT NOT NULL DEFAULT '[]',
        response        TEXT NOT NULL
    )
    """,
)

_INSERT = (
    f"INSERT INTO responses ({', '.join(RESPONSE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in RESPONSE_COLUMNS)}) ON CONFLICT (response_id) "
    "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in RESPONSE_COLUMNS[1:])
)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    response_id: str
    model: str
    key_id: str | None
    conversation_id: str | None
    run_id: str | None
    messages: list[dict[str, Any]]
    response: dict[str, Any]


class ResponseStore(MigratedStore):
    """Stored responses in SQLite; thread-safe (one connection behind a lock)."""

    COMPONENT = COMPONENT
    MIGRATIONS = MIGRATIONS

    @classmethod
    def for_settings(cls, settings: Settings) -> ResponseStore:
        """The store of the settings' storage backend (the data directory's database,
        or the shared PostgreSQL one)."""
        from pilothouse.storage.backends import open_store

        store: ResponseStore = open_store(settings, "responses")
        return store

    def _save(self, stored: StoredResponse, previous_id: str | None) -> None:
        with self._session(write=True) as db:
            db.execute(
                _INSERT,
                (  # in RESPONSE_COLUMNS' order
                    stored.response_id,
                    time.time(),
                    stored.model,
                    stored.key_id,
                    previous_id,
                    stored.conversation_id,
                    stored.run_id,
                    json.dumps(stored.messages, ensure_ascii=False),
                    json.dumps(stored.response, ensure_ascii=False),
                ),
            )

    def _get(self, response_id: str) -> StoredResponse | None:
        with self._session() as db:
            row = db.execute(
                "SELECT response_id, model, key_id, conversation_id, run_id, messages, "
                "response FROM responses WHERE response_id = ?",
                (response_id,),
            ).fetchone()
        if row is None:
            return None
        return StoredResponse(
            row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), json.loads(row[6])
        )

    async def save(self, stored: StoredResponse, previous_id: str | None) -> None:
        await asyncio.to_thread(self._save, stored, previous_id)

    async def get(self, response_id: str, key_id: str | None) -> StoredResponse | None:
        """The response, if it exists and `key_id` made it (None otherwise)."""
        stored = await asyncio.to_thread(self._get, response_id)
        if stored is None or stored.key_id != key_id:
            return None
        return stored


def open_sqlite_store(path: Path, settings: Settings) -> ResponseStore:
    """The sqlite backend's factory for `responses` (storage/backends.py)."""
    del settings
    return ResponseStore(path)
