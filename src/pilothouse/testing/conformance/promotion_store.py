"""The promotion-store suite: what every store of promotions does (SQLite's
`SqlitePromotionStore`, PostgreSQL's `PostgresPromotionStore`). A restarted server
resumes a promotion from what its store gives back, so the suite checks that nothing a
stage decision needs is lost or doubled. With the `shared` capability (several stores
open on one storage at once, as server replicas on one database) it checks that
replicas writing at the same moment add up and decide each move once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from pilothouse.errors import NotFoundError
from pilothouse.storage.promotion_records import (
    PromotionConflictError,
    PromotionEvent,
    PromotionRecord,
    PromotionStore,
    Sample,
)
from pilothouse.testing.conformance.stores import PERSISTENT, THREADS, StoreSubject
from pilothouse.testing.conformance.suite import Suite, expect

PROMOTION_STORES: Suite[StoreSubject[Any]] = Suite(
    "promotion stores",
    "promotions, their timelines, online samples and canary assignments: one active "
    "promotion per copilot, compare-and-set stage changes, counts that survive a restart",
)

Subject = StoreSubject[PromotionStore]
SHARED = "shared"
"""Several stores open on one storage at once see each other's writes (replicas)."""
T = TypeVar("T")


def record(promotion_id: str, copilot: str = "helpdesk", **fields: Any) -> PromotionRecord:
    now = time.time()
    values: dict[str, Any] = {
        "promotion_id": promotion_id,
        "copilot": copilot,
        "folder": f"/srv/copilots/{copilot}",
        "current": "local:qwen2.5-coder-0.5b",
        "candidate": "local:qwen2.5-coder-1.5b",
        "stage": "offline",
        "status": "running",
        "created": now,
        "updated": now,
        "stage_started": now,
        **fields,
    }
    return PromotionRecord(**values)


@PROMOTION_STORES.check()
async def check_a_promotion_reads_back_whole(subject: Subject) -> None:
    """Every field written comes back, by id and by an unambiguous prefix; an unknown
    id raises NotFoundError."""
    written = record(
        "pr-0001aaaa",
        prompt="prompts/instructions.qwen.prompty",
        variants=False,
        policy={"canary": {"steps": [0.05, 0.5]}},
        offline={"chosen": "default", "gates": [{"metric": "pass", "passed": True}]},
        previous={"copilot_yaml": "name: helpdesk\n# kept\n"},
        started_by="key_1",
        eval_run="ev-123",
    )
    with subject.opened() as store:
        store.create(written)
        assert store.get("pr-0001aaaa") == written
        assert store.get("pr-0001") == written
        assert store.active("helpdesk") == written
        assert store.active("finance") is None
        with expect(NotFoundError):
            store.get("pr-nosuch")


@PROMOTION_STORES.check()
async def check_one_active_promotion_per_copilot(subject: Subject) -> None:
    """A second active promotion of a copilot is refused; once the first has ended, a
    new one starts; another copilot is not affected."""
    with subject.opened() as store:
        store.create(record("pr-first"))
        with expect(PromotionConflictError):
            store.create(record("pr-second"))
        store.create(record("pr-other", copilot="finance"))
        assert store.update("pr-first", status="rolled_back", stage="done")
        store.create(record("pr-third"))
        active = store.active("helpdesk")
        assert active is not None and active.promotion_id == "pr-third"
        listed = [p.promotion_id for p in store.list_promotions(copilot="helpdesk")]
        assert listed == ["pr-third", "pr-first"], listed


@PROMOTION_STORES.check()
async def check_updates_are_compare_and_set(subject: Subject) -> None:
    """`update` changes a promotion only when `expect` matches what is stored, so of two
    servers taking the same step one succeeds."""
    with subject.opened() as store:
        store.create(record("pr-cas", stage="shadow"))
        assert store.update("pr-cas", expect={"stage": "shadow", "step": 0}, stage="canary")
        assert not store.update("pr-cas", expect={"stage": "shadow", "step": 0}, stage="canary")
        assert store.update("pr-cas", expect={"stage": "canary"}, step=1, reason=None)
        found = store.get("pr-cas")
        assert (found.stage, found.step) == ("canary", 1)
        assert store.update("pr-cas", offline={"chosen": "x"}, variants=False)
        again = store.get("pr-cas")
        assert again.offline == {"chosen": "x"} and again.variants is False


