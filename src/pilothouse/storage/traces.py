"""Runs and their spans, kept in the data directory's SQLite database.

`TraceStore` is a `SpanSink`: give it to a `Tracer` and every finished trace is written
in one transaction (all its spans, then its `runs` row). A run's id is its trace id.

Run-level figures are derived from the spans, never reported separately, so they can
always be recomputed and never disagree with the tree:

- tokens and cost: the sums over the *outermost* model spans (kind "model" with no
  model span above them), so a model call instrumented again inside (a fallback
  chain's attempts) is not counted twice; cost is NULL when no such span knows its cost;
- model: the `gen_ai.response.model` of the last (by start time) outermost model span
  that has one, i.e. the model that produced the final answer after any fallback;
- copilot, conversation, question, answer: attributes of the root span (the answer is
  kept as an excerpt of 500 characters; the full text stays on the root span);
- started, ended, duration, status, error: those of the root span.

Spans delivered late (ended after their root) are added to the run and the figures
recomputed. A trace whose root never arrived has spans but no `runs` row.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pilothouse.config import Settings
from pilothouse.errors import NotFoundError
from pilothouse.storage.sqlite import connect, migrate, transaction
from pilothouse.tracing import BackgroundSink, Redactor, Span, SpanSink, Tracer
from pilothouse.tracing import attributes as attr

logger = logging.getLogger(__name__)

COMPONENT = "traces"
ANSWER_EXCERPT_CHARS = 500

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


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One row of `runs`: a run's figures, derived from its spans."""

    run_id: str
    name: str
    copilot: str | None
    conversation_id: str | None
    started: float
    ended: float | None
    duration_s: float | None
    status: str
    error: str | None
    question: str | None
    answer: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: float | None
    span_count: int


@dataclass(slots=True)
class SpanNode:
    span: Span
    children: list[SpanNode] = field(default_factory=list)


@dataclass(slots=True)
class RunDetail:
    """A run with all its spans (start order)."""

    run: RunSummary
    spans: list[Span]

    def tree(self) -> list[SpanNode]:
        """The spans as a forest: normally one root; a span whose parent is missing
        (its trace was cut short) becomes a root of its own rather than vanishing."""
        return span_tree(self.spans)


def span_tree(spans: Iterable[Span]) -> list[SpanNode]:
    ordered = sorted(spans, key=lambda s: s.start_time)
    nodes = {s.span_id: SpanNode(s) for s in ordered}
    roots: list[SpanNode] = []
    for span in ordered:
        parent = nodes.get(span.parent_id) if span.parent_id else None
        if parent is None or parent.span is span:
            roots.append(nodes[span.span_id])
        else:
            parent.children.append(nodes[span.span_id])
    return roots


