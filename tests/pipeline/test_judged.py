"""Judged metrics and similarity with scripted judges: a verdict per judge, a judge's
garbage counted as unjudged (never a pass or a fail), agreement between two judges,
editable rubrics; semantic similarity with the local embedder."""

from __future__ import annotations

import json
from pathlib import Path

from pilothouse.config import Settings
from pilothouse.models import FunctionModel
from pilothouse.pipeline.judge import parse_verdict
from pilothouse.pipeline.runner import EvalPlan, EvalRunner
from pilothouse.pipeline.summary import summarize
from pilothouse.storage.evals import EvalStore
from pilothouse.types import ModelRequest
from tests.pipeline.conftest import bad_answer, good_answer


def strict_judge(request: ModelRequest) -> str:
    """Says yes when the answer names WireGuard (the reference's fact)."""
    assert request.output_schema is not None and request.output_schema.name == "verdict"
    prompt = request.messages[-1].text
    answer = prompt.rsplit("ANSWER:", 1)[-1]
    verdict = "yes" if "WireGuard" in answer else "no"
    return json.dumps({"reason": "compared with the reference", "verdict": verdict})


def garbage_judge(request: ModelRequest) -> str:
    return "Sure! The answer looks fine to me."


def lenient_judge(request: ModelRequest) -> str:
    return 'Here you go: {"reason": "fine", "verdict": "yes"} hope that helps'


def make_factory(answer):  # type: ignore[no-untyped-def]
    judges = {
        "test:strict": strict_judge,
        "test:garbage": garbage_judge,
        "test:lenient": lenient_judge,
    }

    def make(model_id: str) -> list[FunctionModel]:
        return [FunctionModel(judges.get(model_id, answer), model_id=model_id)]

    return make


async def judged(
    copilot_dir: Path,
    settings: Settings,
    store: EvalStore,
    answer,
    judges: tuple[str, ...],  # type: ignore[no-untyped-def]
) -> dict[tuple[str, str, str], tuple[float | None, str]]:
    runner = EvalRunner(settings, store, model_factory=make_factory(answer))
    plan = EvalPlan(
        folder=str(copilot_dir), models=("test:model",), judges=judges, cases=("vpn-client",)
    )
    run_id = await runner.start(plan)
    return {
        (metric, judge, case_id): (value, detail)
        for _s, case_id, _r, metric, judge, value, detail in store.scores(run_id, 1)
    }, run_id  # type: ignore[return-value]


async def test_a_judge_passes_a_correct_answer_and_fails_a_wrong_one(
    copilot_dir: Path, settings: Settings, store: EvalStore
) -> None:
    good, _ = await judged(copilot_dir, settings, store, good_answer, ("test:strict",))
    assert good[("correctness", "test:strict", "vpn-client")][0] == 1.0
    assert good[("groundedness", "test:strict", "vpn-client")][0] == 1.0
    bad, _ = await judged(copilot_dir, settings, store, bad_answer, ("test:strict",))
    assert bad[("correctness", "test:strict", "vpn-client")] == (0.0, "compared with the reference")


async def test_a_garbage_judge_is_unjudged_and_two_judges_give_an_agreement(
    copilot_dir: Path, settings: Settings, store: EvalStore
) -> None:
    scores, run_id = await judged(
        copilot_dir, settings, store, good_answer, ("test:strict", "test:garbage")
    )
    value, detail = scores[("correctness", "test:garbage", "vpn-client")]
    assert value is None and detail.startswith("unjudged: not a JSON verdict")
    summary = summarize(store, run_id).arms[0]
    garbage = summary.metric("correctness", "test:garbage")
    assert garbage is not None and garbage.interval is None and garbage.unjudged == 1
    assert store.counts(run_id, 1)["passed"] == 1  # unjudged is no failure

    _, run_id = await judged(
        copilot_dir, settings, store, good_answer, ("test:strict", "test:lenient")
    )
    [agreement] = [
        a for a in summarize(store, run_id).arms[0].agreements if a.metric == "correctness"
    ]
    assert agreement.judges == ("test:lenient", "test:strict")
    assert agreement.cases == 1 and agreement.share == 1.0


async def test_a_rubric_named_in_copilot_yaml_replaces_the_built_in(
    copilot_dir: Path, settings: Settings, store: EvalStore
) -> None:
    (copilot_dir / "evals/strict.prompty").write_text(
        "---\nname: mine\ninputs:\n  question: {kind: string}\n  answer: {kind: string}\n"
        "  reference: {kind: string}\n  passages: {kind: string}\n---\n"
        "system:\nMY RUBRIC\n\nuser:\nANSWER: {{answer}}\n"
    )
    yaml = copilot_dir / "copilot.yaml"
    yaml.write_text(yaml.read_text() + "  rubrics: {correctness: evals/strict.prompty}\n")
    seen: list[str] = []

    def judge(request: ModelRequest) -> str:
        seen.append(request.messages[0].text)
        return strict_judge(request)

    runner = EvalRunner(
        settings,
        store,
        model_factory=lambda m: [
            FunctionModel(judge if m == "test:j" else good_answer, model_id=m)
        ],  # type: ignore[arg-type]
    )
    await runner.start(
        EvalPlan(
            folder=str(copilot_dir), models=("test:m",), judges=("test:j",), cases=("vpn-client",)
        )
    )
    assert "MY RUBRIC" in seen and any(s.startswith("You check answers") for s in seen)


def test_verdict_parsing() -> None:
    assert parse_verdict('{"reason": "ok", "verdict": "partly"}').value == 0.5
    assert parse_verdict('```json\n{"reason": "r", "verdict": "NO"}\n```').value == 0.0
    assert parse_verdict('{"reason": "r", "verdict": "maybe"}').value is None
    assert parse_verdict("").value is None


async def test_similarity_is_higher_for_an_answer_that_says_what_the_reference_says(
    copilot_dir: Path, settings: Settings, store: EvalStore
) -> None:
    def close(request: ModelRequest) -> str:
        return "We use the WireGuard VPN client; connect to vpn.testcorp.example [1]."

    def off_topic(request: ModelRequest) -> str:
        return "Printers are next to the kitchen on floor 3."

    good, _ = await judged(copilot_dir, settings, store, close, ())
    bad, _ = await judged(copilot_dir, settings, store, off_topic, ())
    good_value = good[("similarity", "", "vpn-client")][0]
    bad_value = bad[("similarity", "", "vpn-client")][0]
    assert good_value is not None and bad_value is not None
    assert 0 <= bad_value < good_value <= 1
    assert ("correctness", "", "vpn-client") not in good  # no judge, no judged score
