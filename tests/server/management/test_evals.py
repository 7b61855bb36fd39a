"""Eval runs and comparisons, read-only, over the management API."""

from __future__ import annotations

from pathlib import Path

from pilothouse.config import Settings
from pilothouse.models import FunctionModel
from pilothouse.pipeline.runner import EvalPlan, EvalRunner
from pilothouse.storage.evals import EvalStore
from tests.pipeline.conftest import bad_answer, good_answer, make_copilot

from .conftest import ServeFactory


async def test_eval_runs_cases_and_comparisons(
    serve: ServeFactory, settings: Settings, tmp_path: Path
) -> None:
    folder = make_copilot(tmp_path / "evals")
    bodies = {"test:good": good_answer, "test:bad": bad_answer}
    with EvalStore.for_settings(settings) as store:
        runner = EvalRunner(
            settings,
            store,
            model_factory=lambda m: [FunctionModel(bodies[m], model_id=m)],  # type: ignore[arg-type]
        )
        run_id = await runner.start(EvalPlan(folder=str(folder), models=("test:good", "test:bad")))
    server = await serve()

    runs = (await server.client.get("/api/evals")).json()["runs"]
    assert [r["run_id"] for r in runs] == [run_id]
    assert [a["label"] for a in runs[0]["arms"]] == ["test:good", "test:bad"]
    assert runs[0]["status"] == "finished" and runs[0]["total"] == 16

    detail = (await server.client.get(f"/api/evals/{run_id[:6]}")).json()
    good, bad = detail["arms"]
    assert good["cases"] == {"passed": 8, "failed": 0, "error": 0}
    passing = next(m for m in good["metrics"] if m["metric"] == "pass")
    assert passing["mean"] == 1.0 and passing["n"] == 8
    assert bad["cases"]["failed"] == 8

    cases = (
        await server.client.get(f"/api/evals/{run_id}/cases", params={"arm": 2, "limit": 3})
    ).json()["cases"]
    assert len(cases) == 3 and all(c["status"] == "failed" for c in cases)
    assert cases[0]["trace_id"] and any(s["value"] == 0.0 for s in cases[0]["scores"])
    trace = await server.client.get(f"/api/runs/{cases[0]['trace_id']}")
    assert trace.status_code == 200

    compared = (await server.client.get("/api/evals/compare", params={"a": run_id})).json()
    verdicts = {m["metric"]: m["verdict"] for m in compared["metrics"]}
    assert verdicts["pass"] == "worse"  # 8 of 8 cases regressed: McNemar p < 0.01
    assert len(compared["regressed"]) == 8 and compared["improved"] == []

    missing = await server.client.get("/api/evals/ev-nothere")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "eval_run_not_found"
    unpaired = await server.client.get("/api/evals/compare", params={"a": f"{run_id}@1"})
    assert unpaired.status_code == 400
    assert (await server.anonymous.get("/api/evals")).status_code == 401
