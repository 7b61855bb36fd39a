"""The eval metrics of acting only on what the user said: invented identifiers that
reached a tool, calls the grounded check stopped, citations the model made, and the
time of the decision step."""

from __future__ import annotations

import json
from pathlib import Path

from pilothouse.config import Settings
from pilothouse.models import FunctionModel
from pilothouse.models.profiles import ModelProfile
from pilothouse.pipeline.runner import EvalPlan, EvalRunner
from pilothouse.storage.evals import EvalStore
from pilothouse.types import ModelRequest
from tests.pipeline.conftest import bad_answer
from tests.pipeline.test_runner import run_eval, scores_by_case


async def test_an_invented_id_that_reached_a_tool_is_counted(
    copilot_dir: Path, settings: Settings, store: EvalStore
) -> None:
    text = (copilot_dir / "copilot.yaml").read_text()
    (copilot_dir / "copilot.yaml").write_text(
        text.replace(
            "functions: [create_ticket, ticket_status]",
            "functions: [create_ticket, ticket_status]\n    grounded: off",
        )
    )
    run_id = await run_eval(copilot_dir, settings, store, **{"test:bad": bad_answer})
    scores = scores_by_case(store, run_id, 1)
    assert scores["which-ticket"]["invented_arguments"] == 1.0  # HD-1000: nobody said it
    assert scores["which-ticket"]["tool_restraint"] == 0.0
    assert scores["ticket-status"]["invented_arguments"] == 1.0  # HD-9999 for HD-1001
    assert scores["vpn-client"]["invented_arguments"] == 0.0
    assert scores["which-ticket"]["blocked_calls"] == 0.0


def small_model(request: ModelRequest) -> str:
    """Decides and answers in steps, as a model with emulated tools does."""
    step = request.messages[-1].text.rsplit("\n", 1)[-1]
    if step.startswith("Step: decide"):
        return json.dumps({"decision": "answer"})
    return json.dumps({"sources": [1], "answer": "Use WireGuard."})


async def test_model_citations_and_decision_time_are_measured(
    copilot_dir: Path, settings: Settings, store: EvalStore
) -> None:
    profile = ModelProfile(family="test", native_tools=False, json_schema=True, input_price=None)
    runner = EvalRunner(
        settings,
        store,
        model_factory=lambda model_id: [
            FunctionModel(small_model, model_id=model_id, profile=profile)
        ],
    )
    plan = EvalPlan(folder=str(copilot_dir), models=("local:small",), cases=("vpn-client",))
    run_id = await runner.start(plan)
    scores = scores_by_case(store, run_id, 1)["vpn-client"]
    assert scores["model_cited"] == 1.0 and scores["citation_matched"] == 0.0
    assert scores["decision_s"] is not None and 0 <= scores["decision_s"] <= scores["latency_s"]  # type: ignore[operator]
