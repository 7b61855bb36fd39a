"""`runs.status` is the run's own status, and a database written by an earlier version
(where every streamed answer was `error` and failed runs were `ok`) is repaired."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pilothouse.storage.runs import derive_run
from pilothouse.storage.sqlite import connect, migrate
from pilothouse.storage.traces import COMPONENT, MIGRATIONS, TraceStore
from pilothouse.tracing import MemorySink, Span, Tracer
from pilothouse.tracing import attributes as attr


def _root(**attributes: object) -> Span:
    span = Span("a" * 32, "b" * 16, None, "invoke_agent helpdesk", "run")
    span.update(attributes)
    span.end_time = span.start_time + 1
    return span


@pytest.mark.parametrize(
    "status", ["completed", "step_limit", "awaiting_approval", "failed", "cancelled"]
)
def test_the_run_spans_status_is_the_runs_status(status: str) -> None:
    summary = derive_run([_root(**{attr.RUN_STATUS: status})])
    assert summary is not None and summary.status == status


def test_traces_that_do_not_say_are_judged_by_their_root_span() -> None:
    sink = MemorySink()
    tracer = Tracer([sink])
    with tracer.span("ask", kind="run"):
        pass
    with pytest.raises(TimeoutError), tracer.span("ask", kind="run"):
        raise TimeoutError("too slow")

    async def stream():  # type: ignore[no-untyped-def]
        with tracer.span("ask", kind="run"):
            yield 1
            yield 2

    import asyncio

    async def leave_early() -> None:
        events = stream()
        await events.__anext__()
        await events.aclose()

    asyncio.run(leave_early())
    roots = [s for s in sink.spans if s.parent_id is None]
    statuses = [derive_run([r]).status for r in roots]  # type: ignore[union-attr]
    assert statuses == ["completed", "failed", "cancelled"]
    # an unknown recorded status is not trusted
    assert derive_run([_root(**{attr.RUN_STATUS: "fine"})]).status == "completed"  # type: ignore[union-attr]


def _old_database(path: Path) -> None:
    """Rows as version 1 wrote them for: a streamed answer closed after its end, a
    fallback chain whose answering model was marked GeneratorExit, a failed run stored
    ok, a paused run, a run cancelled mid-answer, and a span with unreadable JSON."""
    conn = connect(path)
    migrate(conn, COMPONENT, MIGRATIONS[:1])

    def span(trace: str, sid: str, parent: str | None, kind: str, status: str,
             error: str | None, error_type: str | None, attrs: object) -> None:  # fmt: skip
        conn.execute(
            "INSERT INTO spans (trace_id, span_id, parent_id, name, kind, start_time, "
            "end_time, duration_s, status, error, error_type, attributes) "
            "VALUES (?, ?, ?, 'x', ?, 1.0, 2.0, 1.0, ?, ?, ?, ?)",
            (trace, sid, parent, kind, status, error, error_type,
             attrs if isinstance(attrs, str) else json.dumps(attrs)),
        )  # fmt: skip

    def run(trace: str, status: str, error: str | None) -> None:
        conn.execute(
            "INSERT INTO runs (run_id, name, started, status, error) VALUES (?, 'x', 1.0, ?, ?)",
            (trace, status, error),
        )

    closed = "closed before the end (the consumer stopped reading)"
    # 1: streamed, answered, then closed by the server
    span("1" * 32, "r1", None, "run", "error", closed, "GeneratorExit",
         {attr.RUN_STATUS: "completed"})  # fmt: skip
    span("1" * 32, "m1", "r1", "model", "ok", None, None,
         {attr.FINISH_REASONS: ["stop"]})  # fmt: skip
    run("1" * 32, "error", closed)
    # 2: a chain: the first model failed, the second answered (and was marked closed)
    span("2" * 32, "r2", None, "run", "ok", None, None, {attr.RUN_STATUS: "completed"})
    span("2" * 32, "m2a", "r2", "model", "error", "down", "UnavailableError", {})
    span("2" * 32, "m2b", "r2", "model", "error", closed, "GeneratorExit",
         {attr.FINISH_REASONS: ["stop"]})  # fmt: skip
    run("2" * 32, "ok", None)
    # 3: failed, stored ok
    span("3" * 32, "r3", None, "run", "ok", None, None, {attr.RUN_STATUS: "failed"})
    run("3" * 32, "ok", None)
    # 4: paused for approval
    span("4" * 32, "r4", None, "run", "ok", None, None, {attr.RUN_STATUS: "awaiting_approval"})
    run("4" * 32, "ok", None)
    # 5: the client left mid-answer
    span("5" * 32, "r5", None, "run", "error", closed, "GeneratorExit", {})
    span("5" * 32, "m5", "r5", "model", "error", closed, "GeneratorExit", {})
    run("5" * 32, "error", closed)
    # 6: not JSON, not a copilot run
    span("6" * 32, "r6", None, "other", "error", "boom", "RuntimeError", "not json")
    run("6" * 32, "error", "boom")
    conn.commit()
    conn.close()


def test_migration_2_repairs_runs_written_by_version_1(tmp_path: Path) -> None:
    path = tmp_path / "pilothouse.db"
    _old_database(path)
    with TraceStore(path) as store:
        runs = {r.run_id[0]: r for r in store.list_runs(limit=10)}
        assert {k: (r.status, r.error) for k, r in runs.items()} == {
            "1": ("completed", None),
            "2": ("completed", None),
            "3": ("failed", "the run failed (this earlier version kept no error)"),
            "4": ("awaiting_approval", None),
            "5": ("cancelled", "closed before the end (the consumer stopped reading)"),
            "6": ("failed", "boom"),
        }
        chain = {s.span_id: s for s in store.get_run("2" * 32).spans}
        assert (chain["m2b"].status, chain["m2b"].error) == ("ok", None)
        assert chain["m2b"].attributes[attr.MODEL_STATUS] == "completed"
        assert chain["m2a"].attributes[attr.MODEL_STATUS] == "failed"
        assert store.get_run("5" * 32).spans[1].attributes[attr.MODEL_STATUS] == "cancelled"
        streamed = store.get_run("1" * 32).spans[0]
        assert (streamed.status, streamed.error_type) == ("ok", None)
