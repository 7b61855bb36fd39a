"""The trace store: spans and runs round-trip through SQLite, run figures are derived
from the spans, ids resolve by prefix, and writes are atomic per trace."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from pilothouse.errors import ConfigError, NotFoundError
from pilothouse.storage import traces as traces_module
from pilothouse.storage.runs import derive_run
from pilothouse.storage.sqlite import connect
from pilothouse.storage.traces import COMPONENT, MIGRATIONS, TraceStore
from pilothouse.tracing import MemorySink, Span, Tracer
from pilothouse.tracing import attributes as attr
from tests.tracing.sample import ANSWER, HITS, QUESTION, record_sample_run


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TraceStore]:
    with TraceStore(tmp_path / "pilothouse.db") as s:
        yield s


def db(path: Path) -> closing[sqlite3.Connection]:
    return closing(connect(path))


async def test_a_run_round_trips_with_its_tree(store: TraceStore) -> None:
    memory = MemorySink()
    tracer = Tracer([store, memory])
    root = await record_sample_run(tracer)

    detail = store.get_run(root.trace_id)
    assert [s.to_dict() for s in detail.spans] == [s.to_dict() for s in memory.spans]
    (tree,) = detail.tree()
    assert tree.span.span_id == root.span_id
    assert [(c.span.kind, c.span.name) for c in tree.children] == [
        ("retrieval", "retrieve"),
        ("model", "chat"),
        ("approval", "open_ticket"),
        ("tool", "open_ticket"),
        ("model", "chat"),
    ]
    retrieval = tree.children[0].span
    assert retrieval.attributes[attr.RETRIEVAL_HITS] == HITS
    first_call = tree.children[1].span
    assert first_call.events[0].name == "fallback"
    assert first_call.attributes[attr.REQUEST_MESSAGES][1]["parts"][0]["text"] == QUESTION  # type: ignore[index,call-overload]
    tool = tree.children[3].span
    assert tool.attributes[attr.TOOL_ARGUMENTS] == {"title": "VPN token", "api_key": "[REDACTED]"}
    raw = store.path.read_bytes()
    assert b"sk-should-not-leak" not in raw


async def test_run_figures_are_derived_from_the_spans(store: TraceStore) -> None:
    root = await record_sample_run(Tracer([store]))
    run = store.get_run(root.trace_id).run
    assert run.run_id == root.trace_id
    assert run.name == "helpdesk" and run.copilot == "helpdesk"
    assert run.conversation_id == "conv-42"
    assert run.question == QUESTION and run.answer == ANSWER
    assert run.status == "completed" and run.error is None
    assert (run.input_tokens, run.output_tokens, run.cached_tokens) == (710, 57, 100)
    assert run.cost_usd == pytest.approx(0.002)
    # the last model call answered: the first one fell back to Anthropic, the final
    # one was answered by the requested model
    assert run.model == "openai:gpt-4.1-mini"
    assert run.span_count == 6
    assert run.started == root.start_time and run.duration_s == root.duration_s


def test_nested_model_spans_are_not_counted_twice() -> None:
    tracer = Tracer([sink := MemorySink()])
    with tracer.span("run", kind="run"):
        with tracer.span("chat", kind="model") as chain:
            with tracer.span("attempt 1", kind="model") as a1:
                a1.fail("rate limited")
                a1.update({attr.REQUEST_MODEL: "openai:gpt-4.1", attr.USAGE_INPUT_TOKENS: 0})
            with tracer.span("attempt 2", kind="model") as a2:
                a2.update(
                    {attr.RESPONSE_MODEL: "gemini:gemini-2.5-flash", attr.USAGE_INPUT_TOKENS: 50}
                )
            chain.update(
                {attr.RESPONSE_MODEL: "gemini:gemini-2.5-flash", attr.USAGE_INPUT_TOKENS: 50}
            )
        with tracer.span("tool", kind="tool"), tracer.span("inner chat", kind="model") as inner:
            # a model call made by a tool is a model call of the run too
            inner.update({attr.USAGE_INPUT_TOKENS: 7, attr.RESPONSE_MODEL: "local:qwen"})
    run = derive_run(sink.spans)
    assert run is not None
    assert run.input_tokens == 57
    assert run.cost_usd is None  # no model call knew its cost
    assert run.model == "local:qwen"


def test_a_trace_without_a_root_has_no_run() -> None:
    span = Span("a" * 32, "b" * 16, "c" * 16, "orphan", "tool")
    assert derive_run([span]) is None


async def test_listing_newest_first_with_limit_and_copilot(store: TraceStore) -> None:
    tracer = Tracer([store])
    ids = []
    for copilot in ("helpdesk", "hr", "helpdesk", "finance"):
        ids.append((await record_sample_run(tracer, copilot=copilot)).trace_id)
        await asyncio.sleep(0.002)
    assert [r.run_id for r in store.list_runs()] == ids[::-1]
    assert [r.run_id for r in store.list_runs(limit=2)] == ids[::-1][:2]
    assert [r.run_id for r in store.list_runs(copilot="helpdesk")] == [ids[2], ids[0]]
    assert store.list_runs(copilot="nobody") == []


def test_failed_run_status_and_error(store: TraceStore) -> None:
    tracer = Tracer([store])
    with pytest.raises(TimeoutError), tracer.span("helpdesk", kind="run") as run:
        raise TimeoutError("the run took longer than 60s")
    summary = store.get_run(run.trace_id).run
    assert summary.status == "failed"
    assert summary.error == "the run took longer than 60s"
    assert summary.model is None and summary.input_tokens == 0


def test_prefix_lookup(store: TraceStore) -> None:
    def span(trace_id: str) -> Span:
        return Span(
            trace_id,
            "1" * 16,
            None,
            "run",
            "run",
            start_time=time.time(),
            end_time=time.time(),
            duration_s=0.0,
        )

    store.export([span("abc1" + "0" * 28)])
    store.export([span("abc2" + "0" * 28)])
    store.export([span("def0" + "0" * 28)])
    assert store.resolve_run_id("DEF") == "def0" + "0" * 28
    assert store.get_run("abc1").run.run_id.startswith("abc1")
    with pytest.raises(NotFoundError, match="several runs"):
        store.resolve_run_id("abc")
    with pytest.raises(NotFoundError, match="no run with id"):
        store.resolve_run_id("fff")
    with pytest.raises(NotFoundError, match="not a run id"):
        store.resolve_run_id("xyz'; DROP TABLE runs; --")
    with pytest.raises(NotFoundError):
        store.resolve_run_id("")


def test_late_spans_join_their_run_and_the_figures_follow(store: TraceStore) -> None:
    tracer = Tracer([store])
    with tracer.span("run", kind="run") as run:
        late = tracer.start_span("summary", kind="model")
    assert store.get_run(run.trace_id).run.span_count == 1
    late.update({attr.USAGE_INPUT_TOKENS: 30, attr.RESPONSE_MODEL: "local:qwen"})
    tracer.end_span(late)
    detail = store.get_run(run.trace_id)
    assert detail.run.span_count == 2
    assert detail.run.input_tokens == 30
    assert detail.tree()[0].children[0].span.name == "summary"


def test_exporting_the_same_spans_twice_does_not_duplicate(store: TraceStore) -> None:
    tracer = Tracer([sink := MemorySink()])
    with tracer.span("run", kind="run"), tracer.span("chat", kind="model") as chat:
        chat.set(attr.USAGE_INPUT_TOKENS, 5)
    store.export(sink.spans)
    store.export(sink.spans)
    (run,) = store.list_runs()
    assert run.span_count == 2 and run.input_tokens == 5


async def test_aexport_and_writes_from_many_threads(store: TraceStore) -> None:
    tracer = Tracer([sink := MemorySink()])
    for i in range(20):
        with tracer.span(f"run{i}", kind="run"):
            pass
    await asyncio.gather(*(store.aexport(batch) for batch in sink.batches[:10]))
    threads = [threading.Thread(target=store.export, args=(b,)) for b in sink.batches[10:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.list_runs(limit=100)) == 20


def test_a_failed_write_leaves_nothing_half_written_and_the_run_goes_on(
    store: TraceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(spans: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(traces_module, "derive_run", broken)
    memory = MemorySink()
    tracer = Tracer([store, memory])

    def answer() -> str:
        with tracer.span("run", kind="run"), tracer.span("chat", kind="model"):
            return "the answer"

    assert answer() == "the answer"  # the store failed; the traced code did not
    assert len(memory.spans) == 2  # and the other sink still got the trace
    monkeypatch.undo()
    assert store.list_runs() == []
    with db(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0] == 0


def test_reopening_keeps_data_and_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pilothouse.db"
    with TraceStore(path) as store:
        tracer = Tracer([store])
        with tracer.span("run", kind="run") as run:
            pass
    with TraceStore(path) as store:
        assert store.list_runs()[0].run_id == run.trace_id
    conn = connect(path)
    conn.execute(
        "INSERT INTO schema_migrations (component, version) VALUES (?, ?)",
        (COMPONENT, len(MIGRATIONS) + 1),
    )
    conn.close()
    with pytest.raises(ConfigError, match="newer than this"):
        TraceStore(path)


def test_unreadable_attribute_json_does_not_break_reading(store: TraceStore) -> None:
    tracer = Tracer([store])
    with tracer.span("run", kind="run") as run:
        pass
    with db(store.path) as conn:
        conn.execute("UPDATE spans SET attributes = 'not json'")
    assert store.get_run(run.trace_id).spans[0].attributes == {}


_WRITER = textwrap.dedent(
    """
    import sys
    from pilothouse.storage.traces import TraceStore
    from pilothouse.tracing import Tracer
    store = TraceStore(sys.argv[1])
    tracer = Tracer([store])
    print("ready", flush=True)
    i = 0
    while True:
        with tracer.span(f"run{i}", kind="run"):
            for j in range(30):
                with tracer.span(f"chat{j}", kind="model") as s:
                    s.set("gen_ai.usage.input_tokens", 1)
        i += 1
    """
)


def test_kill_during_writes_leaves_only_whole_traces(tmp_path: Path) -> None:
    """A writer killed with SIGKILL mid-stream: every stored run has all its spans."""
    path = tmp_path / "pilothouse.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            with db(path) as conn:
                if conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] >= 5:
                    break
        except sqlite3.OperationalError:
            continue
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    with TraceStore(path) as store:
        runs = store.list_runs(limit=100_000)
        assert len(runs) >= 5
        for run in runs:
            assert run.span_count == 31 and run.input_tokens == 30
        with db(path) as conn:
            per_trace = conn.execute(
                "SELECT trace_id, COUNT(*) FROM spans GROUP BY trace_id"
            ).fetchall()
        assert all(count == 31 for _, count in per_trace)
        assert {t for t, _ in per_trace} == {r.run_id for r in runs}
