"""The eval runner through the real copilot runtime, with scripted models: every check
passes and fails where it should, results are stored case by case, errors are counted
apart from failures, approvals are denied unless the suite approves."""

from __future__ import annotations

import sys
from pathlib import Path

from pilothouse.config import Settings
from pilothouse.errors import UnavailableError
from pilothouse.models import FunctionModel
from pilothouse.models.profiles import ModelProfile
from pilothouse.pipeline.runner import EvalPlan, EvalRunner
from pilothouse.pipeline.summary import summarize
from pilothouse.storage.evals import EvalStore
from pilothouse.storage.traces import TraceStore
from pilothouse.types import ModelRequest
from tests.pipeline.conftest import bad_answer, factory, good_answer

CHECKS = {
    "vpn-client": {"answer_includes", "sources"},
    "printer": {"answer_includes", "sources"},
    "open-ticket": {"tool_calls"},
    "ticket-status": {"tool_calls"},
    "annual-leave": {"no_answer", "tool_restraint"},
    "which-ticket": {"answer_matches", "tool_restraint"},
    "json-answer": {"answer_schema", "tool_restraint"},
    "follow-up": {"answer_includes", "tool_restraint"},
}


def scores_by_case(store: EvalStore, run_id: str, arm: int) -> dict[str, dict[str, float | None]]:
    found: dict[str, dict[str, float | None]] = {}
    for _suite, case_id, _rep, metric, _judge, value, _detail in store.scores(run_id, arm):
        found.setdefault(case_id, {})[metric] = value
    return found


async def run_eval(
    copilot_dir: Path, settings: Settings, store: EvalStore, **models: object
) -> str:
    runner = EvalRunner(settings, store, model_factory=factory(**models))
    plan = EvalPlan(folder=str(copilot_dir), models=tuple(models), concurrency=3)
    return await runner.start(plan)


async def test_a_good_model_passes_every_check_and_each_case_links_to_its_trace(
    copilot_dir: Path, settings: Settings, store: EvalStore
) -> None:
    run_id = await run_eval(copilot_dir, settings, store, **{"test:good": good_answer})
    run = store.get_run(run_id)
    assert run.status == "finished" and run.total == 8 and run.copilot == "evaldesk"
    assert store.counts(run_id, 1) == {"passed": 8, "failed": 0, "error": 0}
    scores = scores_by_case(store, run_id, 1)
    for case_id, checks in CHECKS.items():
        for check in checks:
            assert scores[case_id][check] == 1.0, (case_id, check)
        assert scores[case_id]["pass"] == 1.0
        assert scores[case_id]["latency_s"] is not None
    traces = TraceStore.for_settings(settings)
    for row in store.cases(run_id):
        detail = traces.get_run(row.trace_id or "")
        assert detail.run.question == row.question  # `pilothouse trace` shows this case
    traces.close()


async def test_a_bad_model_fails_every_check_with_a_reason(
    copilot_dir: Path, settings: Settings, store: EvalStore
) -> None:
    run_id = await run_eval(copilot_dir, settings, store, **{"test:bad": bad_answer})
    assert store.counts(run_id, 1) == {"passed": 0, "failed": 8, "error": 0}
    scores = scores_by_case(store, run_id, 1)
    for case_id, checks in CHECKS.items():
        failing = {c for c in checks if scores[case_id].get(c) == 0.0}
        assert failing, (case_id, scores[case_id])
    assert scores["vpn-client"]["answer_includes"] == 0.0
    assert scores["vpn-client"]["sources"] == 0.0  # [2] does not exist: nothing cited
    assert scores["annual-leave"]["no_answer"] == 0.0
    # The ids it guessed never ran (the grounded-argument check stopped them): no
    # needless call reached a tool, and the attempts are counted apart.
    assert scores["which-ticket"]["tool_restraint"] == 1.0
    assert scores["which-ticket"]["blocked_calls"] == 1.0
    assert scores["which-ticket"]["invented_arguments"] == 0.0
    assert scores["json-answer"]["answer_schema"] == 0.0
    details = {
        (case_id, metric): detail
        for _s, case_id, _r, metric, _j, _v, detail in store.scores(run_id, 1)
    }
    assert details[("vpn-client", "answer_includes")] == "missing: WireGuard"
    assert "made: none" in details[("ticket-status", "tool_calls")]
    assert "HD-9999" in details[("ticket-status", "blocked_calls")]
    assert details[("json-answer", "answer_schema")].startswith("not JSON")


