"""Stored responses, for `previous_response_id`: the conversation so far (raw models:
every message without the instructions, the response's output included; copilots: the
copilot conversation the response belongs to), in the data directory's database.

A response continues only for the key that created it (another key gets a 404, as for
a response that does not exist).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pilothouse.storage.sqlite import connect, migrate, transaction

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


@dataclass(frozen=True, slots=True)
class StoredResponse:
    response_id: str
    model: str
    key_id: str | None
    conversation_id: str | None
    run_id: str | None
    messages: list[dict[str, Any]]
    response: dict[str, Any]


class ResponseStore:
    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        self._conn = connect(path, check_same_thread=False)
        try:
            migrate(self._conn, COMPONENT, MIGRATIONS)
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _save(self, stored: StoredResponse, previous_id: str | None) -> None:
        with self._lock, transaction(self._conn):
            self._conn.execute(
                "INSERT OR REPLACE INTO responses (response_id, created, model, key_id, "
                "previous_id, conversation_id, run_id, messages, response) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
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
        with self._lock:
            row = self._conn.execute(
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
