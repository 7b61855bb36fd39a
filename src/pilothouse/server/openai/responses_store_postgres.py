"""Stored `/v1/responses` answers in PostgreSQL: a `previous_response_id` given to any
replica continues the response another replica stored (for the key that made it). The
statements are SQLite's (responses_store.py)."""

from __future__ import annotations

from pilothouse.config import Settings
from pilothouse.server.openai.responses_store import COMPONENT, ResponseStore
from pilothouse.storage.postgres import PostgresDatabase, PostgresStatements

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE responses (
        response_id     TEXT PRIMARY KEY,
        created         DOUBLE PRECISION NOT NULL,
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
"""responses_store.py's first migration in PostgreSQL's types."""


class PostgresResponseStore(PostgresStatements, ResponseStore):
    """Stored responses in PostgreSQL (see the module docstring)."""

    def __init__(self, database: PostgresDatabase) -> None:
        self.path = database.display  # type: ignore[assignment]  # named in messages
        self._open(database, COMPONENT, MIGRATIONS)


def open_store(database: PostgresDatabase, settings: Settings) -> PostgresResponseStore:
    """The postgresql backend's factory for `responses` (storage/backends.py)."""
    del settings
    return PostgresResponseStore(database)
