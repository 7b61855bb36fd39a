"""The eval-store suite: what every store of eval runs does (SQLite's `EvalStore`,
PostgreSQL's `PostgresEvalStore`). A run is resumed, summarised, compared and gated
from what the store gives back, so the suite checks that a case and its scores are
kept whole, replaced whole, and counted once. With `shared` (several stores open on
one storage, as replicas) cases written through both at once are all kept."""

from __future__ import annotations

import asyncio
from typing import Any

from pilothouse.errors import NotFoundError
from pilothouse.storage.evals import Arm, CaseRow, EvalStore, ScoreRow
from pilothouse.testing.conformance.stores import PERSISTENT, THREADS, StoreSubject
from pilothouse.testing.conformance.suite import Suite, expect

EVAL_STORES: Suite[StoreSubject[Any]] = Suite(
    "eval stores",
    "eval runs with their arms, cases and scores: read back whole, a case rewritten "
    "with its scores in one piece, counts and listings in a stable order",
)

Subject = StoreSubject[EvalStore]
SHARED = "shared"
ARMS = (
    Arm(1, "current", "local:qwen2.5-coder-0.5b"),
    Arm(2, "candidate", "local:qwen2.5-coder-1.5b", variants=False, prompt="p/qwen.prompty"),
)


def create(store: EvalStore, run_id: str, copilot: str = "helpdesk", total: int = 4) -> None:
    plan = {"suites": ["smoke"], "repeats": 2, "note": "naïve ✓"}
    store.create_run(
        run_id, copilot=copilot, folder=f"/srv/{copilot}", plan=plan, arms=ARMS, total=total
    )


def case(case_id: str, rep: int = 1, arm: int = 1, **fields: Any) -> CaseRow:
    values: dict[str, Any] = {
        "arm": arm,
        "suite": "smoke",
        "case_id": case_id,
        "rep": rep,
        "status": "passed",
        "question": f"question {case_id}?",
        "answer": "WireGuard [1]",
        "model": "local:qwen2.5-coder-0.5b",
        "trace_id": f"tr-{case_id}-{rep}",
        "details": {"citations": [1], "latency_s": 0.5},
        "scores": (ScoreRow("pass", 1.0), ScoreRow("faithful", 0.75, "2 of 3", "judge-a")),
        **fields,
    }
    return CaseRow(**values)


@EVAL_STORES.check()
async def check_a_run_reads_back_whole(subject: Subject) -> None:
    """A run and its arms come back by id and by an unambiguous prefix; listings are
    newest first, by copilot when asked; unknown and ambiguous ids are NotFoundError."""
    with subject.opened() as store:
        create(store, "ev-aaaa0001")
        create(store, "ev-aaaa0002", copilot="finance")
        run = store.get_run("ev-aaaa0001")
        assert (run.run_id, run.copilot, run.folder, run.status) == (
            "ev-aaaa0001",
            "helpdesk",
            "/srv/helpdesk",
            "running",
        )
        assert run.plan == {"suites": ["smoke"], "repeats": 2, "note": "naïve ✓"}
        assert run.arms == ARMS and run.total == 4 and run.finished is None
        assert store.get_run("ev-aaaa0002").copilot == "finance"
        assert store.resolve("ev-aaaa0001") == "ev-aaaa0001"
        with expect(NotFoundError):
            store.resolve("ev-aaaa")  # two runs start so
        with expect(NotFoundError):
            store.get_run("ev-nosuch")
        with expect(NotFoundError):
            store.resolve("")
        assert [r.run_id for r in store.list_runs()] == ["ev-aaaa0002", "ev-aaaa0001"]
        assert [r.run_id for r in store.list_runs(copilot="finance")] == ["ev-aaaa0002"]
        assert [r.run_id for r in store.list_runs(limit=1)] == ["ev-aaaa0002"]
        store.set_status("ev-aaaa0001", "finished", total=6)
        done = store.get_run("ev-aaaa0001")
        assert done.status == "finished" and done.total == 6 and done.finished is not None


