"""Eval runs: in the data directory's SQLite database (`EvalStore`), or in the
PostgreSQL database server replicas share (`PostgresEvalStore`, evals_postgres.py: the
same statements, storage/sql.py). `EvalStore.for_settings` opens the configured one;
the conformance suite is `pilothouse.testing.conformance.EVAL_STORES`.

An eval run (`ev-...`) is one `pilothouse eval` invocation: its plan, one *arm* per
model (and prompt-variant setting), one row per case and repeat, and the case's scores.
Each case is written in one transaction as soon as it finishes, so memory stays flat
and a run killed at any point resumes from what is stored.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pilothouse.config import Settings
from pilothouse.errors import NotFoundError
from pilothouse.storage.sql import NO_LIMIT, prefix_match, prefix_params
from pilothouse.storage.sqlite import MigratedStore

COMPONENT = "evals"
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE eval_runs (
        run_id    TEXT PRIMARY KEY,
        copilot   TEXT NOT NULL,
        folder    TEXT NOT NULL,
        created   REAL NOT NULL,
        finished  REAL,
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
        finished  REAL NOT NULL,
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
        value     REAL,
        detail    TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (run_id, arm, metric, judge, suite, case_id, rep)
    )
    """,
    # 2: a case's scores by case (rewriting a case scanned the whole arm: O(n^2) runs)
    "CREATE INDEX eval_scores_by_case ON eval_scores (run_id, arm, suite, case_id, rep)",
    # 3: an arm may give the copilot one prompt file for every model (a promotion's
    # candidate prompts); NULL: the instructions as `variants` says
    "ALTER TABLE eval_arms ADD COLUMN prompt TEXT",
)

CaseResult = Literal["passed", "failed", "error"]
RunStatus = Literal["running", "finished"]


def new_run_id() -> str:
    return "ev-" + secrets.token_hex(6)


@dataclass(frozen=True, slots=True)
class Arm:
    """One model (and prompt-variant setting) evaluated in a run."""

    number: int
    label: str
    model: str
    variants: bool = True
    prompt: str | None = None
    """A .prompty file (relative to the copilot folder) every model family gets."""


@dataclass(frozen=True, slots=True)
class EvalRun:
    run_id: str
    copilot: str
    folder: str
    created: float
    finished: float | None
    status: str
    total: int
    plan: dict[str, Any]
    arms: tuple[Arm, ...] = ()

    def arm(self, selector: str) -> Arm:
        """An arm by number (`1`), label or model id."""
        for arm in self.arms:
            if selector in (str(arm.number), arm.label):
                return arm
        by_model = [a for a in self.arms if a.model == selector]
        if len(by_model) == 1:
            return by_model[0]
        known = ", ".join(f"{a.number}: {a.label}" for a in self.arms)
        raise NotFoundError(f"eval run {self.run_id} has no arm {selector!r} (arms: {known})")


@dataclass(frozen=True, slots=True)
class ScoreRow:
    metric: str
    value: float | None
    detail: str = ""
    judge: str = ""


@dataclass(frozen=True, slots=True)
class CaseRow:
    arm: int
    suite: str
    case_id: str
    rep: int
    status: CaseResult
    question: str
    answer: str
    model: str | None = None
    trace_id: str | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    scores: tuple[ScoreRow, ...] = ()


_CASE_COLUMNS = (
    "arm, suite, case_id, rep, status, question, answer, model, trace_id, error, details"
)
_CASE_UPDATE = ", ".join(
    f"{c} = excluded.{c}"
    for c in ("status", "question", "answer", "model", "trace_id", "error", "details", "finished")
)


