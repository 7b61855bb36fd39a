"""The tracer: parents from the context across tasks, separate traces, delivery of a
whole trace when its root ends, error marking, sinks that fail."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Sequence

import pytest

from pilothouse.tracing import (
    BackgroundSink,
    MemorySink,
    Span,
    Tracer,
    current_span,
    to_json_value,
)
from pilothouse.tracing import attributes as attr


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def tracer(sink: MemorySink) -> Tracer:
    return Tracer([sink])


def by_name(spans: Sequence[Span]) -> dict[str, Span]:
    return {s.name: s for s in spans}


def test_nested_spans_form_a_tree_and_the_trace_is_delivered_once(
    tracer: Tracer, sink: MemorySink
) -> None:
    with tracer.span("run", kind="run") as run:
        assert current_span() is run
        with tracer.span("retrieve", kind="retrieval") as retrieve:
            assert current_span() is retrieve
        with tracer.span("chat", kind="model"), tracer.span("attempt", kind="other"):
            pass
        assert current_span() is run
        assert sink.batches == []  # nothing before the root ends
    assert current_span() is None

    assert len(sink.batches) == 1
    spans = by_name(sink.batches[0])
    assert set(spans) == {"run", "retrieve", "chat", "attempt"}
    assert spans["run"].parent_id is None
    assert spans["retrieve"].parent_id == run.span_id
    assert spans["chat"].parent_id == run.span_id
    assert spans["attempt"].parent_id == spans["chat"].span_id
    assert {s.trace_id for s in spans.values()} == {run.trace_id}
    assert sink.batches[0][0].name == "run"  # start order
    assert len(run.trace_id) == 32 and len(run.span_id) == 16
    assert tracer.open_traces == 0


def test_times_and_durations(tracer: Tracer, sink: MemorySink) -> None:
    before = time.time()
    with tracer.span("run", kind="run"), tracer.span("slow", kind="tool"):
        time.sleep(0.05)
    spans = by_name(sink.spans)
    slow = spans["slow"]
    assert slow.duration_s is not None and slow.duration_s >= 0.05
    assert slow.end_time == pytest.approx(slow.start_time + slow.duration_s)
    assert before <= spans["run"].start_time <= slow.start_time
    assert spans["run"].duration_s is not None
    assert spans["run"].duration_s >= slow.duration_s


async def test_parents_are_right_across_gather_and_concurrent_runs_do_not_mix(
    tracer: Tracer, sink: MemorySink
) -> None:
    async def tool(name: str) -> str:
        with tracer.span(name, kind="tool") as span:
            await asyncio.sleep(0.01)
            with tracer.span(f"{name}.http", kind="other"):
                await asyncio.sleep(0.005)
            return span.span_id

    async def run(question: str) -> tuple[str, str, list[str]]:
        with tracer.span("run", kind="run", attributes={attr.RUN_QUESTION: question}) as root:
            await asyncio.sleep(0)
            with tracer.span("step", kind="other") as step:
                ids = await asyncio.gather(tool(f"{question}-a"), tool(f"{question}-b"))
            return root.trace_id, step.span_id, list(ids)

    results = await asyncio.gather(*(run(q) for q in ("q1", "q2", "q3")))

    assert len({trace_id for trace_id, _, _ in results}) == 3
    assert len(sink.batches) == 3
    for (trace_id, step_id, tool_ids), question in zip(results, ("q1", "q2", "q3"), strict=True):
        spans = sink.trace(trace_id)
        names = by_name(spans)
        assert set(names) == {
            "run",
            "step",
            f"{question}-a",
            f"{question}-b",
            f"{question}-a.http",
            f"{question}-b.http",
        }
        assert names["run"].attributes[attr.RUN_QUESTION] == question
        assert names["step"].parent_id == names["run"].span_id
        for suffix in ("a", "b"):
            tool_span = names[f"{question}-{suffix}"]
            assert tool_span.parent_id == step_id
            assert names[f"{question}-{suffix}.http"].parent_id == tool_span.span_id
        assert sorted(tool_ids) == sorted(names[f"{question}-{s}"].span_id for s in "ab")
        # every span of each delivered batch belongs to that one trace
    for batch in sink.batches:
        assert len({s.trace_id for s in batch}) == 1


async def test_spans_in_a_worker_thread_keep_their_parent(tracer: Tracer, sink: MemorySink) -> None:
    def blocking() -> str:
        with tracer.span("in-thread", kind="tool") as span:
            return span.span_id

    with tracer.span("run", kind="run") as run:
        await asyncio.to_thread(blocking)
    names = by_name(sink.spans)
    assert names["in-thread"].parent_id == run.span_id


def test_an_exception_marks_the_span_and_its_ancestors_and_propagates(
    tracer: Tracer, sink: MemorySink
) -> None:
    with pytest.raises(KeyError), tracer.span("run", kind="run"):
        with tracer.span("ok", kind="retrieval"):
            pass
        with tracer.span("bad", kind="tool"):
            raise KeyError("no such ticket")
    names = by_name(sink.spans)
    assert names["ok"].status == "ok" and names["ok"].error is None
    assert names["bad"].status == "error"
    assert names["bad"].error_type == "KeyError"
    assert "no such ticket" in (names["bad"].error or "")
    assert names["run"].status == "error"  # the exception left the run too
    assert all(s.ended for s in names.values())


def test_handled_errors_are_recorded_with_fail(tracer: Tracer, sink: MemorySink) -> None:
    with tracer.span("run", kind="run"), tracer.span("tool", kind="tool") as tool:
        tool.fail(ValueError("bad arguments"))
        tool.set(attr.TOOL_IS_ERROR, True)
    names = by_name(sink.spans)
    assert names["tool"].status == "error"
    assert names["tool"].error == "bad arguments"
    assert names["run"].status == "ok"


async def test_cancellation_is_recorded(tracer: Tracer, sink: MemorySink) -> None:
    started = asyncio.Event()

    async def run() -> None:
        with tracer.span("run", kind="run"):
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(run())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (span,) = sink.spans
    assert span.status == "error" and span.error_type == "CancelledError"


async def test_a_stream_closed_early_ends_its_span(tracer: Tracer, sink: MemorySink) -> None:
    async def stream() -> AsyncIterator[int]:
        with tracer.span("run", kind="run"):
            for i in range(10):
                yield i

    gen = stream()
    async for item in gen:
        if item == 2:
            break
    await gen.aclose()
    (span,) = sink.spans
    assert span.status == "error"
    assert span.error_type == "GeneratorExit"
    assert current_span() is None


def test_root_true_and_explicit_parent(tracer: Tracer, sink: MemorySink) -> None:
    with tracer.span("outer", kind="run") as outer:
        with tracer.span("separate", kind="run", root=True) as separate:
            assert separate.trace_id != outer.trace_id
            assert separate.parent_id is None
        other = tracer.start_span("manual", kind="tool", parent=outer)
        assert current_span() is outer  # start_span does not change the context
        tracer.end_span(other, error="timed out")
        tracer.end_span(other)  # a second end does nothing
    assert len(sink.batches) == 2
    names = by_name(sink.spans)
    assert names["manual"].parent_id == outer.span_id
    assert names["manual"].status == "error" and names["manual"].error == "timed out"
    assert sum(1 for s in sink.spans if s.name == "manual") == 1


def test_a_span_that_ends_after_its_root_is_delivered_late(
    tracer: Tracer, sink: MemorySink
) -> None:
    with tracer.span("run", kind="run") as run:
        background = tracer.start_span("background", kind="memory")
    assert [s.name for s in sink.batches[0]] == ["run"]
    tracer.end_span(background)
    assert [[s.name for s in b] for b in sink.batches] == [["run"], ["background"]]
    assert sink.batches[1][0].trace_id == run.trace_id
    assert sink.batches[1][0].parent_id == run.span_id


def test_unknown_kind_is_refused(tracer: Tracer) -> None:
    with pytest.raises(ValueError, match="span kind"):
        tracer.start_span("x", kind="llm")  # type: ignore[arg-type]


class ExplodingSink:
    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans: Sequence[Span]) -> None:
        self.calls += 1
        raise OSError("disk full")


def test_a_failing_sink_does_not_break_the_traced_code_or_other_sinks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken, good = ExplodingSink(), MemorySink()
    tracer = Tracer([broken, good])

    def answer() -> str:
        with tracer.span("run", kind="run"), tracer.span("chat", kind="model"):
            return "42"

    with caplog.at_level(logging.WARNING):
        assert answer() == "42"
    assert broken.calls == 1
    assert [s.name for s in good.spans] == ["run", "chat"]
    assert "ExplodingSink failed" in caplog.text


def test_attributes_are_json_values(tracer: Tracer, sink: MemorySink) -> None:
    class Thing:
        def __str__(self) -> str:
            return "a thing"

    with tracer.span("run", kind="run") as run:
        run.set("tuple", (1, 2)).set("nan", float("nan")).set("bytes", b"\x00" * 10)
        run.set("object", Thing()).set("nested", {"a": {1: (True, None)}})
        run.update({"big": "x" * 200_000})
        run.add_event("fallback", {"to": "anthropic:claude", "why": Thing()})
    (span,) = sink.spans
    json.dumps(span.to_dict())  # never raises
    assert span.attributes["tuple"] == [1, 2]
    assert span.attributes["nan"] == "nan"
    assert span.attributes["bytes"] == "<10 bytes>"
    assert span.attributes["object"] == "a thing"
    assert span.attributes["nested"] == {"a": {"1": [True, None]}}
    big = span.attributes["big"]
    assert isinstance(big, str) and big.endswith("…[100000 more characters]")
    assert span.events[0].attributes == {"to": "anthropic:claude", "why": "a thing"}
    assert Span.from_dict(json.loads(json.dumps(span.to_dict()))).to_dict() == span.to_dict()


def test_to_json_value_sets_are_sorted() -> None:
    assert to_json_value({3, 1, 2}) == [1, 2, 3]
    assert to_json_value(float("inf")) == "inf"


def test_background_sink_delivers_in_order_off_the_calling_thread() -> None:
    threads: list[str] = []
    inner = MemorySink()

    class Recording:
        def export(self, spans: Sequence[Span]) -> None:
            threads.append(threading.current_thread().name)
            time.sleep(0.01)
            inner.export(spans)

    background = BackgroundSink(Recording())
    tracer = Tracer([background])
    for i in range(5):
        with tracer.span(f"run{i}", kind="run"):
            pass
    assert background.flush(5)
    assert [s.name for s in inner.spans] == [f"run{i}" for i in range(5)]
    assert threading.current_thread().name not in threads
    tracer.close()
    with tracer.span("after-close", kind="run"):
        pass
    assert "after-close" not in [s.name for s in inner.spans]


def test_background_sink_survives_a_failing_inner_sink() -> None:
    broken = ExplodingSink()
    background = BackgroundSink(broken)
    tracer = Tracer([background])
    for _ in range(3):
        with tracer.span("run", kind="run"):
            pass
    assert background.flush(5)
    assert broken.calls == 3
    background.close()


def test_record_span_after_the_fact(tracer: Tracer, sink: MemorySink) -> None:
    with tracer.span("run", kind="run") as run:
        began = time.time()
        time.sleep(0.01)
        first = tracer.record_span(
            "open_ticket",
            kind="tool",
            start_time=began,
            duration_s=0.25,
            attributes={attr.TOOL_NAME: "open_ticket", "password": "hunter22"},
        )
        second = tracer.record_span(
            "lookup", kind="tool", start_time=began + 0.001, duration_s=0.1, error="timed out"
        )
        assert current_span() is run
    names = by_name(sink.spans)
    assert names["open_ticket"] is first and first.parent_id == run.span_id
    assert first.start_time == began and first.duration_s == 0.25
    assert first.end_time == pytest.approx(began + 0.25)
    assert first.attributes["password"] == "[REDACTED]"
    assert second.status == "error" and second.error == "timed out"
    assert [s.name for s in sink.batches[0]] == ["run", "open_ticket", "lookup"]  # start order


def test_record_span_outside_any_span_is_a_trace_of_its_own(
    tracer: Tracer, sink: MemorySink
) -> None:
    span = tracer.record_span("ingest", kind="other", start_time=time.time(), duration_s=1.0)
    assert span.parent_id is None
    assert sink.batches == [[span]]
    assert tracer.open_traces == 0
