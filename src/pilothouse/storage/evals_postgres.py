"""Eval runs in PostgreSQL: `pilothouse eval list|show|compare` and the management
API's `/api/evals` see every replica's runs (and the CLI's, when it has the same
storage URL), and a promotion's offline stage, run on one replica, is read on all.

The statements are SQLite's (evals.py); only the tables' types differ. A case is one
transaction with its scores, as on SQLite.
"""

from __future__ import annotations

from pilothouse.config import Settings
from pilothouse.storage.evals import COMPONENT, EvalStore
from pilothouse.storage.postgres import PostgresDatabase, PostgresStatements

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE eval_runs (
        run_id    TEXT PRIMARY KEY,
        copilot   TEXT NOT NULL,
        folder    TEXT NOT NULL,
        created   DOUBLE PRECISION NOT NULL,
        finished  DOUBLE PRECISION,
        status    TEXT NOT NULL,
        total     INTEGER NOT NULL,
        plan      TEXT NOT NULL
    );
    CREATE INDEX eval_runs_by_created ON eval_runs (created DESC);
    CREATE TABLE eval_arms (
        run_id    TEXT NOT NULL,
        arm       INTEGER NOT NULL,
        label     TEXT NOT NULL,
        model     TEXT NOT NULL,
        variants  INTEGER NOT NULL,
        prompt    TEXT,
        PRIMARY KEY (run_id, arm)
    );
    CREATE TABLE eval_cases (
        run_id    TEXT NOT NULL,
        arm       INTEGER NOT NULL,
        suite     TEXT NOT NULL,
        case_id   TEXT NOT NULL,
        rep       INTEGER NOT NULL,
        status    TEXT NOT NULL,
        question  TEXT NOT NULL,
        answer    TEXT NOT NULL,
        model     TEXT,
        trace_id  TEXT,
        error     TEXT,
        details   TEXT NOT NULL DEFAULT '{}',
        finished  DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (run_id, arm, suite, case_id, rep)
    );
    CREATE TABLE eval_scores (
        run_id    TEXT NOT NULL,
        arm       INTEGER NOT NULL,
        suite     TEXT NOT NULL,
        case_id   TEXT NOT NULL,
        rep       INTEGER NOT NULL,
        metric    TEXT NOT NULL,
        judge     TEXT NOT NULL DEFAULT '',
        value     DOUBLE PRECISION,
        detail    TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (run_id, arm, metric, judge, suite, case_id, rep)
    );
    CREATE INDEX eval_scores_by_case ON eval_scores (run_id, arm, suite, case_id, rep)
    """,
)
"""SQLite's three migrations (evals.py) as one, in PostgreSQL's types; a later change
is a new migration on both lists."""


class PostgresEvalStore(PostgresStatements, EvalStore):
    """Eval runs, their cases and scores in PostgreSQL (see the module docstring)."""

    def __init__(self, database: PostgresDatabase) -> None:
        self.path = database.display  # type: ignore[assignment]  # named in messages
        self._open(database, COMPONENT, MIGRATIONS)


def open_store(database: PostgresDatabase, settings: Settings) -> PostgresEvalStore:
    """The postgresql backend's factory for `evals` (storage/backends.py)."""
    del settings
    return PostgresEvalStore(database)
