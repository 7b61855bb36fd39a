"""Retention: deleting old runs and their spans from the trace tables.

`prune_traces(conn, older_than)` deletes, in one transaction:

- every run that ended before `older_than` (a unix timestamp), or started before it
  when it has no end time, with all its spans (a run's id is its trace id);
- every trace that has spans but no run row (its root never arrived) whose newest span
  is older than `older_than`.

A run that is still running has no row yet (the tracer delivers a trace when its run
span ends), so it cannot be deleted. A run paused for an approval decision is kept
whatever its age, so that it can still be inspected and resumed: it is listed in the
`paused_runs` table, which the copilot layer keeps in the same database
(`pilothouse.copilot.paused_runs`). The traces of its earlier resumptions (runs whose
root span says `pilothouse.run.resumes: <paused run id>`) are kept with it.

`TraceStore.prune` (traces.py) calls this with the store's connection and lock.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass

from pilothouse.tracing.attributes import RUN_RESUMES

__all__ = [
    "PAUSED_RUNS_TABLE",
    "SECONDS_PER_DAY",
    "PruneReport",
    "cutoff",
    "prune_traces",
]

SECONDS_PER_DAY = 86_400.0
# Owned by pilothouse.copilot.paused_runs (a higher layer), read here by name only.
PAUSED_RUNS_TABLE = "paused_runs"


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What a prune deleted (or, for a dry run, would delete)."""

    runs: int
    spans: int


def cutoff(keep_days: float, now: float) -> float | None:
    """The `older_than` timestamp for keeping `keep_days` days before `now`; None when
    `keep_days` is 0 (keep forever)."""
    if keep_days == 0:
        return None
    return now - keep_days * SECONDS_PER_DAY


def prune_traces(
    conn: sqlite3.Connection, older_than: float, *, dry_run: bool = False
) -> PruneReport:
    """Delete the runs and spans older than `older_than` (see the module docstring) in
    one transaction; with `dry_run`, count them and delete nothing."""
    if not math.isfinite(older_than):
        raise ValueError(f"older_than must be a finite unix timestamp, not {older_than!r}")
    # A dry run only writes to its temporary table: a deferred transaction, no write
    # lock on the database, rolled back at the end.
    conn.execute("BEGIN" if dry_run else "BEGIN IMMEDIATE")
    try:
        _select_doomed(conn, older_than)
        if dry_run:
            report = PruneReport(
                runs=_count(conn, "runs", "run_id"), spans=_count(conn, "spans", "trace_id")
            )
        else:
            spans = conn.execute(
                "DELETE FROM spans WHERE trace_id IN (SELECT trace_id FROM temp.prune_doomed)"
            ).rowcount
            runs = conn.execute(
                "DELETE FROM runs WHERE run_id IN (SELECT trace_id FROM temp.prune_doomed)"
            ).rowcount
            report = PruneReport(runs=runs, spans=spans)
        conn.execute("DELETE FROM temp.prune_doomed")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("ROLLBACK" if dry_run else "COMMIT")
    return report


def _select_doomed(conn: sqlite3.Connection, older_than: float) -> None:
    """Fill the temporary table with the trace ids to delete."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS prune_doomed (trace_id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM temp.prune_doomed")
    conn.execute(
        "INSERT INTO temp.prune_doomed (trace_id) "
        "SELECT run_id FROM runs WHERE COALESCE(ended, started) < ?",
        (older_than,),
    )
    # Orphans: traces with spans but no run, all of whose spans are old.
    conn.execute(
        "INSERT OR IGNORE INTO temp.prune_doomed (trace_id) "
        "SELECT trace_id FROM spans WHERE trace_id NOT IN (SELECT run_id FROM runs) "
        "GROUP BY trace_id HAVING MAX(COALESCE(end_time, start_time)) < ?",
        (older_than,),
    )
    if not _has_table(conn, PAUSED_RUNS_TABLE):
        return
    conn.execute(
        f"DELETE FROM temp.prune_doomed WHERE trace_id IN (SELECT run_id FROM {PAUSED_RUNS_TABLE})"
    )
    # CASE, not AND: SQLite does not promise to test json_valid first, and json_extract
    # raises on malformed JSON.
    conn.execute(
        "DELETE FROM temp.prune_doomed WHERE EXISTS ("
        "SELECT 1 FROM spans s WHERE s.trace_id = prune_doomed.trace_id "
        "AND s.parent_id IS NULL AND CASE WHEN json_valid(s.attributes) "
        "THEN json_extract(s.attributes, ?) END "
        f"IN (SELECT run_id FROM {PAUSED_RUNS_TABLE}))",
        (f'$."{RUN_RESUMES}"',),
    )


def _count(conn: sqlite3.Connection, table: str, column: str) -> int:
    row = conn.execute(
        f"SELECT COUNT(*) FROM {table} WHERE {column} IN (SELECT trace_id FROM temp.prune_doomed)"
    ).fetchone()
    return int(row[0])


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None
