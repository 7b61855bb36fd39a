"""Conversations kept in the data directory's SQLite database, resumable by id.

A conversation is a row (id, copilot, title, timestamps, rolling summary, metadata) and
an ordered list of messages, each stored as people saw it (the plain form of
`pilothouse.types.message_to_dict`) with the id of the run that produced it, and, where
the model was sent something else, the messages it stands for in a model's prompt (its
`sent` form: the user's turn with its passages, an answer as the model wrote it): the
next turn's prompt is rebuilt from those, so it begins with the previous one as the
model read it and a local model reuses its cached prompt.

Concurrency: every public operation is a coroutine that runs its (short) SQLite work in
a worker thread with `asyncio.to_thread`, so a writer waiting on another process's lock
(up to the busy timeout) never blocks the event loop. One store holds one connection
behind a lock; writes are `BEGIN IMMEDIATE` transactions, so appends from coroutines,
threads and processes on the same file queue up and never interleave: the messages of
one `append` get contiguous indexes, in order, and none are lost.

Listing reads only the conversation rows (message counts are kept there), never the
messages, which may be large.
"""

from __future__ import annotations

import asyncio
import builtins
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pilothouse.config import Settings
from pilothouse.copilot.asked_slots import AskedFor, dump_asked
from pilothouse.copilot.conversation_records import (
    CONVERSATION_COLUMNS,
    MESSAGE_COLUMNS,
    Conversation,
    ConversationError,
    StoredMessage,
    conversation_from_row,
    dump_message,
    dump_messages,
    dump_metadata,
    make_title,
    message_from_row,
    new_conversation_id,
    record_time,
)
from pilothouse.errors import NotFoundError
from pilothouse.storage.secrets import redactor_for
from pilothouse.storage.sqlite import connect, migrate, transaction
from pilothouse.tracing import Redactor
from pilothouse.types import Message

