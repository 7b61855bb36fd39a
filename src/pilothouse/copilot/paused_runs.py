"""Runs paused for approval, kept in the data directory's database so that a person
can decide later, from another process (the CLI, the server, the Studio).

A paused run holds everything needed to resume it without the original process: the
question, the grounding it was given, the messages of the run so far, the tool calls
waiting for a decision, and how many tool steps it has used.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pilothouse.config import Settings
from pilothouse.copilot.events import Citation
from pilothouse.errors import NotFoundError
from pilothouse.storage.secrets import redactor_for
from pilothouse.storage.sqlite import connect, migrate, transaction
from pilothouse.tracing import Redactor
from pilothouse.types import Message, ToolCallPart, message_from_dict, message_to_dict

MIGRATIONS = [
    """
    CREATE TABLE paused_runs (
        run_id          TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        copilot         TEXT NOT NULL,
        created         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        state           TEXT NOT NULL
    );
    CREATE INDEX paused_runs_by_conversation ON paused_runs (conversation_id)
    """,
    # 2: the API key (its id) that started the run; NULL without a key (CLI, Python)
    "ALTER TABLE paused_runs ADD COLUMN key_id TEXT",
]
_SELECT = "SELECT run_id, conversation_id, copilot, state, key_id FROM paused_runs"


@dataclass(frozen=True, slots=True)
class PausedRun:
    run_id: str
    conversation_id: str
    copilot: str
    question: str
    context: str | None
    citations: tuple[Citation, ...]
    tail: tuple[Message, ...]
    pending: tuple[ToolCallPart, ...]
    steps: int
    key_id: str | None = None
    """The server API key (its id) that started the run; None without a key."""

    def state_json(self) -> str:
        return json.dumps(
            {
                "question": self.question,
                "context": self.context,
                "citations": [{**c.to_dict(), "text": c.text} for c in self.citations],
                "tail": [message_to_dict(m) for m in self.tail],
                "pending": [c.id for c in self.pending],
                "steps": self.steps,
            }
        )

    @classmethod
    def from_row(
        cls, run_id: str, conversation_id: str, copilot: str, state: str, key_id: str | None
    ) -> PausedRun:
        data: dict[str, Any] = json.loads(state)
        tail = tuple(message_from_dict(m) for m in data["tail"])
        calls = {c.id: c for m in tail for c in m.tool_calls}
        citations = tuple(
            Citation(**{**c, "headings": tuple(c["headings"])}) for c in data["citations"]
        )
        return cls(
            run_id=run_id,
            conversation_id=conversation_id,
            copilot=copilot,
            question=data["question"],
            context=data["context"],
            citations=citations,
            tail=tail,
            pending=tuple(calls[i] for i in data["pending"] if i in calls),
            steps=int(data["steps"]),
            key_id=key_id,
        )


class PausedRunStore:
    def __init__(self, path: Path | str, *, redactor: Redactor | None = None):
        self._redactor = redactor or Redactor()  # masks known secrets in what is stored
        self._conn = connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        migrate(self._conn, "paused_runs", MIGRATIONS)

    @classmethod
    def for_settings(cls, settings: Settings) -> PausedRunStore:
        """The store of the settings' storage backend (the data directory's database,
        or the shared PostgreSQL one)."""
        from pilothouse.storage.backends import open_store

        store: PausedRunStore = open_store(settings, "paused_runs")
        return store

    def close(self) -> None:
        self._conn.close()

    async def _run(self, func: Any, *args: Any) -> Any:
        def locked() -> Any:
            with self._lock:
                return func(*args)

        return await asyncio.to_thread(locked)

    async def save(self, run: PausedRun) -> None:
        def write() -> None:
            with transaction(self._conn):
                self._conn.execute(
                    "INSERT OR REPLACE INTO paused_runs"
                    " (run_id, conversation_id, copilot, state, key_id) VALUES (?, ?, ?, ?, ?)",
                    (
                        run.run_id,
                        run.conversation_id,
                        run.copilot,
                        self._redactor.scrub_text(run.state_json()),
                        run.key_id,
                    ),
                )

        await self._run(write)

    async def take(self, run_id: str) -> PausedRun:
        """Remove and return the paused run with exactly this id (so two deciders cannot
        both resume it; a prefix never matches)."""

        def claim() -> PausedRun:
            with transaction(self._conn):
                row = self._conn.execute(_SELECT + " WHERE run_id = ?", (run_id,)).fetchone()
                if row is None:
                    raise NotFoundError(f"no paused run with id {run_id!r} (decided already?)")
                self._conn.execute("DELETE FROM paused_runs WHERE run_id = ?", (run_id,))
            return PausedRun.from_row(*row)

        result: PausedRun = await self._run(claim)
        return result

    async def get(self, run_id: str) -> PausedRun | None:
        """The paused run with exactly this id, left in place; None when there is none."""

        def read() -> PausedRun | None:
            row = self._conn.execute(_SELECT + " WHERE run_id = ?", (run_id,)).fetchone()
            return PausedRun.from_row(*row) if row is not None else None

        result: PausedRun | None = await self._run(read)
        return result

    async def for_conversation(self, conversation_id: str) -> list[PausedRun]:
        def read() -> list[PausedRun]:
            rows = self._conn.execute(
                _SELECT + " WHERE conversation_id = ? ORDER BY created",
                (conversation_id,),
            ).fetchall()
            return [PausedRun.from_row(*r) for r in rows]

        result: list[PausedRun] = await self._run(read)
        return result

    async def all(self, copilot: str | None = None) -> list[PausedRun]:
        def read() -> list[PausedRun]:
            query = _SELECT
            args: tuple[str, ...] = ()
            if copilot is not None:
                query += " WHERE copilot = ?"
                args = (copilot,)
            return [
                PausedRun.from_row(*r)
                for r in self._conn.execute(query + " ORDER BY created", args)
            ]

        result: list[PausedRun] = await self._run(read)
        return result


def open_sqlite_store(path: Path, settings: Settings) -> PausedRunStore:
    """The sqlite backend's factory for `paused_runs` (storage/backends.py)."""
    return PausedRunStore(path, redactor=redactor_for(settings))