@PROMOTION_STORES.check()
async def check_the_timeline_keeps_its_order(subject: Subject) -> None:
    """Events come back oldest first with their data."""
    with subject.opened() as store:
        store.create(record("pr-events"))
        for index, kind in enumerate(("started", "offline", "stage")):
            event = PromotionEvent(time.time(), "offline", 0, kind, f"#{index}", {"i": index})
            store.add_event("pr-events", event)
        events = store.events("pr-events")
    assert [e.kind for e in events] == ["started", "offline", "stage"]
    assert [e.data["i"] for e in events] == [0, 1, 2]
    assert events[0].message == "#0"


@PROMOTION_STORES.check()
async def check_samples_are_counted_by_stage_step_and_model(subject: Subject) -> None:
    """Samples come back per stage (and step) with their values; `count` counts one
    model's samples of one stage step."""
    with subject.opened() as store:
        store.create(record("pr-samples", stage="canary"))
        for arm in ("current", "candidate", "candidate"):
            store.add_sample(
                "pr-samples",
                Sample("shadow", 0, arm, {"latency_s": 1.5, "agreement": None}, pair="run-1"),
            )
        store.add_sample(
            "pr-samples",
            Sample("canary", 1, "candidate", {"error_rate": 1.0}, error="timed out"),
        )
        assert store.count("pr-samples", "shadow", 0, "candidate") == 2
        assert store.count("pr-samples", "shadow", 0, "current") == 1
        assert store.count("pr-samples", "canary", 0, "candidate") == 0
        shadow = store.samples("pr-samples", "shadow")
        canary = store.samples("pr-samples", "canary", step=1)
    assert [s.arm for s in shadow] == ["current", "candidate", "candidate"]
    assert shadow[0].values == {"latency_s": 1.5, "agreement": None}
    assert shadow[0].pair == "run-1"
    assert len(canary) == 1 and canary[0].error == "timed out"


@PROMOTION_STORES.check()
async def check_the_first_assignment_wins(subject: Subject) -> None:
    """A conversation assigned to a model keeps it: a second assignment returns the
    first."""
    with subject.opened() as store:
        store.create(record("pr-sticky", stage="canary"))
        assert store.assign("pr-sticky", "conv-1", "candidate") == "candidate"
        assert store.assign("pr-sticky", "conv-1", "current") == "candidate"
        assert store.assign("pr-sticky", "conv-2", "current") == "current"
        assert store.assignments("pr-sticky") == {"conv-1": "candidate", "conv-2": "current"}


@PROMOTION_STORES.check(PERSISTENT)
async def check_a_reopened_store_resumes_where_it_was(subject: Subject) -> None:
    """A store opened again (a restarted server) sees the stage, step, counts, timeline
    and assignments an earlier one wrote."""
    with subject.opened() as store:
        store.create(record("pr-kept", stage="canary", step=1))
        store.add_sample("pr-kept", Sample("canary", 1, "candidate", {"latency_s": 2.0}))
        store.add_event("pr-kept", PromotionEvent(time.time(), "canary", 1, "step", "25%"))
        store.assign("pr-kept", "conv-9", "candidate")
    with subject.opened() as again:
        found = again.active("helpdesk")
        assert found is not None and (found.stage, found.step) == ("canary", 1)
        assert again.count("pr-kept", "canary", 1, "candidate") == 1
        assert [e.kind for e in again.events("pr-kept")] == ["step"]
        assert again.assignments("pr-kept") == {"conv-9": "candidate"}