_T = TypeVar("_T")
COMPONENT = "conversations"
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
        metadata      TEXT    NOT NULL DEFAULT '{}'
    );
    CREATE INDEX conversations_by_copilot ON conversations (copilot, updated);
    CREATE INDEX conversations_by_updated ON conversations (updated);
    CREATE TABLE conversation_messages (
        conversation_id TEXT    NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        idx             INTEGER NOT NULL,
        role            TEXT    NOT NULL,
        message         TEXT    NOT NULL,
        created         TEXT    NOT NULL,
        run_id          TEXT,
        PRIMARY KEY (conversation_id, idx)
    ) WITHOUT ROWID;
    CREATE INDEX conversation_messages_by_run ON conversation_messages (run_id)
    """,
    # 2: the API key (its id) that started the conversation; NULL without a key
    """
    ALTER TABLE conversations ADD COLUMN key_id TEXT;
    CREATE INDEX conversations_by_key ON conversations (key_id, updated)
    """,
    # 3: the messages a message stands for in a model's prompt (JSON list); NULL: itself
    "ALTER TABLE conversation_messages ADD COLUMN sent TEXT",
    # 4: the slots the copilot's last answer asked the user for (copilot/asked_slots.py)
    "ALTER TABLE conversations ADD COLUMN asked TEXT",
)


class ConversationStore:
    """Conversations in one SQLite file (normally `Settings.database_path`).

    Opening creates or migrates the tables (component "conversations"); it is cheap and
    synchronous. Every other method is a coroutine. Safe to share between coroutines and
    threads; several stores (or processes) may use the same file at once.
    """

    def __init__(self, path: Path | str, *, redactor: Redactor | None = None):
        self.path = Path(path)
        self._redactor = redactor or Redactor()
        """Masks known secrets in every message, title and summary before it is stored."""
        self._lock = threading.Lock()
        self._conn = connect(self.path, check_same_thread=False)
        with self._lock:
            migrate(self._conn, COMPONENT, MIGRATIONS)

    @classmethod
    def for_settings(cls, settings: Settings) -> ConversationStore:
        """The store of the settings' storage backend: the data directory's database,
        or the shared PostgreSQL one (secrets masked as the settings' redactor knows
        them)."""
        from pilothouse.storage.backends import open_store

        store: ConversationStore = open_store(settings, "conversations")
        return store

    def close(self) -> None:
        """Close the connection. Safe to call twice."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ConversationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the API ----------------------------------------------------------------------

    async def create(
        self,
        copilot: str,
        metadata: dict[str, Any] | None = None,
        *,
        title: str = "",
        key_id: str | None = None,
    ) -> Conversation:
        """A new, empty conversation of `copilot`, owned by the API key `key_id` (None:
        started without a key). The title, when not given, becomes the first user
        message's text (trimmed) on the first `append`."""
        meta = dump_metadata(metadata)
        return await self._run(self._create, copilot, meta, make_title(title), key_id)

    async def get(self, conversation_id: str) -> Conversation:
        """The conversation's row; `NotFoundError` when there is none."""
        return await self._run(self._get, conversation_id)

    async def list(
        self, copilot: str | None = None, limit: int = 50, *, key_id: str | None = None
    ) -> list[Conversation]:
        """Most recently updated first; only the rows, never the messages. With `key_id`,
        only the conversations that key started."""
        return await self._run(self._list, copilot, limit, key_id)

    async def append(
        self,
        conversation_id: str,
        messages: Sequence[Message],
        run_id: str | None = None,
        *,
        sent: Sequence[Sequence[Message] | None] | None = None,
    ) -> builtins.list[StoredMessage]:
        """Add `messages` at the end, atomically, with contiguous indexes; returns them
        as stored. `run_id` is the trace id of the run that produced them; `sent`, one
        entry per message, what each stands for in a model's prompt (None: itself)."""
        forms = list(sent) if sent is not None else [None] * len(messages)
        if len(forms) != len(messages):
            raise ConversationError(
                f"append to {conversation_id!r}: {len(forms)} sent forms for "
                f"{len(messages)} messages (one each, None for the message itself)"
            )
        scrub = self._redactor.scrub_text
        rows = [
            (m.role, scrub(dump_message(m)), None if f is None else scrub(dump_messages(f)))
            for m, f in zip(messages, forms, strict=True)
        ]
        title = next((make_title(m.text) for m in messages if m.role == "user" and m.text), "")
        title = scrub(title)
        stored = await self._run(self._append, conversation_id, rows, run_id, title)
        return [
            StoredMessage(index, message, created, run_id, None if form is None else tuple(form))
            for (index, created), message, form in zip(stored, messages, forms, strict=True)
        ]

    async def messages(
        self, conversation_id: str, start: int = 0, end: int | None = None
    ) -> builtins.list[Message]:
        """Messages `[start, end)` in order (all by default)."""
        return [r.message for r in await self.records(conversation_id, start, end)]

    async def records(
        self, conversation_id: str, start: int = 0, end: int | None = None
    ) -> builtins.list[StoredMessage]:
        """Like `messages`, with index, time and run id."""
        return await self._run(self._records, conversation_id, start, end)

    async def set_summary(
        self, conversation_id: str, summary: str, upto: int, *, expected_upto: int
    ) -> bool:
        """Store a rolling summary covering messages `[0, upto)`, only if the stored one
        still covers `[0, expected_upto)` (so two summarisers never overwrite a newer
        summary with an older one). Returns whether it was stored."""
        summary = self._redactor.scrub_text(summary)
        return await self._run(self._set_summary, conversation_id, summary, upto, expected_upto)

    async def set_asked(self, conversation_id: str, asked: Sequence[AskedFor]) -> None:
        """Remember what the last answer asked the user for (empty: nothing; see
        copilot/asked_slots.py); `NotFoundError` when there is no such conversation."""
        await self._run(self._set_asked, conversation_id, dump_asked(asked))

    async def delete(self, conversation_id: str) -> None:
        """Delete the conversation and its messages; `NotFoundError` when there is none."""
        await self._run(self._delete, conversation_id)

    # --- blocking work, run in a thread -----------------------------------------------

    async def _run(self, func: Callable[..., _T], *args: Any) -> _T:
        def locked() -> _T:
            with self._lock:
                return func(*args)

        return await asyncio.to_thread(locked)

    def _missing(self, conversation_id: str) -> NotFoundError:
        return NotFoundError(
            f"no conversation {conversation_id!r} in {self.path} (it never existed or was "
            "deleted); start a new conversation or pick an id from the conversation list"
        )

    def _create(self, copilot: str, metadata: str, title: str, key_id: str | None) -> Conversation:
        now = record_time()
        with transaction(self._conn):
            for _ in range(5):
                cid = new_conversation_id()
                try:
                    self._conn.execute(
                        "INSERT INTO conversations (id, copilot, title, created, updated, "
                        "metadata, key_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (cid, copilot, title, now, now, metadata, key_id),
                    )
                    break
                except sqlite3.IntegrityError:  # an id collision: vanishingly rare
                    continue
            else:
                raise ConversationError(f"{self.path}: could not allocate a conversation id")
        return self._get(cid)

    def _rows(self, sql: str, params: Sequence[Any]) -> builtins.list[tuple[Any, ...]]:
        """The rows of one query (`?` placeholders; a backend may translate them)."""
        return [tuple(r) for r in self._conn.execute(sql, params).fetchall()]

    def _row(self, conversation_id: str) -> tuple[Any, ...]:
        rows = self._rows(
            f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?", (conversation_id,)
        )
        if not rows:
            raise self._missing(conversation_id)
        return rows[0]

    def _get(self, conversation_id: str) -> Conversation:
        return conversation_from_row(self.path, self._row(conversation_id))

    def _list(
        self, copilot: str | None, limit: int, key_id: str | None
    ) -> builtins.list[Conversation]:
        conditions, params = [], []
        if copilot is not None:
            conditions.append("copilot = ?")
            params.append(copilot)
        if key_id is not None:
            conditions.append("key_id = ?")
            params.append(key_id)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._rows(
            f"SELECT {CONVERSATION_COLUMNS} FROM conversations {where} "
            "ORDER BY updated DESC, created DESC, id LIMIT ?",
            (*params, max(0, limit)),
        )
        return [conversation_from_row(self.path, r) for r in rows]

    def _append(
        self,
        conversation_id: str,
        rows: builtins.list[tuple[str, str, str | None]],
        run_id: str | None,
        title: str,
    ) -> builtins.list[tuple[int, datetime]]:
        now = record_time()
        with transaction(self._conn):
            found = self._conn.execute(
                "SELECT message_count, title FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
            if found is None:
                raise self._missing(conversation_id)
            first, old_title = int(found[0]), str(found[1])
            if not rows:
                return []
            self._conn.executemany(
                "INSERT INTO conversation_messages (conversation_id, idx, role, message, "
                "created, run_id, sent) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (conversation_id, first + offset, role, body, now, run_id, sent)
                    for offset, (role, body, sent) in enumerate(rows)
                ],
            )
            self._conn.execute(
                "UPDATE conversations SET message_count = ?, updated = ?, title = ? WHERE id = ?",
                (first + len(rows), now, old_title or title, conversation_id),
            )
        created = datetime.fromisoformat(now)
        return [(first + offset, created) for offset in range(len(rows))]

    def _records(
        self, conversation_id: str, start: int, end: int | None
    ) -> builtins.list[StoredMessage]:
        # One read transaction, so the existence check and the rows agree.
        with transaction(self._conn, immediate=False):
            self._row(conversation_id)
            rows = self._conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM conversation_messages "
                "WHERE conversation_id = ? AND idx >= ? AND idx < ? ORDER BY idx",
                (conversation_id, max(0, start), end if end is not None else 2**62),
            ).fetchall()
        return [message_from_row(self.path, conversation_id, *row) for row in rows]

    def _set_summary(self, conversation_id: str, summary: str, upto: int, expected: int) -> bool:
        with transaction(self._conn):
            self._row(conversation_id)
            cursor = self._conn.execute(
                "UPDATE conversations SET summary = ?, summary_upto = ? "
                "WHERE id = ? AND summary_upto = ?",
                (summary, upto, conversation_id, expected),
            )
        return cursor.rowcount == 1

    def _set_asked(self, conversation_id: str, asked: str | None) -> None:
        with transaction(self._conn):
            cursor = self._conn.execute(
                "UPDATE conversations SET asked = ? WHERE id = ?", (asked, conversation_id)
            )
            if cursor.rowcount == 0:
                raise self._missing(conversation_id)

    def _delete(self, conversation_id: str) -> None:
        with transaction(self._conn):
            cursor = self._conn.execute(
                "DELETE FROM conversations WHERE id = ?", (conversation_id,)
            )
            if cursor.rowcount == 0:
                raise self._missing(conversation_id)


def open_sqlite_store(path: Path, settings: Settings) -> ConversationStore:
    """The sqlite backend's factory for `conversations` (storage/backends.py)."""
    return ConversationStore(path, redactor=redactor_for(settings))
