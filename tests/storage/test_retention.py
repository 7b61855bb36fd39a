"""Trace retention: `TraceStore.prune` deletes old finished runs with their spans and old
runless traces, in one transaction, and never a run paused for an approval decision."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot.copilot import Copilot
from pilothouse.copilot.paused_runs import PausedRun, PausedRunStore
from pilothouse.errors import NotFoundError
from pilothouse.models import ScriptedModel, tool_call
from pilothouse.storage.retention import (
    PAUSED_RUNS_TABLE,
    PruneReport,
    cutoff,
)
from pilothouse.storage.sqlite import connect
from pilothouse.storage.traces import TraceStore
from pilothouse.tracing.attributes import RUN_RESUMES
from pilothouse.types import Message
from tests.storage.aged_runs import DAY, days_ago, record_orphan, record_run


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TraceStore]:
    with TraceStore(tmp_path / "pilothouse.db") as s:
        yield s


def run_ids(store: TraceStore) -> set[str]:
    return {r.run_id for r in store.list_runs(limit=1000)}


def span_traces(path: Path) -> dict[str, int]:
    with closing(connect(path)) as conn:
        rows = conn.execute("SELECT trace_id, COUNT(*) FROM spans GROUP BY trace_id").fetchall()
    return {r[0]: r[1] for r in rows}


def test_prune_removes_only_old_finished_runs_and_their_spans(store: TraceStore) -> None:
    old = record_run(store, days_ago(40), days_ago(40) + 5, children=3)
    never_ended = record_run(store, days_ago(35), None, children=1)
    # started before the cut-off but ended after it: judged by its end
    long_run = record_run(store, days_ago(31), days_ago(29))
    recent = record_run(store, days_ago(1), days_ago(1) + 2)
    recent_never_ended = record_run(store, days_ago(2), None)

    report = store.prune(days_ago(30))

    assert report == PruneReport(runs=2, spans=4 + 2)
    assert run_ids(store) == {long_run, recent, recent_never_ended}
    assert set(span_traces(store.path)) == {long_run, recent, recent_never_ended}
    assert span_traces(store.path)[recent] == 3  # the kept runs keep all their spans
    for gone in (old, never_ended):
        with pytest.raises(NotFoundError):
            store.get_run(gone)
    assert store.get_run(recent).run.span_count == 3
    # nothing left to delete; the store goes on working
    assert store.prune(days_ago(30)) == PruneReport(0, 0)
    newer = record_run(store, days_ago(0.1), days_ago(0.1) + 1)
    assert newer in run_ids(store)


def test_orphan_spans_go_when_all_of_their_trace_is_old(store: TraceStore) -> None:
    old_orphan = record_orphan(store, days_ago(50), days_ago(45))
    recent_orphan = record_orphan(store, days_ago(1))
    straddling = record_orphan(store, days_ago(40), days_ago(2))  # kept whole, not split
    run = record_run(store, days_ago(3), days_ago(3) + 1)

    report = store.prune(days_ago(30))

    assert report == PruneReport(runs=0, spans=2)
    assert span_traces(store.path) == {recent_orphan: 1, straddling: 2, run: 3}
    assert old_orphan not in span_traces(store.path)


def test_dry_run_counts_the_same_and_deletes_nothing(store: TraceStore) -> None:
    record_run(store, days_ago(40), days_ago(40) + 1, children=4)
    record_orphan(store, days_ago(60))
    record_run(store, days_ago(1), days_ago(1) + 1)
    before = span_traces(store.path)

    preview = store.prune(days_ago(30), dry_run=True)

    assert preview == PruneReport(runs=1, spans=5 + 1)
    assert span_traces(store.path) == before
    assert len(run_ids(store)) == 2
    assert store.prune(days_ago(30)) == preview  # the real thing deletes what was counted
    assert len(run_ids(store)) == 1


def test_a_run_awaiting_approval_is_kept_and_readable(store: TraceStore) -> None:
    paused_id = record_run(
        store,
        days_ago(90),
        days_ago(90) + 1,
        attributes={"pilothouse.run.status": "awaiting_approval"},
    )
    # an earlier resumption of it that paused again: kept with it
    resumed_id = record_run(
        store, days_ago(80), days_ago(80) + 1, attributes={RUN_RESUMES: paused_id}
    )
    other = record_run(store, days_ago(90), days_ago(90) + 1)
    paused = PausedRunStore(store.path)
    try:
        asyncio.run(paused.save(paused_run(paused_id)))

        report = store.prune(days_ago(30))

        assert report == PruneReport(runs=1, spans=3)
        assert run_ids(store) == {paused_id, resumed_id}
        assert other not in run_ids(store)
        detail = store.get_run(paused_id)
        assert detail.run.span_count == 3 and len(detail.spans) == 3
        assert store.get_run(resumed_id).run.run_id == resumed_id
        # once decided (taken from the paused runs), it ages like any other run
        assert asyncio.run(paused.take(paused_id)).run_id == paused_id
        assert store.prune(days_ago(30)) == PruneReport(runs=2, spans=6)
        assert run_ids(store) == set()
    finally:
        paused.close()


def paused_run(run_id: str) -> PausedRun:
    return PausedRun(
        run_id=run_id,
        conversation_id="conv-1",
        copilot="helpdesk",
        question="open a ticket",
        context=None,
        citations=(),
        tail=(Message.user("open a ticket"),),
        pending=(),
        steps=1,
    )


def test_the_paused_runs_table_is_the_one_the_copilot_layer_keeps(tmp_path: Path) -> None:
    PausedRunStore(tmp_path / "pilothouse.db").close()
    with closing(connect(tmp_path / "pilothouse.db")) as conn:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({PAUSED_RUNS_TABLE})")]
    assert "run_id" in columns


APPROVAL_TOOLS = '''
from pilothouse.tools import tool


@tool(requires_approval=True)
def create_ticket(summary: str) -> str:
    """Open a helpdesk ticket.

    Args:
        summary: one line saying what is wrong
    """
    return "HD-1001 created"
'''


async def test_a_paused_copilot_run_survives_pruning_and_resumes(tmp_path: Path) -> None:
    folder = tmp_path / "desk"
    (folder / "prompts").mkdir(parents=True)
    (folder / "prompts/instructions.prompty").write_text(
        "---\nname: desk\n---\nsystem:\nYou are the helpdesk.\n"
    )
    (folder / "tools.py").write_text(APPROVAL_TOOLS)
    (folder / "copilot.yaml").write_text(
        "name: desk\ninstructions: prompts/instructions.prompty\n"
        "model:\n  primary: local:qwen2.5-coder-0.5b\n"
        "tools:\n  - python: tools.py\n    functions: [create_ticket]\n"
    )
    settings = Settings.from_sources(home=tmp_path / "home", environ={})
    model = ScriptedModel(
        [tool_call("create_ticket", {"summary": "screen"}, id="t1"), "Hi.", "Ticket open."]
    )
    copilot = await Copilot.open(folder, settings=settings, models=[model])
    try:
        paused = await copilot.ask("My screen is broken, open a ticket")
        assert paused.status == "awaiting_approval"
        answered = await copilot.ask("hello")  # another conversation, finished
        assert answered.status == "completed"
        copilot.tracer.flush()

        with TraceStore.for_settings(settings) as store:
            # everything that ended before now would go, but the paused run stays
            report = store.prune(time.time() + 60)
            assert report.runs == 1
            assert run_ids(store) == {paused.run_id}
            assert store.get_run(paused.run_id).run.copilot == "desk"

        resumed = await copilot.approve(paused.run_id, approve=["t1"])
        assert resumed.status == "completed" and resumed.text == "Ticket open."
    finally:
        await copilot.aclose()


def test_prune_is_all_or_nothing(store: TraceStore) -> None:
    record_run(store, days_ago(40), days_ago(40) + 1)
    blocked = record_run(store, days_ago(41), days_ago(41) + 1)
    with closing(connect(store.path)) as conn:
        # a write that fails half-way: spans are deleted before runs
        conn.execute(
            "CREATE TRIGGER refuse BEFORE DELETE ON runs WHEN old.run_id = "
            f"'{blocked}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    before = span_traces(store.path)

    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        store.prune(days_ago(30))

    assert span_traces(store.path) == before
    assert len(run_ids(store)) == 2
    with closing(connect(store.path)) as conn:
        conn.execute("DROP TRIGGER refuse")
    assert store.prune(days_ago(30)) == PruneReport(runs=2, spans=6)


def test_malformed_attributes_do_not_break_pruning(store: TraceStore) -> None:
    kept = record_run(store, days_ago(1), days_ago(1) + 1)
    gone = record_run(store, days_ago(40), days_ago(40) + 1)
    PausedRunStore(store.path).close()  # the paused-runs check runs
    with closing(connect(store.path)) as conn:
        conn.execute("UPDATE spans SET attributes = '{not json' WHERE trace_id = ?", (gone,))
    assert store.prune(days_ago(30)) == PruneReport(runs=1, spans=3)
    assert run_ids(store) == {kept}


def test_prune_refuses_a_timestamp_that_is_not_finite(store: TraceStore) -> None:
    with pytest.raises(ValueError, match="finite"):
        store.prune(float("nan"))


def test_cutoff_from_keep_days() -> None:
    assert cutoff(0, 1_000_000.0) is None
    assert cutoff(30, 10_000_000.0) == 10_000_000.0 - 30 * DAY
    assert cutoff(0.5, 100_000.0) == 100_000.0 - DAY / 2