class EvalStore(MigratedStore):
    """Eval runs, their cases and scores; thread-safe (one connection behind a lock)."""

    COMPONENT = COMPONENT
    MIGRATIONS = MIGRATIONS

    @classmethod
    def for_settings(cls, settings: Settings) -> EvalStore:
        """The store of the settings' storage backend (the data directory's database,
        or the shared PostgreSQL one)."""
        from pilothouse.storage.backends import open_store

        store: EvalStore = open_store(settings, "evals")
        return store

    # --- writing ------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        *,
        copilot: str,
        folder: str,
        plan: dict[str, Any],
        arms: Sequence[Arm],
        total: int,
    ) -> None:
        with self._session(write=True) as db:
            db.execute(
                "INSERT INTO eval_runs (run_id, copilot, folder, created, status, total, plan) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?)",
                (run_id, copilot, folder, time.time(), total, json.dumps(plan)),
            )
            db.executemany(
                "INSERT INTO eval_arms (run_id, arm, label, model, variants, prompt) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, a.number, a.label, a.model, int(a.variants), a.prompt) for a in arms],
            )

    def set_status(self, run_id: str, status: RunStatus, *, total: int | None = None) -> None:
        finished = time.time() if status == "finished" else None
        with self._session(write=True) as db:
            db.execute(
                "UPDATE eval_runs SET status = ?, finished = ?, total = COALESCE(?, total) "
                "WHERE run_id = ?",
                (status, finished, total, run_id),
            )

    def record_case(self, run_id: str, row: CaseRow) -> None:
        """The case and its scores, in one transaction (replacing an earlier try)."""
        key = (run_id, row.arm, row.suite, row.case_id, row.rep)
        with self._session(write=True) as db:
            db.execute(
                "DELETE FROM eval_scores WHERE run_id = ? AND arm = ? AND suite = ? "
                "AND case_id = ? AND rep = ?",
                key,
            )
            db.execute(
                f"INSERT INTO eval_cases (run_id, {_CASE_COLUMNS}, finished) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                f"ON CONFLICT (run_id, arm, suite, case_id, rep) DO UPDATE SET {_CASE_UPDATE}",
                (
                    *key,
                    row.status,
                    row.question,
                    row.answer,
                    row.model,
                    row.trace_id,
                    row.error,
                    json.dumps(row.details, ensure_ascii=False, default=str),
                    time.time(),
                ),
            )
            db.executemany(
                "INSERT INTO eval_scores (run_id, arm, suite, case_id, rep, metric, judge, "
                "value, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, arm, "
                "metric, judge, suite, case_id, rep) DO UPDATE SET value = excluded.value, "
                "detail = excluded.detail",
                [(*key, s.metric, s.judge, s.value, s.detail) for s in row.scores],
            )

    # --- reading ------------------------------------------------------------------

    def resolve(self, prefix: str) -> str:
        wanted = prefix.strip()
        with self._session() as db:
            rows = db.execute(
                f"SELECT run_id FROM eval_runs WHERE {prefix_match('run_id')} "
                "ORDER BY created DESC LIMIT 6",
                prefix_params(wanted),
            ).fetchall()
        if not wanted or not rows:
            raise NotFoundError(
                f"no eval run {prefix!r} in {self.path}; see `pilothouse eval list`"
            )
        if len(rows) > 1 and rows[0][0] != wanted:
            raise NotFoundError(f"eval run id {prefix!r} is ambiguous; give more characters")
        return str(rows[0][0])

    def get_run(self, run_id: str) -> EvalRun:
        """A run with its arms; `run_id` may be an unambiguous prefix."""
        full = self.resolve(run_id)
        with self._session() as db:
            row = db.execute(
                "SELECT run_id, copilot, folder, created, finished, status, total, plan "
                "FROM eval_runs WHERE run_id = ?",
                (full,),
            ).fetchone()
            arms = db.execute(
                "SELECT arm, label, model, variants, prompt FROM eval_arms WHERE run_id = ? "
                "ORDER BY arm",
                (full,),
            ).fetchall()
        return _run(row, arms)

    def list_runs(self, limit: int = 20, copilot: str | None = None) -> list[EvalRun]:
        sql = "SELECT run_id FROM eval_runs"
        params: list[Any] = []
        if copilot is not None:
            sql += " WHERE copilot = ?"
            params.append(copilot)
        sql += " ORDER BY created DESC LIMIT ?"
        params.append(max(0, limit))
        with self._session() as db:
            ids = [r[0] for r in db.execute(sql, params).fetchall()]
        return [self.get_run(i) for i in ids]

    def done(self, run_id: str) -> set[tuple[int, str, str, int]]:
        """(arm, suite, case, repeat) of every case already recorded."""
        with self._session() as db:
            rows = db.execute(
                "SELECT arm, suite, case_id, rep FROM eval_cases WHERE run_id = ?", (run_id,)
            ).fetchall()
        return {(int(a), str(s), str(c), int(r)) for a, s, c, r in rows}

    def counts(self, run_id: str, arm: int) -> dict[str, int]:
        """Cases by result: passed, failed, error."""
        with self._session() as db:
            rows = db.execute(
                "SELECT status, COUNT(*) FROM eval_cases WHERE run_id = ? AND arm = ? "
                "GROUP BY status",
                (run_id, arm),
            ).fetchall()
        found = {str(s): int(n) for s, n in rows}
        return {s: found.get(s, 0) for s in ("passed", "failed", "error")}

    def cases(
        self, run_id: str, arm: int | None = None, *, limit: int = -1, offset: int = 0
    ) -> list[CaseRow]:
        """The run's cases (one arm's, or all), in suite and case order, without scores."""
        sql = f"SELECT {_CASE_COLUMNS} FROM eval_cases WHERE run_id = ?"
        params: list[Any] = [run_id]
        if arm is not None:
            sql += " AND arm = ?"
            params.append(arm)
        sql += " ORDER BY arm, suite, case_id, rep LIMIT ? OFFSET ?"
        params += [limit if limit >= 0 else NO_LIMIT, offset]
        with self._session() as db:
            rows = db.execute(sql, params).fetchall()
        return [_case(r) for r in rows]

    def scores(
        self, run_id: str, arm: int, metric: str | None = None
    ) -> Iterator[tuple[str, str, int, str, str, float | None, str]]:
        """(suite, case, repeat, metric, judge, value, detail) of one arm's scores."""
        sql = (
            "SELECT suite, case_id, rep, metric, judge, value, detail FROM eval_scores "
            "WHERE run_id = ? AND arm = ?"
        )
        params: list[Any] = [run_id, arm]
        if metric is not None:
            sql += " AND metric = ?"
            params.append(metric)
        with self._session() as db:
            rows = db.execute(sql + " ORDER BY metric, judge, suite, case_id, rep", params)
            fetched = rows.fetchall()
        for suite, case_id, rep, name, judge, value, detail in fetched:
            yield str(suite), str(case_id), int(rep), str(name), str(judge), value, str(detail)

    def metrics_of(self, run_id: str, arm: int) -> list[tuple[str, str]]:
        """(metric, judge) pairs one arm has scores for."""
        with self._session() as db:
            rows = db.execute(
                "SELECT DISTINCT metric, judge FROM eval_scores WHERE run_id = ? AND arm = ?",
                (run_id, arm),
            ).fetchall()
        return [(str(m), str(j)) for m, j in rows]

    def case_scores(
        self, run_id: str, arm: int, suite: str, case_id: str, rep: int
    ) -> list[ScoreRow]:
        with self._session() as db:
            rows = db.execute(
                "SELECT metric, value, detail, judge FROM eval_scores WHERE run_id = ? AND arm = ? "
                "AND suite = ? AND case_id = ? AND rep = ? ORDER BY metric, judge",
                (run_id, arm, suite, case_id, rep),
            ).fetchall()
        return [ScoreRow(str(m), v, str(d), str(j)) for m, v, d, j in rows]


def _run(row: Sequence[Any], arms: Sequence[Sequence[Any]]) -> EvalRun:
    return EvalRun(
        run_id=row[0],
        copilot=row[1],
        folder=row[2],
        created=row[3],
        finished=row[4],
        status=row[5],
        total=row[6],
        plan=json.loads(row[7]),
        arms=tuple(Arm(int(a), str(label), str(m), bool(v), p) for a, label, m, v, p in arms),
    )


def _case(row: Sequence[Any]) -> CaseRow:
    arm, suite, case_id, rep, status, question, answer, model, trace_id, error, details = row
    return CaseRow(
        arm=int(arm),
        suite=str(suite),
        case_id=str(case_id),
        rep=int(rep),
        status=status,
        question=str(question),
        answer=str(answer),
        model=model,
        trace_id=trace_id,
        error=error,
        details=json.loads(details or "{}"),
    )


def open_sqlite_store(path: Path, settings: Settings) -> EvalStore:
    """The sqlite backend's factory for `evals` (storage/backends.py)."""
    del settings
    return EvalStore(path)
