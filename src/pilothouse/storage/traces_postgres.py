"""Runs and their spans in PostgreSQL: the trace store's interface (`TraceStore`) over
a database every server replica writes to, so `pilothouse runs` and the management
API list the runs of all replicas. Each exported trace is one transaction (its spans,
then its `runs` row derived from all the trace's spans, as in SQLite)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pilothouse.config import Settings
from pilothouse.errors import NotFoundError
from pilothouse.storage.postgres import PostgresDatabase
from pilothouse.storage.retention import PAUSED_RUNS_TABLE, PruneReport
from pilothouse.storage.runs import RunDetail, RunSummary, derive_run
from pilothouse.storage.traces import (
    _RUN_COLUMNS,
    _SPAN_COLUMNS,
    COMPONENT,
    TraceStore,
    _span_from_row,
    _span_row,
)
from pilothouse.tracing import Span
from pilothouse.tracing.attributes import RUN_RESUMES

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        run_id          TEXT PRIMARY KEY,
        name            TEXT NOT NULL,
        copilot         TEXT,
        conversation_id TEXT,
        started         DOUBLE PRECISION NOT NULL,
        ended           DOUBLE PRECISION,
        duration_s      DOUBLE PRECISION,
        status          TEXT NOT NULL,
        error           TEXT,
        question        TEXT,
        answer          TEXT,
        model           TEXT,
        input_tokens    BIGINT NOT NULL DEFAULT 0,
        output_tokens   BIGINT NOT NULL DEFAULT 0,
        cached_tokens   BIGINT NOT NULL DEFAULT 0,
        cost_usd        DOUBLE PRECISION,
        span_count      INTEGER NOT NULL DEFAULT 0,
        key_id          TEXT
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
        start_time  DOUBLE PRECISION NOT NULL,
        end_time    DOUBLE PRECISION,
        duration_s  DOUBLE PRECISION,
        status      TEXT NOT NULL,
        error       TEXT,
        error_type  TEXT,
        attributes  TEXT NOT NULL DEFAULT '{}',
        events      TEXT NOT NULL DEFAULT '[]',
        seq         BIGINT GENERATED ALWAYS AS IDENTITY,
        PRIMARY KEY (trace_id, span_id)
    );
    CREATE INDEX spans_by_parent ON spans (trace_id, parent_id)
    """,
    # 2: the promotion a run belongs to (mirrored or routed by it) and its role there
    """
    ALTER TABLE runs ADD COLUMN promotion_id TEXT;
    ALTER TABLE runs ADD COLUMN promotion_role TEXT
    """,
)

_SPAN_UPSERT = (
    f"INSERT INTO spans ({', '.join(_SPAN_COLUMNS)}) "
    f"VALUES ({', '.join('%s' for _ in _SPAN_COLUMNS)}) ON CONFLICT (trace_id, span_id) "
    f"DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in _SPAN_COLUMNS[2:])}"
)
_RUN_UPSERT = (
    f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) "
    f"VALUES ({', '.join('%s' for _ in _RUN_COLUMNS)}) ON CONFLICT (run_id) "
    f"DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in _RUN_COLUMNS[1:])}"
)