@PROMOTION_STORES.check(THREADS)
async def check_two_starts_at_once_give_one_promotion(subject: Subject) -> None:
    """Two threads starting a promotion of one copilot at the same moment: exactly one
    succeeds."""
    with subject.opened() as store:

        def start(promotion_id: str) -> bool:
            try:
                store.create(record(promotion_id, copilot="race"))
            except PromotionConflictError:
                return False
            return True

        results = await asyncio.gather(*(asyncio.to_thread(start, f"pr-race{i}") for i in range(6)))
    assert sum(results) == 1, results


async def _at_once(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run every call in a thread of its own, released together."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        start.wait(timeout=30)
        return call()

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(len(calls)) as threads:
        return list(await asyncio.gather(*(loop.run_in_executor(threads, run, c) for c in calls)))


@PROMOTION_STORES.check(SHARED)
async def check_samples_from_two_replicas_add_up(subject: Subject) -> None:
    """Two stores on one storage (two server replicas) record canary samples from
    several threads at once: every sample is counted, on both."""

    def add(store: PromotionStore) -> None:
        for index in range(20):
            arm: Any = "candidate" if index % 2 else "current"
            store.add_sample("pr-count", Sample("canary", 0, arm, {"latency_s": 0.1}))

    with subject.opened() as first, subject.opened() as second:
        first.create(record("pr-count", stage="canary"))
        await _at_once([partial(add, store) for store in (first, second) for _ in range(3)])
        for store in (first, second):
            assert store.count("pr-count", "canary", 0, "candidate") == 60
            assert store.count("pr-count", "canary", 0, "current") == 60
            assert len(store.samples("pr-count", "canary", step=0)) == 120


@PROMOTION_STORES.check(SHARED)
async def check_two_replicas_move_a_stage_once(subject: Subject) -> None:
    """Replicas deciding the same step at the same moment: exactly one compare-and-set
    moves it, every time; of a promotion and a rollback at once, one ends it."""

    def move(store: PromotionStore, at: int, **changes: Any) -> bool:
        expect = {"stage": "canary", "step": at, "status": "running"}
        return store.update("pr-move", expect=expect, **changes)

    with subject.opened() as first, subject.opened() as second:
        first.create(record("pr-move", stage="canary", step=0))
        for step in (0, 1):
            moves = [partial(move, store, step, step=step + 1) for store in (first, second)]
            moved = await _at_once(moves * 4)
            assert sum(moved) == 1, moved
        assert second.get("pr-move").step == 2
        ended = await _at_once(
            [
                partial(move, first, 2, stage="done", status="promoted"),
                partial(move, second, 2, stage="done", status="rolled_back"),
            ]
        )
        assert sum(ended) == 1, ended
        final = first.get("pr-move")
        assert (final.stage, final.status) == ("done", "promoted" if ended[0] else "rolled_back")


@PROMOTION_STORES.check(SHARED)
async def check_replicas_agree_on_a_conversations_model(subject: Subject) -> None:
    """Two replicas assigning one conversation at once (each its own choice): both get
    the same, first-written model; a promotion started on one is active on the other,
    and of starts on both at once one succeeds."""
    with subject.opened() as first, subject.opened() as second:
        first.create(record("pr-agree", copilot="shared", stage="canary"))
        found = second.active("shared")
        assert found is not None and found.promotion_id == "pr-agree"
        with expect(PromotionConflictError):
            second.create(record("pr-again", copilot="shared"))
        for index in range(10):
            key = f"conv-{index}"
            arms = await _at_once(
                [
                    partial(first.assign, "pr-agree", key, "candidate"),
                    partial(second.assign, "pr-agree", key, "current"),
                ]
            )
            assert arms[0] == arms[1], arms
            assert first.assignments("pr-agree")[key] == arms[0]
        starts = await _at_once(
            [
                partial(_started, store, record(f"pr-r{index}", copilot="both"))
                for index, store in enumerate((first, second, first, second))
            ]
        )
        assert sum(starts) == 1, starts


def _started(store: PromotionStore, written: PromotionRecord) -> bool:
    try:
        store.create(written)
    except PromotionConflictError:
        return False
    return True
