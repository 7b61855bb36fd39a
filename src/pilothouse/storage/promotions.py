"""Promotions in SQL (the `PromotionStore` of promotion_records.py): the promotions,
their timelines, their online samples and the canary's sticky assignments.

`SqlPromotionStore` holds the statements, the same on SQLite and PostgreSQL
(storage/sql.py); `SqlitePromotionStore` runs them on the data directory's database,
`PostgresPromotionStore` (promotions_postgres.py) on the database server replicas share.

One active promotion per copilot is a unique index, so two processes starting one at
the same moment cannot both succeed. Stage changes are compare-and-set updates (one
statement: of two servers moving the same step, one moves it). Counts are rows of
samples, so samples written by several servers at once add up.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from pilothouse.config import Settings
from pilothouse.errors import NotFoundError
from pilothouse.storage.promotion_records import (
    ACTIVE,
    Arm,
    PromotionConflictError,
    PromotionEvent,
    PromotionRecord,
    Sample,
    Stage,
)
from pilothouse.storage.sql import Session, prefix_match, prefix_params
from pilothouse.storage.sqlite import MigratedStore

COMPONENT = "promotions"
MIGRATIONS: tuple[str, ...] = (
    f"""
    CREATE TABLE promotions (
        promotion_id  TEXT PRIMARY KEY,
        copilot       TEXT NOT NULL,
        folder        TEXT NOT NULL,
        current       TEXT NOT NULL,
        candidate     TEXT NOT NULL,
        stage         TEXT NOT NULL,
        status        TEXT NOT NULL,
        step          INTEGER NOT NULL DEFAULT 0,
        created       REAL NOT NULL,
        updated       REAL NOT NULL,
        stage_started REAL NOT NULL,
        prompt        TEXT,
        variants      INTEGER NOT NULL DEFAULT 1,
        policy        TEXT NOT NULL DEFAULT '{{}}',
        eval_run      TEXT,
        offline       TEXT NOT NULL DEFAULT '{{}}',
        reason        TEXT,
        report        TEXT,
        previous      TEXT NOT NULL DEFAULT '{{}}',
        started_by    TEXT
    );
    CREATE UNIQUE INDEX promotions_one_active ON promotions (copilot)
        WHERE status IN ({", ".join(f"'{s}'" for s in ACTIVE)});
    CREATE INDEX promotions_by_created ON promotions (created DESC);
    CREATE TABLE promotion_events (
        promotion_id TEXT NOT NULL,
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        at           REAL NOT NULL,
        stage        TEXT NOT NULL,
        step         INTEGER NOT NULL,
        kind         TEXT NOT NULL,
        message      TEXT NOT NULL,
        data         TEXT NOT NULL DEFAULT '{{}}'
    );
    CREATE INDEX promotion_events_by_id ON promotion_events (promotion_id, seq);
    CREATE TABLE promotion_samples (
        promotion_id    TEXT NOT NULL,
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        at              REAL NOT NULL,
        stage           TEXT NOT NULL,
        step            INTEGER NOT NULL,
        arm             TEXT NOT NULL,
        run_id          TEXT,
        pair            TEXT,
        conversation_id TEXT,
        error           TEXT,
        vals            TEXT NOT NULL DEFAULT '{{}}'
    );
    CREATE INDEX promotion_samples_by_stage ON promotion_samples (promotion_id, stage, step, arm);
    CREATE TABLE promotion_assignments (
        promotion_id TEXT NOT NULL,
        key          TEXT NOT NULL,
        arm          TEXT NOT NULL,
        at           REAL NOT NULL,
        PRIMARY KEY (promotion_id, key)
    )
    """,
)

_JSON_FIELDS = ("policy", "offline", "previous")
COLUMNS = (
    "promotion_id",
    "copilot",
    "folder",
    "current",
    "candidate",
    "stage",
    "status",
    "step",
    "created",
    "updated",
    "stage_started",
    "prompt",
    "variants",
    "policy",
    "eval_run",
    "offline",
    "reason",
    "report",
    "previous",
    "started_by",
)


class SqlPromotionStore:
    """The promotion store's statements; a backend gives the session they run on, the
    errors its unique indexes raise and the column that orders promotions created at
    the same moment."""

    TIEBREAK = "promotion_id"

    def _session(self, *, write: bool = False) -> AbstractContextManager[Session]:
        raise NotImplementedError

    def _conflicts(self) -> tuple[type[Exception], ...]:
        raise NotImplementedError

    # --- promotions -------------------------------------------------------------------

    def create(self, record: PromotionRecord) -> None:
        row = _row(record)
        try:
            with self._session(write=True) as db:
                db.execute(
                    f"INSERT INTO promotions ({', '.join(COLUMNS)}) "
                    f"VALUES ({', '.join('?' for _ in COLUMNS)})",
                    [row[c] for c in COLUMNS],
                )
        except self._conflicts():
            found = self.active(record.copilot)
            which = f" ({found.promotion_id}, {found.stage}, {found.status})" if found else ""
            raise PromotionConflictError(
                f"copilot {record.copilot!r} has a promotion under way{which}: one at a time; "
                f"see `pilothouse promotion status {record.copilot}` (abort it to start anew)"
            ) from None

    def get(self, promotion_id: str) -> PromotionRecord:
        wanted = promotion_id.strip()
        with self._session() as db:
            rows = db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM promotions WHERE "
                f"{prefix_match('promotion_id')} ORDER BY created DESC LIMIT 3",
                prefix_params(wanted),
            ).fetchall()
        exact = [r for r in rows if r[0] == wanted]
        if exact:
            return _record(exact[0])
        if not wanted or not rows:
            raise NotFoundError(f"no promotion {promotion_id!r}; see `pilothouse promotion list`")
        if len(rows) > 1:
            raise NotFoundError(f"promotion id {promotion_id!r} is ambiguous; give more characters")
        return _record(rows[0])

    def active(self, copilot: str) -> PromotionRecord | None:
        with self._session() as db:
            row = db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM promotions WHERE copilot = ? AND status IN "
                f"({', '.join('?' for _ in ACTIVE)})",
                (copilot, *ACTIVE),
            ).fetchone()
        return _record(row) if row else None

    def list_promotions(
        self, *, copilot: str | None = None, limit: int = 20
    ) -> list[PromotionRecord]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM promotions"
        params: list[Any] = []
        if copilot is not None:
            sql += " WHERE copilot = ?"
            params.append(copilot)
        sql += f" ORDER BY created DESC, {self.TIEBREAK} DESC LIMIT ?"
        params.append(max(0, limit))
        with self._session() as db:
            rows = db.execute(sql, params).fetchall()
        return [_record(r) for r in rows]

    def update(
        self,
        promotion_id: str,
        *,
        expect: Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> bool:
        unknown = sorted((set(changes) | set(expect or {})) - set(COLUMNS))
        if unknown:
            raise ValueError(f"promotions have no field {', '.join(unknown)}")
        values = {k: _to_column(k, v) for k, v in changes.items()}
        values.setdefault("updated", time.time())
        sets = ", ".join(f"{k} = ?" for k in values)
        where = ["promotion_id = ?"]
        params: list[Any] = [*values.values(), promotion_id]
        for key, value in (expect or {}).items():
            if value is None:
                where.append(f"{key} IS NULL")
            else:
                where.append(f"{key} = ?")
                params.append(_to_column(key, value))
        try:
            with self._session(write=True) as db:
                cursor = db.execute(
                    f"UPDATE promotions SET {sets} WHERE {' AND '.join(where)}", params
                )
        except self._conflicts():
            raise PromotionConflictError(
                f"promotion {promotion_id}: its copilot has another promotion under way"
            ) from None
        return cursor.rowcount == 1

    # --- the timeline -------------------------------------------------------------------

    def add_event(self, promotion_id: str, event: PromotionEvent) -> None:
        with self._session(write=True) as db:
            db.execute(
                "INSERT INTO promotion_events (promotion_id, at, stage, step, kind, message, "
                "data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    promotion_id,
                    event.at or time.time(),
                    event.stage,
                    event.step,
                    event.kind,
                    event.message,
                    _dumps(event.data),
                ),
            )

    def events(self, promotion_id: str) -> list[PromotionEvent]:
        with self._session() as db:
            rows = db.execute(
                "SELECT at, stage, step, kind, message, data FROM promotion_events "
                "WHERE promotion_id = ? ORDER BY seq",
                (promotion_id,),
            ).fetchall()
        return [
            PromotionEvent(float(at), str(st), int(sp), str(k), str(m), json.loads(d or "{}"))
            for at, st, sp, k, m, d in rows
        ]

    # --- samples ------------------------------------------------------------------------

    def add_sample(self, promotion_id: str, sample: Sample) -> None:
        with self._session(write=True) as db:
            db.execute(
                "INSERT INTO promotion_samples (promotion_id, at, stage, step, arm, run_id, "
                "pair, conversation_id, error, vals) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    promotion_id,
                    sample.at or time.time(),
                    sample.stage,
                    sample.step,
                    sample.arm,
                    sample.run_id,
                    sample.pair,
                    sample.conversation_id,
                    sample.error,
                    _dumps(dict(sample.values)),
                ),
            )

    def samples(self, promotion_id: str, stage: Stage, step: int | None = None) -> list[Sample]:
        sql = (
            "SELECT stage, step, arm, vals, at, run_id, pair, conversation_id, error "
            "FROM promotion_samples WHERE promotion_id = ? AND stage = ?"
        )
        params: list[Any] = [promotion_id, stage]
        if step is not None:
            sql += " AND step = ?"
            params.append(step)
        with self._session() as db:
            rows = db.execute(sql + " ORDER BY seq", params).fetchall()
        return [
            Sample(st, int(sp), arm, json.loads(v or "{}"), float(at), rid, pair, conv, err)
            for st, sp, arm, v, at, rid, pair, conv, err in rows
        ]

    def count(self, promotion_id: str, stage: Stage, step: int, arm: Arm) -> int:
        with self._session() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM promotion_samples WHERE promotion_id = ? AND stage = ? "
                "AND step = ? AND arm = ?",
                (promotion_id, stage, step, arm),
            ).fetchone()
        return int(row[0])

    # --- canary assignments ---------------------------------------------------------------

    def assign(self, promotion_id: str, key: str, arm: Arm) -> Arm:
        with self._session(write=True) as db:
            db.execute(
                "INSERT INTO promotion_assignments (promotion_id, key, arm, at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (promotion_id, key) DO NOTHING",
                (promotion_id, key, arm, time.time()),
            )
            row = db.execute(
                "SELECT arm FROM promotion_assignments WHERE promotion_id = ? AND key = ?",
                (promotion_id, key),
            ).fetchone()
        stored: Arm = row[0]
        return stored

    def assignments(self, promotion_id: str) -> dict[str, Arm]:
        with self._session() as db:
            rows = db.execute(
                "SELECT key, arm FROM promotion_assignments WHERE promotion_id = ?",
                (promotion_id,),
            ).fetchall()
        return {str(k): a for k, a in rows}


class SqlitePromotionStore(MigratedStore, SqlPromotionStore):
    """The promotion store in SQLite; thread-safe (one connection behind a lock)."""

    COMPONENT = COMPONENT
    MIGRATIONS = MIGRATIONS
    TIEBREAK = "rowid"

    def _conflicts(self) -> tuple[type[Exception], ...]:
        return (sqlite3.IntegrityError,)


def open_sqlite_store(path: Path, settings: Settings) -> SqlitePromotionStore:
    """The sqlite backend's factory for `promotions` (storage/backends.py)."""
    del settings
    return SqlitePromotionStore(path)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _to_column(name: str, value: Any) -> Any:
    if name in _JSON_FIELDS:
        return _dumps(value)
    if name == "variants":
        return int(bool(value))
    return value


def _row(record: PromotionRecord) -> dict[str, Any]:
    return {c: _to_column(c, getattr(record, c)) for c in COLUMNS}


def _record(row: Sequence[Any]) -> PromotionRecord:
    data = dict(zip(COLUMNS, row, strict=True))
    for name in _JSON_FIELDS:
        data[name] = json.loads(data[name] or "{}")
    data["variants"] = bool(data["variants"])
    return PromotionRecord(**data)