class TraceStore:
    """Runs and spans in SQLite; also a `SpanSink`.

    Thread-safe (one connection behind a lock). `export` writes one trace in one short
    transaction on the calling thread, typically a few milliseconds; in a server, call
    `aexport` or wrap the store in `tracing.BackgroundSink` to keep the event loop free.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = connect(self.path, check_same_thread=False)
        try:
            migrate(self._conn, COMPONENT, MIGRATIONS)
        except BaseException:
            self._conn.close()
            raise

    @classmethod
    def for_settings(cls, settings: Settings) -> TraceStore:
        """The store in the data directory's database (`<home>/pilothouse.db`)."""
        return cls(settings.database_path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    # --- reading ------------------------------------------------------------------

    def list_runs(self, limit: int = 20, copilot: str | None = None) -> list[RunSummary]:
        """The most recent runs first, optionally of one copilot."""
        sql = f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs"
        params: list[Any] = []
        if copilot is not None:
            sql += " WHERE copilot = ?"
            params.append(copilot)
        sql += " ORDER BY started DESC LIMIT ?"
        params.append(max(0, limit))
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [RunSummary(*row) for row in rows]

    def resolve_run_id(self, prefix: str) -> str:
        """The full run id that `prefix` starts (case-insensitive); NotFoundError when
        none or several do."""
        wanted = prefix.strip().lower()
        if not wanted or any(c not in "0123456789abcdef" for c in wanted):
            raise NotFoundError(
                f"{prefix!r} is not a run id: run ids are hexadecimal; see `pilothouse runs`"
            )
        with self._lock:
            rows = self._conn.execute(
                "SELECT run_id FROM runs WHERE run_id >= ? AND run_id < ? "
                "ORDER BY started DESC LIMIT 6",
                (wanted, wanted + "g"),
            ).fetchall()
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


# --- derivation -------------------------------------------------------------------


def derive_run(spans: Sequence[Span]) -> RunSummary | None:
    """The run figures of one trace's spans (None without a root span)."""
    root = next((s for s in spans if s.parent_id is None), None)
    if root is None:
        return None
    calls = outermost_model_spans(spans)
    costs = [c for c in (_number(s.attributes.get(attr.COST_USD)) for s in calls) if c is not None]
    answered = [s for s in calls if isinstance(s.attributes.get(attr.RESPONSE_MODEL), str)]
    answer = _text(root.attributes.get(attr.RUN_ANSWER))
    return RunSummary(
        run_id=root.trace_id,
        name=root.name,
        copilot=_text(root.attributes.get(attr.AGENT_NAME)),
        conversation_id=_text(root.attributes.get(attr.CONVERSATION_ID)),
        started=root.start_time,
        ended=root.end_time,
        duration_s=root.duration_s,
        status=root.status,
        error=root.error,
        question=_text(root.attributes.get(attr.RUN_QUESTION)),
        answer=answer[:ANSWER_EXCERPT_CHARS] if answer is not None else None,
        model=str(answered[-1].attributes[attr.RESPONSE_MODEL]) if answered else None,
        input_tokens=_sum_int(calls, attr.USAGE_INPUT_TOKENS),
        output_tokens=_sum_int(calls, attr.USAGE_OUTPUT_TOKENS),
        cached_tokens=_sum_int(calls, attr.USAGE_CACHED_TOKENS),
        cost_usd=sum(costs) if costs else None,
        span_count=len(spans),
    )


def outermost_model_spans(spans: Sequence[Span]) -> list[Span]:
    """Model spans with no model span among their ancestors, in start order."""
    by_id = {s.span_id: s for s in spans}
    result = []
    for span in sorted(spans, key=lambda s: s.start_time):
        if span.kind != "model":
            continue
        parent = by_id.get(span.parent_id) if span.parent_id else None
        nested = False
        seen: set[str] = set()
        while parent is not None and parent.span_id not in seen:
            if parent.kind == "model":
                nested = True
                break
            seen.add(parent.span_id)
            parent = by_id.get(parent.parent_id) if parent.parent_id else None
        if not nested:
            result.append(span)
    return result


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _sum_int(spans: Iterable[Span], key: str) -> int:
    return int(sum(_number(s.attributes.get(key)) or 0 for s in spans))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


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


# --- the tracer an application uses -----------------------------------------------


def open_tracer(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    background: bool = False,
    redactor: Redactor | None = None,
    extra_sinks: Iterable[SpanSink] = (),
) -> Tracer:
    """A tracer that stores every run in the data directory and, when an OTLP endpoint
    is configured in the environment (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    `OTEL_EXPORTER_OTLP_ENDPOINT`), also exports it as OpenTelemetry GenAI spans.

    `background=True` writes to SQLite from a worker thread (servers); call
    `tracer.close()` before exit so nothing waiting is lost. The OTLP exporter always
    sends from its own thread. If an endpoint is configured but the `otel` extra is not
    installed, a warning says so and runs are still stored locally.
    """
    env = dict(settings.environ if environ is None else environ)
    store: SpanSink = TraceStore.for_settings(settings)
    sinks: list[SpanSink] = [BackgroundSink(store) if background else store]
    from pilothouse.tracing import otel

    if otel.otlp_traces_endpoint(env) is not None:
        try:
            sinks.append(otel.OtelSink.from_environ(env))
        except otel.OtelUnavailableError as exc:
            logger.warning("%s", exc)
    sinks.extend(extra_sinks)
    return Tracer(sinks, redactor=redactor)