class PostgresTraceStore(TraceStore):
    """Runs and spans in PostgreSQL; also a `SpanSink` (see the module docstring)."""

    def __init__(self, database: PostgresDatabase) -> None:
        self.path = database.display  # type: ignore[assignment]  # named in messages
        self.database = database
        database.migrate(COMPONENT, MIGRATIONS)

    def close(self) -> None:
        """Nothing to close: the connection pool belongs to the settings."""

    # --- writing ------------------------------------------------------------------

    def export(self, spans: Sequence[Span]) -> None:
        if not spans:
            return
        rows = [_span_row(s) for s in spans]
        with self.database.transaction() as conn:
            with conn.cursor() as cursor:
                cursor.executemany(_SPAN_UPSERT, rows)
            for trace_id in sorted({s.trace_id for s in spans}):
                summary = derive_run(self._spans_in(conn, trace_id))
                if summary is not None:
                    conn.execute(_RUN_UPSERT, [getattr(summary, c) for c in _RUN_COLUMNS])

    # --- retention ----------------------------------------------------------------

    def prune(self, older_than: float, *, dry_run: bool = False) -> PruneReport:
        """As `TraceStore.prune`: old runs with their spans, and old runless traces;
        runs paused for approval (and the traces that resumed them) are kept."""
        if not math.isfinite(older_than):
            raise ValueError(f"older_than must be a finite unix timestamp, not {older_than!r}")
        doomed = (
            "SELECT run_id AS trace_id FROM runs WHERE COALESCE(ended, started) < %(cut)s "
            "UNION SELECT trace_id FROM spans WHERE trace_id NOT IN (SELECT run_id FROM runs) "
            "GROUP BY trace_id HAVING MAX(COALESCE(end_time, start_time)) < %(cut)s"
        )
        params: dict[str, Any] = {"cut": older_than, "resumes": RUN_RESUMES}
        with self.database.transaction() as conn:
            if _has_table(conn, PAUSED_RUNS_TABLE):
                doomed = (
                    f"SELECT trace_id FROM ({doomed}) d WHERE trace_id NOT IN "
                    f"(SELECT run_id FROM {PAUSED_RUNS_TABLE}) AND NOT EXISTS ("
                    "SELECT 1 FROM spans s WHERE s.trace_id = d.trace_id AND s.parent_id IS NULL "
                    "AND s.attributes::jsonb ->> %(resumes)s IN "
                    f"(SELECT run_id FROM {PAUSED_RUNS_TABLE}))"
                )
            conn.execute(f"CREATE TEMP TABLE prune_doomed ON COMMIT DROP AS {doomed}", params)
            if dry_run:
                runs, spans = conn.execute(
                    "SELECT (SELECT COUNT(*) FROM runs WHERE run_id IN "
                    "(SELECT trace_id FROM prune_doomed)), (SELECT COUNT(*) FROM spans WHERE "
                    "trace_id IN (SELECT trace_id FROM prune_doomed))"
                ).fetchone() or (0, 0)
                return PruneReport(runs=int(runs), spans=int(spans))
            spans = conn.execute(
                "DELETE FROM spans WHERE trace_id IN (SELECT trace_id FROM prune_doomed)"
            ).rowcount
            runs = conn.execute(
                "DELETE FROM runs WHERE run_id IN (SELECT trace_id FROM prune_doomed)"
            ).rowcount
        return PruneReport(runs=runs, spans=spans)

    # --- reading ------------------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self.database.bounded() as conn:
            rows = conn.execute(sql.replace("?", "%s"), params).fetchall()
        return [tuple(r) for r in rows]

    def get_run(self, run_id: str) -> RunDetail:
        full = self.resolve_run_id(run_id)
        with self.database.bounded_transaction() as conn:
            row = conn.execute(
                f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE run_id = %s", (full,)
            ).fetchone()
            spans = self._spans_in(conn, full)
        if row is None:
            raise NotFoundError(f"no run with id {run_id!r} in {self.path}")
        return RunDetail(RunSummary(*row), spans)

    def _spans_of(self, trace_id: str) -> list[Span]:
        with self.database.bounded() as conn:
            return self._spans_in(conn, trace_id)

    @staticmethod
    def _spans_in(conn: Any, trace_id: str) -> list[Span]:
        rows = conn.execute(
            f"SELECT {', '.join(_SPAN_COLUMNS)} FROM spans WHERE trace_id = %s "
            "ORDER BY start_time, seq",
            (trace_id,),
        ).fetchall()
        return [_span_from_row(r) for r in rows]


def _has_table(conn: Any, name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
    return row is not None and row[0] is not None


def open_store(database: PostgresDatabase, settings: Settings) -> PostgresTraceStore:
    """The postgresql backend's factory for `traces` (storage/backends.py)."""
    del settings
    return PostgresTraceStore(database)
