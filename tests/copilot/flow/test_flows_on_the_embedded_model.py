"""Ten flows of the kinds in Prompt flow's public examples run offline on the embedded
model (the 0.5B the test suite assembles), as `pilothouse flow test` runs them: every
line of each flow's data.jsonl completes, with the outputs, bypassed branches and
metrics the flow's mechanics say. The model's wording is not asserted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pilothouse.cli.app import app
from pilothouse.config import Settings
from pilothouse.copilot.flow import Flow, FlowResult, read_rows
from pilothouse.models.base import Model
from pilothouse.models.registry import create_model
from tests.real_model import real_weights

pytestmark = pytest.mark.real_model

FLOWS = Path(__file__).resolve().parents[3] / "examples" / "promptflow"
NAMES = sorted(p.name for p in FLOWS.iterdir() if (p / "flow.dag.yaml").is_file())
CAP = 12  # output tokens per llm node: the mechanics, not the prose, are under test


@pytest.fixture(scope="module")
def local() -> Iterator[tuple[str, Model, Settings, Path]]:
    gguf = real_weights()
    home = Path(gguf).parent.parent / ".flow-tests-unused"
    settings = Settings.from_sources(home=home, environ={})
    model_id = f"local:{gguf}"
    model = create_model(model_id, settings)
    yield model_id, model, settings, gguf
    import asyncio

    asyncio.run(model.aclose())


def test_there_are_ten_flows() -> None:
    assert len(NAMES) >= 10


@pytest.mark.parametrize("name", NAMES)
async def test_flow_test_runs_every_line(name: str, local, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model_id, model, _, _ = local
    settings = Settings.from_sources(home=tmp_path / "home", environ={})
    folder = FLOWS / name
    flow = Flow.open(
        folder, settings, model=model_id, models={model_id: model}, max_output_tokens=CAP
    )
    report = await flow.test(read_rows(folder / "data.jsonl"))
    assert report.failed == 0, report.lines
    declared = [o.name for o in flow.definition.outputs]
    for line in report.lines:
        assert isinstance(line, FlowResult)
        assert list(line.outputs) == declared
        chat = flow.definition.chat_output()
        if chat is not None:
            assert isinstance(line.outputs[chat.name], str)
    lines = [line for line in report.lines if isinstance(line, FlowResult)]
    if name == "route_by_intent":
        assert [line.bypassed for line in lines] == [["answer_general"], ["answer_math"]]
    if name == "web_classification":
        assert [line.bypassed for line in lines] == [["keep_text"], ["summarize_text_content"]]
        assert all(set(line.outputs) == {"category", "evidence"} for line in lines)
    if name == "eval_accuracy":
        assert report.metrics == {"accuracy": 0.5}
    if name == "extract_json":
        assert isinstance(lines[0].outputs["raw"], str)


def test_the_cli_runs_a_flow_test(local, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    model_id, _, _, _ = local
    monkeypatch.setenv("PILOTHOUSE_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(
        app,
        ["flow", "test", str(FLOWS / "basic_chat"), "-m", model_id, "--max-tokens", "8", "--json"],
    )
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout.splitlines()[0])
    assert first["status"] == "completed" and isinstance(first["outputs"]["answer"], str)
    run = CliRunner().invoke(
        app,
        [
            "flow",
            "run",
            str(FLOWS / "route_by_intent"),
            "-i",
            "question=What is 1 + 1?",
            "-m",
            model_id,
            "--max-tokens",
            "4",
        ],
    )
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["intent"] == "math"