@EVAL_STORES.check()
async def check_cases_and_scores_are_kept_whole(subject: Subject) -> None:
    """Cases come back in suite, case and repeat order with their details; an unscored
    value stays None; scores are read per arm, metric and case."""
    with subject.opened() as store:
        create(store, "ev-cases")
        store.record_case("ev-cases", case("b", 2))
        store.record_case("ev-cases", case("b", 1, status="failed", error=None))
        store.record_case(
            "ev-cases",
            case("a", 1, status="error", error="timed out", scores=(ScoreRow("pass", None),)),
        )
        store.record_case("ev-cases", case("a", 1, arm=2, model="local:qwen2.5-coder-1.5b"))
        rows = store.cases("ev-cases", 1)
        assert [(r.case_id, r.rep, r.status) for r in rows] == [
            ("a", 1, "error"),
            ("b", 1, "failed"),
            ("b", 2, "passed"),
        ]
        assert rows[0].error == "timed out" and rows[2].details == case("b").details
        assert rows[2].trace_id == "tr-b-2" and rows[2].scores == ()
        assert [r.arm for r in store.cases("ev-cases")] == [1, 1, 1, 2]
        assert [r.case_id for r in store.cases("ev-cases", 1, limit=1, offset=1)] == ["b"]
        assert store.counts("ev-cases", 1) == {"passed": 1, "failed": 1, "error": 1}
        assert store.counts("ev-cases", 2) == {"passed": 1, "failed": 0, "error": 0}
        assert store.done("ev-cases") == {
            (1, "smoke", "a", 1),
            (1, "smoke", "b", 1),
            (1, "smoke", "b", 2),
            (2, "smoke", "a", 1),
        }
        passes = list(store.scores("ev-cases", 1, "pass"))
        assert passes == [
            ("smoke", "a", 1, "pass", "", None, ""),
            ("smoke", "b", 1, "pass", "", 1.0, ""),
            ("smoke", "b", 2, "pass", "", 1.0, ""),
        ]
        assert sorted(store.metrics_of("ev-cases", 1)) == [("faithful", "judge-a"), ("pass", "")]
        assert store.case_scores("ev-cases", 1, "smoke", "b", 2) == [
            ScoreRow("faithful", 0.75, "2 of 3", "judge-a"),
            ScoreRow("pass", 1.0),
        ]


@EVAL_STORES.check()
async def check_a_case_written_again_replaces_it_whole(subject: Subject) -> None:
    """A case recorded again (a resumed run trying it anew) replaces the first try and
    all of its scores: a metric the new try lacks is gone, nothing is counted twice."""
    with subject.opened() as store:
        create(store, "ev-again")
        store.record_case("ev-again", case("a"))
        again = case("a", status="failed", answer="I don't know", scores=(ScoreRow("pass", 0.0),))
        store.record_case("ev-again", again)
        rows = store.cases("ev-again")
        assert len(rows) == 1 and rows[0].status == "failed" and rows[0].answer == "I don't know"
        assert store.case_scores("ev-again", 1, "smoke", "a", 1) == [ScoreRow("pass", 0.0)]
        assert store.metrics_of("ev-again", 1) == [("pass", "")]
        assert store.counts("ev-again", 1) == {"passed": 0, "failed": 1, "error": 0}


@EVAL_STORES.check(PERSISTENT)
async def check_a_reopened_store_resumes_a_run(subject: Subject) -> None:
    """A store opened again (a run resumed after a crash) sees the cases done."""
    with subject.opened() as store:
        create(store, "ev-kept")
        store.record_case("ev-kept", case("a"))
    with subject.opened() as again:
        assert again.done("ev-kept") == {(1, "smoke", "a", 1)}
        assert again.get_run("ev-kept").arms == ARMS


@EVAL_STORES.check(THREADS)
async def check_cases_from_many_threads_are_all_kept(subject: Subject) -> None:
    """Cases recorded from several threads at once (a run's concurrent cases), through
    two stores on one storage when it is shared: each is kept once with its scores."""
    shared = SHARED in subject.capabilities
    with subject.opened() as first, subject.opened() as second:
        create(first, "ev-busy", total=40)

        def write(store: EvalStore, arm: int) -> None:
            for index in range(10):
                store.record_case("ev-busy", case(f"c{index:02}", rep=1, arm=arm))
                store.record_case("ev-busy", case(f"c{index:02}", rep=2, arm=arm))

        stores = (first, second) if shared else (first, first)
        await asyncio.gather(*(asyncio.to_thread(write, stores[a % 2], a) for a in (1, 2)))
        for store in stores:
            assert len(store.done("ev-busy")) == 40
            assert store.counts("ev-busy", 1)["passed"] == 20
            assert len(list(store.scores("ev-busy", 2))) == 40
