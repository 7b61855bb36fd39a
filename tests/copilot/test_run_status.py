"""The status a run records is the run's own: completed, step limit, paused for
approval, failed (with its error), cancelled (the consumer left) — whatever way the
consumer reads the events, and for every model attempt of a fallback chain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot.copilot import Copilot
from pilothouse.copilot.events import RunEvent, RunFinished
from pilothouse.errors import UnavailableError
from pilothouse.models import FunctionModel, ScriptedModel, tool_call
from pilothouse.models.testing import BreakAfter
from pilothouse.storage.runs import RunDetail
from pilothouse.storage.traces import TraceStore
from pilothouse.tracing import attributes as A
from pilothouse.types import ModelRequest, TextDelta


@pytest.fixture
def runs(settings: Settings) -> Iterator[TraceStore]:
    store = TraceStore(settings.database_path)
    yield store
    store.close()


async def open_copilot(folder: Path, settings: Settings, *models: object) -> Copilot:
    return await Copilot.open(folder, settings=settings, models=list(models))  # type: ignore[arg-type]


def model_spans(run: RunDetail) -> list[tuple[str, object, str, str | None]]:
    """(model asked, attempt status, span status, error) per model span, in order."""
    return [
        (
            str(s.attributes[A.REQUEST_MODEL]),
            s.attributes.get(A.MODEL_STATUS),
            s.status,
            s.error,
        )
        for s in run.spans
        if s.kind == "model"
    ]


async def read_until(events: AsyncIterator[RunEvent], kind: type) -> RunEvent:
    """Read a run's events up to the first of `kind`, then close the stream, as a
    server does once it has what it sends."""
    async for event in events:
        if isinstance(event, kind):
            break
    await events.aclose()  # type: ignore[attr-defined]
    return event


async def test_a_completed_run_is_recorded_completed(
    copilot_dir: Path, settings: Settings, runs: TraceStore
) -> None:
    copilot = await open_copilot(copilot_dir, settings, ScriptedModel(["WireGuard [1]."]))
    answer = await copilot.ask("Which VPN client?")
    await copilot.aclose()
    run = runs.get_run(answer.run_id)
    assert (run.run.status, run.run.error) == ("completed", None)
    root = run.spans[0]
    assert root.status == "ok" and root.attributes[A.RUN_STATUS] == "completed"
    assert model_spans(run) == [("test:scripted", "completed", "ok", None)]


async def test_a_stream_closed_after_its_answer_is_still_completed(
    copilot_dir: Path, settings: Settings, runs: TraceStore
) -> None:
    """What a server does: take events up to the answer, then close the stream."""
    copilot = await open_copilot(copilot_dir, settings, ScriptedModel(["WireGuard [1]."]))
    event = await read_until(copilot.stream("Which VPN client?"), RunFinished)
    await copilot.aclose()
    run = runs.get_run(event.answer.run_id)  # type: ignore[attr-defined]
    assert (run.run.status, run.run.error) == ("completed", None)
    assert model_spans(run)[0][1:] == ("completed", "ok", None)


async def test_a_failed_run_is_recorded_failed_with_its_error(
    copilot_dir: Path, settings: Settings, runs: TraceStore
) -> None:
    copilot = await open_copilot(
        copilot_dir,
        settings,
        ScriptedModel([UnavailableError("upstream down")], model_id="openai:gpt-4.1-mini"),
    )
    answer = await copilot.ask("Which VPN client?")
    await copilot.aclose()
    assert answer.status == "failed"
    run = runs.get_run(answer.run_id)
    assert run.run.status == "failed"
    assert "upstream down" in (run.run.error or "")
    assert run.spans[0].status == "error"
    [(asked, status, span_status, error)] = model_spans(run)
    assert (asked, status, span_status) == ("openai:gpt-4.1-mini", "failed", "error")
    assert "upstream down" in (error or "")


async def test_a_stream_that_breaks_mid_answer_fails_the_run(
    copilot_dir: Path, settings: Settings, runs: TraceStore
) -> None:
    model = ScriptedModel([BreakAfter("Use Wire", UnavailableError("connection reset"))])
    copilot = await open_copilot(copilot_dir, settings, model)
    answer = await copilot.ask("Which VPN client?")
    await copilot.aclose()
    run = runs.get_run(answer.run_id)
    assert run.run.status == "failed" and "connection reset" in (run.run.error or "")
    assert run.run.answer == "Use Wire"  # the partial answer is kept


async def test_a_paused_run_is_recorded_paused_and_its_resumption_separately(
    copilot_dir: Path, settings: Settings, runs: TraceStore
) -> None:
    model = ScriptedModel(
        [tool_call("create_ticket", {"summary": "screen broken"}, id="t1"), "HD-1001 is open."]
    )
    copilot = await open_copilot(copilot_dir, settings, model)
    paused = await copilot.ask("My screen is broken, open a ticket")
    assert paused.status == "awaiting_approval"
    stored = runs.get_run(paused.run_id)
    assert (stored.run.status, stored.run.error) == ("awaiting_approval", None)
    assert stored.spans[0].status == "ok"

    resumed = await copilot.approve(paused.run_id, approve=["t1"])
    await copilot.aclose()
    assert resumed.status == "completed"
    # The resumed run is a run of its own: its id is the trace that holds its spans.
    assert resumed.run_id != paused.run_id
    after = runs.get_run(resumed.run_id)
    assert after.run.status == "completed"
    assert after.spans[0].attributes[A.RUN_RESUMES] == paused.run_id
    assert any(s.kind == "tool" for s in after.spans)
    # The paused run keeps its own record.
    assert runs.get_run(paused.run_id).run.status == "awaiting_approval"


async def test_a_run_paused_twice_resumes_by_the_latest_id(
    copilot_dir: Path, settings: Settings, runs: TraceStore
) -> None:
    model = ScriptedModel(
        [
            tool_call("create_ticket", {"summary": "one"}, id="t1"),
            tool_call("create_ticket", {"summary": "two"}, id="t2"),
            "Both are open.",
        ]
    )
    copilot = await open_copilot(copilot_dir, settings, model)
    first = await copilot.ask("Open two tickets")
    second = await copilot.approve(first.run_id, approve=["t1"])
    assert second.status == "awaiting_approval" and second.pending[0].run_id == second.run_id
    done = await copilot.approve(second.run_id, approve=["t2"])
    await copilot.aclose()
    assert done.status == "completed" and done.text == "Both are open."
    assert [runs.get_run(a.run_id).run.status for a in (first, second, done)] == [
        "awaiting_approval",
        "awaiting_approval",
        "completed",
    ]


async def test_the_step_limit_is_its_own_status(
    copilot_dir: Path, settings: Settings, runs: TraceStore
) -> None:
    lookup = tool_call("lookup", {"term": "x"})
    model = ScriptedModel([lookup, lookup, lookup, "Stopped: the step limit was reached."])
    copilot = await open_copilot(copilot_dir, settings, model)
    answer = await copilot.ask("Look everything up")
    await copilot.aclose()
    assert answer.status == "step_limit"
    run = runs.get_run(answer.run_id)
    assert (run.run.status, run.spans[0].status) == ("step_limit", "ok")


async def test_a_consumer_that_leaves_mid_stream_cancels_the_run(
    copilot_dir: Path, settings: Settings, runs: TraceStore
) -> None:
    model = ScriptedModel(["Use WireGuard, then connect to the office [1]."], chunk_size=3)
    copilot = await open_copilot(copilot_dir, settings, model)
    await read_until(copilot.stream("Which VPN client?"), TextDelta)
    await copilot.aclose()
    [summary] = runs.list_runs()
    run = runs.get_run(summary.run_id)
    assert run.run.status == "cancelled"
    assert "cancelled" in (run.run.error or "")
    assert run.spans[0].error_type == "cancelled"
    assert model_spans(run)[0][1:3] == ("cancelled", "error")


async def test_a_task_cancelled_during_the_model_call_cancels_the_run(
    copilot_dir: Path, settings: Settings, runs: TraceStore
) -> None:
    started = asyncio.Event()

    async def slow(request: ModelRequest) -> str:
        started.set()
        await asyncio.sleep(30)
        return "never"

    copilot = await open_copilot(copilot_dir, settings, FunctionModel(slow))
    task = asyncio.create_task(copilot.ask("Which VPN client?"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await copilot.aclose()
    [summary] = runs.list_runs()
    assert summary.status == "cancelled"


async def test_every_attempt_of_a_fallback_chain_has_its_own_status(
    copilot_dir: Path, settings: Settings, runs: TraceStore
) -> None:
    down = ScriptedModel([UnavailableError("503 from upstream")], model_id="openai:gpt-4.1-mini")
    empty = ScriptedModel([""], model_id="anthropic:claude-haiku-4-5")
    good = ScriptedModel(["Use WireGuard [1]."], model_id="local:qwen")
    copilot = await open_copilot(copilot_dir, settings, down, empty, good)
    answer = await copilot.ask("Which VPN client?")
    await copilot.aclose()
    assert answer.status == "completed" and answer.model == "local:qwen"
    run = runs.get_run(answer.run_id)
    assert (run.run.status, run.run.model, run.run.error) == ("completed", "local:qwen", None)
    attempts = model_spans(run)
    assert [a[:3] for a in attempts] == [
        ("openai:gpt-4.1-mini", "failed", "error"),
        ("anthropic:claude-haiku-4-5", "rejected", "error"),
        ("local:qwen", "completed", "ok"),
    ]
    assert "503 from upstream" in (attempts[0][3] or "")
    assert "empty" in (attempts[1][3] or "")
    assert attempts[2][3] is None  # the model that answered is not an error


async def test_a_chain_where_every_model_fails_records_each_failure(
    copilot_dir: Path, settings: Settings, runs: TraceStore
) -> None:
    one = ScriptedModel([UnavailableError("first down")], model_id="p:one")
    two = ScriptedModel([UnavailableError("second down")], model_id="p:two")
    copilot = await open_copilot(copilot_dir, settings, one, two)
    answer = await copilot.ask("Which VPN client?")
    await copilot.aclose()
    run = runs.get_run(answer.run_id)
    assert run.run.status == "failed"
    assert "first down" in (run.run.error or "") and "second down" in (run.run.error or "")
    assert [a[1] for a in model_spans(run)] == ["failed", "failed"]


async def test_the_otel_export_carries_each_runs_status(copilot_dir: Path, tmp_path: Path) -> None:
    """Completed (a stream closed after its answer), paused, failed and cancelled runs
    as an OTLP receiver gets them: the status attribute, and ERROR only where the run
    failed or was cancelled; the chain's answering model is not an error."""
    from pilothouse.testing.loopback import serve_app
    from tests.tracing.otlp_receiver import OtlpReceiver

    status_unset, status_error = 0, 2
    fake = OtlpReceiver()
    with serve_app(fake.app) as url:
        settings = Settings.from_sources(
            home=tmp_path / "otel-home", environ={"OTEL_EXPORTER_OTLP_ENDPOINT": url}
        )
        down = FunctionModel(lambda r: UnavailableError("down"), model_id="openai:gpt-4.1-mini")
        model = ScriptedModel(
            [
                "WireGuard [1].",
                tool_call("create_ticket", {"summary": "x"}, id="t1"),
                "A long answer that the consumer will not read to its end.",
            ],
            model_id="local:qwen",
            chunk_size=3,
        )
        copilot = await open_copilot(copilot_dir, settings, down, model)
        await read_until(copilot.stream("Which VPN client?"), RunFinished)
        await copilot.ask("Open a ticket")
        await read_until(copilot.stream("Tell me everything"), TextDelta)
        await copilot.aclose()
        failing = await open_copilot(copilot_dir, settings, down)
        await failing.ask("Which VPN client?")
        await failing.aclose()
    roots = [s for s in fake.spans if s.parent_id is None]
    seen = [
        (s.attributes[A.RUN_STATUS], s.status_code, s.attributes.get("error.type"))
        for s in sorted(roots, key=lambda s: s.start_ns)
    ]
    assert seen == [
        ("completed", status_unset, None),
        ("awaiting_approval", status_unset, None),
        ("cancelled", status_error, "cancelled"),
        ("failed", status_error, "UnavailableError"),
    ]
    first_run = min(roots, key=lambda s: s.start_ns)
    chain = sorted(
        (s for s in fake.spans if s.trace_id == first_run.trace_id and s.name.startswith("chat")),
        key=lambda s: s.start_ns,
    )
    assert [(s.attributes[A.MODEL_STATUS], s.status_code) for s in chain] == [
        ("failed", status_error),
        ("completed", status_unset),
    ]