async def test_approval_gated_calls_are_denied_unless_the_suite_approves(
    copilot_dir: Path, settings: Settings, store: EvalStore
) -> None:
    suite = copilot_dir / "evals/basic.yaml"
    suite.write_text(
        suite.read_text().replace(
            "  - id: ticket-status\n", "    approve: true\n  - id: ticket-status\n", 1
        )
    )
    first = await run_eval(copilot_dir, settings, store, **{"test:good": good_answer})
    [row] = [r for r in store.cases(first) if r.case_id == "open-ticket"]
    [call] = row.details["tool_calls"]
    assert call["name"] == "create_ticket" and call["approved"] is True
    tools = next(
        m
        for m in sys.modules.values()
        if getattr(m, "__file__", "") == str(copilot_dir / "tools.py")
    )
    assert tools.CREATED == ["Monitor flickers"]

    suite.write_text(suite.read_text().replace("    approve: true\n", ""))
    second = await run_eval(copilot_dir, settings, store, **{"test:good": good_answer})
    [row] = [r for r in store.cases(second) if r.case_id == "open-ticket"]
    [call] = row.details["tool_calls"]
    assert call["approved"] is False and call["error"] is True
    assert row.status == "passed"  # the call was made as expected, then denied
    assert tools.CREATED == ["Monitor flickers"]  # nothing more written


async def test_a_failing_or_unknown_model_gives_errors_counted_apart_and_the_run_goes_on(
    copilot_dir: Path, settings: Settings, store: EvalStore
) -> None:
    def down(request: ModelRequest) -> UnavailableError:
        return UnavailableError("503 from upstream", model="test:down")

    runner = EvalRunner(
        settings,
        store,
        model_factory=factory(
            **{
                "test:down": down,
                "test:gone": UnavailableError("no such model"),
                "test:good": good_answer,
            }
        ),
    )
    plan = EvalPlan(folder=str(copilot_dir), models=("test:down", "test:gone", "test:good"))
    run_id = await runner.start(plan)
    assert store.counts(run_id, 1) == {"passed": 0, "failed": 0, "error": 8}
    assert store.counts(run_id, 2) == {"passed": 0, "failed": 0, "error": 8}
    assert store.counts(run_id, 3)["passed"] == 8
    errors = {r.error for r in store.cases(run_id, 1)}
    assert any("503 from upstream" in (e or "") for e in errors)
    assert {r.error for r in store.cases(run_id, 2)} == {"no such model"}
    summary = summarize(store, run_id)
    assert summary.arms[0].metric("pass") is None  # errors are not failures
    assert summary.arms[2].metric("pass").interval.mean == 1.0  # type: ignore[union-attr]


async def test_an_unknown_provider_from_the_registry_marks_its_cases_as_errors(
    copilot_dir: Path, settings: Settings, store: EvalStore
) -> None:
    runner = EvalRunner(settings, store)
    run_id = await runner.start(EvalPlan(folder=str(copilot_dir), models=("nosuch:model",)))
    rows = store.cases(run_id)
    assert len(rows) == 8 and {r.status for r in rows} == {"error"}
    assert "nosuch" in (rows[0].error or "")


async def test_prompt_variants_on_and_off_are_two_arms(
    copilot_dir: Path, settings: Settings, store: EvalStore
) -> None:
    seen: list[str] = []

    def answer(request: ModelRequest) -> str:
        seen.append(request.messages[0].text)
        return good_answer(request)  # type: ignore[return-value]

    runner = EvalRunner(
        settings,
        store,
        model_factory=lambda model_id: [
            FunctionModel(answer, model_id=model_id, profile=ModelProfile(family="qwen"))
        ],
    )
    plan = EvalPlan(
        folder=str(copilot_dir), models=("local:qwen-test",), variants="both", cases=("vpn-client",)
    )
    run_id = await runner.start(plan)
    run = store.get_run(run_id)
    assert [a.label for a in run.arms] == ["local:qwen-test", "local:qwen-test (no variants)"]
    assert seen[0].startswith("Qwen variant") and seen[1].startswith("You are the test helpdesk")


async def test_repeats_and_filters(copilot_dir: Path, settings: Settings, store: EvalStore) -> None:
    runner = EvalRunner(settings, store, model_factory=factory(**{"test:good": good_answer}))
    plan = EvalPlan(
        folder=str(copilot_dir), models=("test:good",), cases=("vpn-client", "printer"), repeat=3
    )
    run_id = await runner.start(plan)
    rows = store.cases(run_id)
    assert sorted((r.case_id, r.rep) for r in rows) == [
        (c, n) for c in ("printer", "vpn-client") for n in (1, 2, 3)
    ]
    summary = summarize(store, run_id)
    metric = summary.arms[0].metric("answer_includes")
    assert metric is not None and metric.interval is not None
    assert metric.interval.n == 2 and metric.noise == 0.0  # a deterministic model
