"""Runs and their spans, kept in the data directory's SQLite database.

`TraceStore` is a `SpanSink`: give it to a `Tracer` and every finished trace is written
in one transaction (all its spans, then its `runs` row). A run's id is its trace id.

Run-level figures are derived from the spans (runs.py); spans delivered late (ended
after their root) are added to the run and the figures recomputed. A trace whose root
never arrived has spans but no `runs` row. `open_tracer` (tracer.py) wires the store
to a `Tracer`.
`prune` deletes old runs and their spans (retention.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pilothouse.config import Settings
from pilothouse.errors import NotFoundError
from pilothouse.storage.retention import PruneReport, prune_traces
from pilothouse.storage.runs import (
    RunDetail,
    RunSummary,
    derive_run,
)
from pilothouse.storage.sqlite import MigratedStore, transaction
from pilothouse.tracing import Span

__all__ = [
    "COMPONENT",
    "MIGRATIONS",
    "TraceStore",
]

COMPONENT = "traces"

MIGRATIONS: tuple[str, ...] = (
    # 1: runs (one row per trace, derived from its spans) and spans
    """
    CREATE TABLE runs (
        run_id          TEXT PRIMARY KEY,
        name            TEXT NOT NULL,
        copilot         TEXT,
        conversation_id TEXT,
        started         REAL NOT NULL,
        ended           REAL,
        duration_s      REAL,
        status          TEXT NOT NULL,
        error           TEXT,
        question        TEXT,
        answer          TEXT,
        model           TEXT,
        input_tokens    INTEGER NOT NULL DEFAULT 0,
        output_tokens   INTEGER NOT NULL DEFAULT 0,
        cached_tokens   INTEGER NOT NULL DEFAULT 0,
        cost_usd        REAL,
        span_count      INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX runs_by_started ON runs (started DESC);
    CREATE INDEX runs_by_copilot ON runs (copilot, started DESC);
    CREATE INDEX runs_by_conversation ON runs (conversation_id, started);
    CREATE TABLE spans (
        trace_id    TEXT NOT NULL,
        span_id     TEXT NOT NULL,
        parent_id   TEXT,
        name        TEXT NOT NULL,
        kind        TEXT NOT NULL,
        start_time  REAL NOT NULL,
        end_time    REAL,
        duration_s  REAL,
        status      TEXT NOT NULL,
        error       TEXT,
        error_type  TEXT,
        attributes  TEXT NOT NULL DEFAULT '{}',
        events      TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (trace_id, span_id)
    );
    CREATE INDEX spans_by_parent ON spans (trace_id, parent_id)
    """,
    # 2: runs.status is the run's own status (completed, step_limit, awaiting_approval,
    # failed, cancelled), no longer the root span's ok/error. Earlier versions marked a
    # run that had answered as an error when its consumer closed the stream after the
    # answer (GeneratorExit), and so the answering model of a fallback chain: those
    # spans are ok again, and every run's status is derived anew (see runs.py).
    """
    UPDATE spans SET status = 'ok', error = NULL, error_type = NULL
    WHERE error_type = 'GeneratorExit' AND json_valid(attributes) AND (
        (parent_id IS NULL AND json_extract(attributes, '$."pilothouse.run.status"')
            IN ('completed', 'step_limit', 'awaiting_approval'))
        OR (kind = 'model' AND json_extract(attributes, '$."gen_ai.response.finish_reasons"[0]')
                IN ('stop', 'length', 'tool_calls', 'content_filter'))
    );
    UPDATE spans SET status = 'error',
        error = COALESCE(error, 'the run failed (this earlier version kept no error)')
    WHERE parent_id IS NULL AND status = 'ok' AND json_valid(attributes)
        AND json_extract(attributes, '$."pilothouse.run.status"') = 'failed';
    UPDATE spans SET attributes = json_set(attributes, '$."pilothouse.model.status"',
        CASE WHEN status = 'ok' THEN 'completed'
             WHEN error_type IN ('GeneratorExit', 'CancelledError') THEN 'cancelled'
             ELSE 'failed' END)
    WHERE kind = 'model' AND json_valid(attributes);
    UPDATE runs SET
        status = COALESCE(
            (SELECT json_extract(s.attributes, '$."pilothouse.run.status"') FROM spans s
             WHERE s.trace_id = runs.run_id AND s.parent_id IS NULL
               AND json_valid(s.attributes)
               AND json_extract(s.attributes, '$."pilothouse.run.status"')
                   IN ('completed', 'step_limit', 'awaiting_approval', 'failed', 'cancelled')),
            CASE WHEN status = 'ok' THEN 'completed'
                 WHEN (SELECT s.error_type FROM spans s WHERE s.trace_id = runs.run_id
                       AND s.parent_id IS NULL)
                      IN ('GeneratorExit', 'CancelledError', 'KeyboardInterrupt')
                 THEN 'cancelled'
                 ELSE 'failed' END),
        error = (SELECT s.error FROM spans s WHERE s.trace_id = runs.run_id
                 AND s.parent_id IS NULL)
    """,
    # 3: the API key (its id) that started the run; NULL without a key
    "ALTER TABLE runs ADD COLUMN key_id TEXT",
    # 4: the promotion a run belongs to (mirrored or routed by it) and its role there
    """
    ALTER TABLE runs ADD COLUMN promotion_id TEXT;
    ALTER TABLE runs ADD COLUMN promotion_role TEXT
    """,
)

_RUN_COLUMNS = (
    "run_id",
    "name",
    "copilot",
    "conversation_id",
    "started",
    "ended",
    "duration_s",
    "status",
    "error",
    "question",
    "answer",
    "model",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "span_count",
    "key_id",
    "promotion_id",
    "promotion_role",
)
_SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_id",
    "name",
    "kind",
    "start_time",
    "end_time",
    "duration_s",
    "status",
    "error",
    "error_type",
    "attributes",
    "events",
)


class TraceStore(MigratedStore):
    """Runs and spans in SQLite; also a `SpanSink`.

    Thread-safe (one connection behind a lock). `export` writes one trace in one short
    transaction on the calling thread, typically a few milliseconds; in a server, call
    `aexport` or wrap the store in `tracing.BackgroundSink` to keep the event loop free.
    """

    COMPONENT = COMPONENT
    MIGRATIONS = MIGRATIONS

    @classmethod
    def for_settings(cls, settings: Settings) -> TraceStore:
        """The store of the settings' storage backend (the data directory's database,
        or the shared PostgreSQL one)."""
        from pilothouse.storage.backends import open_store

        store: TraceStore = open_store(settings, "traces")
        return store

    # --- writing ------------------------------------------------------------------

    def export(self, spans: Sequence[Span]) -> None:
        """Store spans (one trace or a late part of one) and refresh their runs."""
        if not spans:
            return
        rows = [_span_row(s) for s in spans]
        traces = sorted({s.trace_id for s in spans})
        with self._lock, transaction(self._conn):
            self._conn.executemany(
                f"INSERT OR REPLACE INTO spans ({', '.join(_SPAN_COLUMNS)}) "
                f"VALUES ({', '.join('?' for _ in _SPAN_COLUMNS)})",
                rows,
            )
            for trace_id in traces:
                self._refresh_run(trace_id)

    async def aexport(self, spans: Sequence[Span]) -> None:
        """`export` on a worker thread, for callers on an event loop."""
        await asyncio.to_thread(self.export, spans)

    def _refresh_run(self, trace_id: str) -> None:
        stored = self._spans_of(trace_id)
        summary = derive_run(stored)
        if summary is None:
            return
        values = [getattr(summary, c) for c in _RUN_COLUMNS]
        self._conn.execute(
            f"INSERT OR REPLACE INTO runs ({', '.join(_RUN_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in _RUN_COLUMNS)})",
            values,
        )

    # --- retention ----------------------------------------------------------------

    def prune(self, older_than: float, *, dry_run: bool = False) -> PruneReport:
        """Delete, in one transaction, the runs that ended (or, never ended, started)
        before the unix timestamp `older_than`, with their spans, and the spans of
        runless traces whose newest span is older. Runs paused for approval are kept.
        `dry_run` counts what would go and deletes nothing. See storage/retention.py."""
        with self._lock:
            return prune_traces(self._conn, older_than, dry_run=dry_run)

    # --- reading ------------------------------------------------------------------

    def list_runs(
        self, limit: int = 20, copilot: str | None = None, promotion: str | None = None
    ) -> list[RunSummary]:
        """The most recent runs first, optionally of one copilot, or of one promotion
        (its id, or a prefix of it)."""
        sql = f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs"
        where: list[str] = []
        params: list[Any] = []
        if copilot is not None:
            where.append("copilot = ?")
            params.append(copilot)
        if promotion is not None:
            # substr, not a range: PostgreSQL's collations do not order ids bytewise
            where.append("substr(promotion_id, 1, ?) = ?")
            params += [len(promotion), promotion]
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started DESC LIMIT ?"
        params.append(max(0, limit))
        return [RunSummary(*row) for row in self._rows(sql, params)]

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of one query (`?` placeholders; a backend may translate them)."""
        with self._lock:
            return [tuple(r) for r in self._conn.execute(sql, params).fetchall()]

    def resolve_run_id(self, prefix: str) -> str:
        """The full run id that `prefix` starts (case-insensitive); NotFoundError when
        none or several do."""
        wanted = prefix.strip().lower()
        if not wanted or any(c not in "0123456789abcdef" for c in wanted):
            raise NotFoundError(
                f"{prefix!r} is not a run id: run ids are hexadecimal; see `pilothouse runs`"
            )
        rows = self._rows(
            "SELECT run_id FROM runs WHERE run_id >= ? AND run_id < ? "
            "ORDER BY started DESC LIMIT 6",
            (wanted, wanted + "g"),
        )
        if not rows:
            raise NotFoundError(f"no run with id {prefix!r} in {self.path}; see `pilothouse runs`")
        if len(rows) > 1:
            shown = ", ".join(r[0][: len(wanted) + 4] for r in rows[:5])
            raise NotFoundError(
                f"run id prefix {prefix!r} matches several runs ({shown}"
                f"{', ...' if len(rows) > 5 else ''}); give more characters"
            )
        return str(rows[0][0])

    def get_run(self, run_id: str) -> RunDetail:
        """A run and its spans; `run_id` may be an unambiguous prefix."""
        full = self.resolve_run_id(run_id)
        with self._lock:
            row = self._conn.execute(
                f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE run_id = ?", (full,)
            ).fetchone()
            spans = self._spans_of(full)
        return RunDetail(RunSummary(*row), spans)

    def _spans_of(self, trace_id: str) -> list[Span]:
        rows = self._conn.execute(
            f"SELECT {', '.join(_SPAN_COLUMNS)} FROM spans WHERE trace_id = ? "
            "ORDER BY start_time, rowid",
            (trace_id,),
        ).fetchall()
        return [_span_from_row(r) for r in rows]


def open_sqlite_store(path: Path, settings: Settings) -> TraceStore:
    """The sqlite backend's factory for `traces` (storage/backends.py)."""
    del settings
    return TraceStore(path)


def _span_row(span: Span) -> tuple[Any, ...]:
    data = span.to_dict()
    data["attributes"] = json.dumps(data["attributes"], ensure_ascii=False, default=str)
    data["events"] = json.dumps(data["events"], ensure_ascii=False, default=str)
    return tuple(data[c] for c in _SPAN_COLUMNS)


def _span_from_row(row: Sequence[Any]) -> Span:
    data = dict(zip(_SPAN_COLUMNS, row, strict=True))
    data["attributes"] = _loads(data["attributes"], {})
    data["events"] = _loads(data["events"], [])
    return Span.from_dict(data)


def _loads(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return default