async def test_a_run_that_hands_calls_to_the_caller_waits_for_their_output(
    copilot_dir: Path, settings: Settings, runs: TraceStore
) -> None:
    from pilothouse.copilot import ClientTools
    from pilothouse.types import ToolSpec

    weather = ToolSpec("get_weather", "The weather in a city", {"type": "object"})
    model = ScriptedModel([tool_call("get_weather", {"city": "Paris"}, id="w1"), "18°C [1]."])
    copilot = await open_copilot(copilot_dir, settings, model)
    from pilothouse.copilot.copilot import final_answer

    first = await final_answer(copilot.stream("Weather?", client=ClientTools((weather,))))
    assert first.status == "awaiting_tool_output"
    assert [c.name for c in first.handed] == ["get_weather"]
    assert "get_weather" in [t.name for t in model.requests[0].tools]  # beside its own
    done = await final_answer(
        copilot.resume(first.run_id, {}, client=ClientTools((weather,), {"w1": "18°C"}))
    )
    await copilot.aclose()
    assert done.status == "completed" and done.tool_calls[0].content == "18°C"
    assert runs.get_run(first.run_id).run.status == "awaiting_tool_output"
    after = runs.get_run(done.run_id)
    assert after.run.status == "completed"
    tool = next(s for s in after.spans if s.kind == "tool")
    assert tool.attributes[A.TOOL_RESULT] == "18°C"
