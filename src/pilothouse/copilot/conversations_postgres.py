"""Conversations in PostgreSQL, shared by every server replica: the conversation
store's interface (`ConversationStore`, whose public methods mask secrets and read rows
back) over PostgreSQL tables instead of the data directory's SQLite file.

Appends lock the conversation's row (`SELECT ... FOR UPDATE`) in the transaction that
writes the messages, so appends from any number of replicas queue on that row and the
messages of one append get contiguous indexes, none lost. Timestamps are kept as the
SQLite store writes them (UTC ISO text with microseconds: they sort in time order), so
`pilothouse storage copy` moves rows as they are.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pilothouse.config import Settings
from pilothouse.copilot.conversation_records import (
    MESSAGE_COLUMNS,
    Conversation,
    ConversationError,
    StoredMessage,
    message_from_row,
    new_conversation_id,
    record_time,
)
from pilothouse.copilot.conversations import COMPONENT, ConversationStore
from pilothouse.storage.postgres import PostgresDatabase
from pilothouse.storage.secrets import redactor_for
from pilothouse.tracing import Redactor

if TYPE_CHECKING:
    import psycopg

_T = TypeVar("_T")

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE conversations (
        id            TEXT    PRIMARY KEY,
        copilot       TEXT    NOT NULL,
        title         TEXT    NOT NULL DEFAULT '',
        created       TEXT    NOT NULL,
        updated       TEXT    NOT NULL,
        summary       TEXT    NOT NULL DEFAULT '',
        summary_upto  INTEGER NOT NULL DEFAULT 0,
        message_count INTEGER NOT NULL DEFAULT 0,
        metadata      TEXT    NOT NULL DEFAULT '{}',
        key_id        TEXT
    );
    CREATE INDEX conversations_by_copilot ON conversations (copilot, updated);
    CREATE INDEX conversations_by_updated ON conversations (updated);
    CREATE INDEX conversations_by_key ON conversations (key_id, updated);
    CREATE TABLE conversation_messages (
        conversation_id TEXT    NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        idx             INTEGER NOT NULL,
        role            TEXT    NOT NULL,
        message         TEXT    NOT NULL,
        created         TEXT    NOT NULL,
        run_id          TEXT,
        PRIMARY KEY (conversation_id, idx)
    );
    CREATE INDEX conversation_messages_by_run ON conversation_messages (run_id)
    """,
    # 2: the messages a message stands for in a model's prompt (JSON list); NULL: itself
    "ALTER TABLE conversation_messages ADD COLUMN sent TEXT",
    # 3: the slots the copilot's last answer asked the user for (copilot/asked_slots.py)
    "ALTER TABLE conversations ADD COLUMN asked TEXT",
)


class PostgresConversationStore(ConversationStore):
    """Conversations in a PostgreSQL database (see the module docstring)."""

    def __init__(self, database: PostgresDatabase, *, redactor: Redactor | None = None):
        self.path = database.display  # type: ignore[assignment]  # named in messages
        self.database = database
        self._redactor = redactor or Redactor()
        database.migrate(COMPONENT, MIGRATIONS)

    def close(self) -> None:
        """Nothing to close: the connection pool belongs to the settings."""

    async def _run(self, func: Callable[..., _T], *args: Any) -> _T:
        import asyncio

        return await asyncio.to_thread(func, *args)

    def _create(self, copilot: str, metadata: str, title: str, key_id: str | None) -> Conversation:
        now = record_time()
        with self.database.bounded() as conn:
            for _ in range(5):
                cid = new_conversation_id()
                row = conn.execute(
                    "INSERT INTO conversations (id, copilot, title, created, updated, metadata, "
                    "key_id) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING "
                    "RETURNING id",
                    (cid, copilot, title, now, now, metadata, key_id),
                ).fetchone()
                if row is not None:
                    return self._get(cid)
        raise ConversationError(f"{self.path}: could not allocate a conversation id")

    def _rows(self, sql: str, params: Sequence[Any]) -> builtins.list[tuple[Any, ...]]:
        with self.database.bounded() as conn:
            rows = conn.execute(sql.replace("?", "%s"), params).fetchall()
        return [tuple(r) for r in rows]

    def _append(
        self,
        conversation_id: str,
        rows: builtins.list[tuple[str, str, str | None]],
        run_id: str | None,
        title: str,
    ) -> builtins.list[tuple[int, datetime]]:
        now = record_time()
        with self.database.bounded_transaction() as conn:
            found = conn.execute(
                "SELECT message_count, title FROM conversations WHERE id = %s FOR UPDATE",
                (conversation_id,),
            ).fetchone()
            if found is None:
                raise self._missing(conversation_id)
            first, old_title = int(found[0]), str(found[1])
            if not rows:
                return []
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO conversation_messages "
                    "(conversation_id, idx, role, message, created, run_id, sent) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [
                        (conversation_id, first + offset, role, body, now, run_id, sent)
                        for offset, (role, body, sent) in enumerate(rows)
                    ],
                )
            conn.execute(
                "UPDATE conversations SET message_count = %s, updated = %s, title = %s "
                "WHERE id = %s",
                (first + len(rows), now, old_title or title, conversation_id),
            )
        created = datetime.fromisoformat(now)
        return [(first + offset, created) for offset in range(len(rows))]

    def _records(
        self, conversation_id: str, start: int, end: int | None
    ) -> builtins.list[StoredMessage]:
        with self.database.bounded_transaction() as conn:
            self._require(conn, conversation_id)
            rows = conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM conversation_messages "
                "WHERE conversation_id = %s AND idx >= %s AND idx < %s ORDER BY idx",
                (conversation_id, max(0, start), end if end is not None else 2**31 - 1),
            ).fetchall()
        return [message_from_row(self.path, conversation_id, *row) for row in rows]

    def _set_summary(self, conversation_id: str, summary: str, upto: int, expected: int) -> bool:
        with self.database.bounded_transaction() as conn:
            self._require(conn, conversation_id)
            cursor = conn.execute(
                "UPDATE conversations SET summary = %s, summary_upto = %s "
                "WHERE id = %s AND summary_upto = %s",
                (summary, upto, conversation_id, expected),
            )
        return cursor.rowcount == 1

    def _require(self, conn: psycopg.Connection[Any], conversation_id: str) -> None:
        """NotFoundError-like `_missing` unless the conversation exists."""
        if (
            conn.execute("SELECT 1 FROM conversations WHERE id = %s", (conversation_id,)).fetchone()
            is None
        ):
            raise self._missing(conversation_id)

    def _set_asked(self, conversation_id: str, asked: str | None) -> None:
        with self.database.bounded() as conn:
            cursor = conn.execute(
                "UPDATE conversations SET asked = %s WHERE id = %s", (asked, conversation_id)
            )
        if cursor.rowcount == 0:
            raise self._missing(conversation_id)

    def _delete(self, conversation_id: str) -> None:
        with self.database.bounded() as conn:
            cursor = conn.execute("DELETE FROM conversations WHERE id = %s", (conversation_id,))
        if cursor.rowcount == 0:
            raise self._missing(conversation_id)


def open_store(database: PostgresDatabase, settings: Settings) -> PostgresConversationStore:
    """The postgresql backend's factory for `conversations` (storage/backends.py)."""
    return PostgresConversationStore(database, redactor=redactor_for(settings))
