"""Runs paused for approval in PostgreSQL: a run paused on one server replica is
decided and resumed on another. `take` deletes the row it returns in one statement
(`DELETE ... RETURNING`), so of two replicas deciding the same run at once exactly one
gets it; the other hears that it was decided already."""

from __future__ import annotations

import asyncio
from typing import Any

from pilothouse.config import Settings
from pilothouse.copilot.paused_runs import PausedRun, PausedRunStore
from pilothouse.errors import NotFoundError
from pilothouse.storage.postgres import PostgresDatabase
from pilothouse.storage.secrets import redactor_for
from pilothouse.tracing import Redactor

COMPONENT = "paused_runs"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE paused_runs (
        run_id          TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        copilot         TEXT NOT NULL,
        created         TEXT NOT NULL DEFAULT
            to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        state           TEXT NOT NULL,
        key_id          TEXT
    );
    CREATE INDEX paused_runs_by_conversation ON paused_runs (conversation_id)
    """,
)
_COLUMNS = "run_id, conversation_id, copilot, state, key_id"


class PostgresPausedRunStore(PausedRunStore):
    """The paused-run store over PostgreSQL (see the module docstring)."""

    def __init__(self, database: PostgresDatabase, *, redactor: Redactor | None = None):
        self.database = database
        self._redactor = redactor or Redactor()
        database.migrate(COMPONENT, MIGRATIONS)

    def close(self) -> None:
        """Nothing to close: the connection pool belongs to the settings."""

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[PausedRun]:
        with self.database.bounded() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [PausedRun.from_row(*r) for r in rows]

    async def save(self, run: PausedRun) -> None:
        state = self._redactor.scrub_text(run.state_json())

        def write() -> None:
            with self.database.bounded() as conn:
                conn.execute(
                    f"INSERT INTO paused_runs ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s) "
                    "ON CONFLICT (run_id) DO UPDATE SET conversation_id = "
                    "EXCLUDED.conversation_id, copilot = EXCLUDED.copilot, "
                    "state = EXCLUDED.state, key_id = EXCLUDED.key_id",
                    (run.run_id, run.conversation_id, run.copilot, state, run.key_id),
                )

        await asyncio.to_thread(write)

    async def take(self, run_id: str) -> PausedRun:
        found = await asyncio.to_thread(
            self._rows,
            f"DELETE FROM paused_runs WHERE run_id = %s RETURNING {_COLUMNS}",
            (run_id,),
        )
        if not found:
            raise NotFoundError(f"no paused run with id {run_id!r} (decided already?)")
        return found[0]

    async def get(self, run_id: str) -> PausedRun | None:
        found = await asyncio.to_thread(
            self._rows, f"SELECT {_COLUMNS} FROM paused_runs WHERE run_id = %s", (run_id,)
        )
        return found[0] if found else None

    async def for_conversation(self, conversation_id: str) -> list[PausedRun]:
        return await asyncio.to_thread(
            self._rows,
            f"SELECT {_COLUMNS} FROM paused_runs WHERE conversation_id = %s "
            "ORDER BY created, run_id",
            (conversation_id,),
        )

    async def all(self, copilot: str | None = None) -> list[PausedRun]:
        where, params = ("WHERE copilot = %s", (copilot,)) if copilot is not None else ("", ())
        return await asyncio.to_thread(
            self._rows,
            f"SELECT {_COLUMNS} FROM paused_runs {where} ORDER BY created, run_id",
            params,
        )


def open_store(database: PostgresDatabase, settings: Settings) -> PostgresPausedRunStore:
    """The postgresql backend's factory for `paused_runs` (storage/backends.py)."""
    return PostgresPausedRunStore(database, redactor=redactor_for(settings))
