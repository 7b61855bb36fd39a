"""`pilothouse import promptflow`: a "retrieve, prompt, answer" chat flow becomes a
copilot folder that opens and answers (its instructions render the flow's own
template, its knowledge is the flow's documents, its side python nodes are tools), and
the report lists what was not converted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pilothouse.cli.app import app
from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.copilot.flow import FlowError
from pilothouse.copilot.flow.importer import import_promptflow
from pilothouse.models import FunctionModel, ScriptedModel, tool_call
from pilothouse.pipeline.suite import parse_suite
from pilothouse.types import ModelRequest, ToolResultPart

FLOWS = Path(__file__).resolve().parents[3] / "examples" / "promptflow"
IMPORTS = Path(__file__).parent / "import_flows"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_sources(home=tmp_path / "home", environ={})


async def test_a_retrieval_chat_flow_becomes_a_copilot_that_answers_from_its_documents(
    settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "helpdesk"
    report = import_promptflow(FLOWS / "chat_with_docs", out)
    assert sorted(p.name for p in (out / "knowledge/docs").iterdir()) == [
        "passwords.md",
        "printing.md",
        "vpn.md",
    ]
    assert any("node `retrieve_documents` (python): replaced" in c for c in report.converted)
    # data.jsonl's expected answers: an eval suite of the copilot, valid as one
    suite = parse_suite((out / "evals/data.yaml").read_text(), out / "evals/data.yaml")
    assert [(c.question, c.reference) for c in suite.cases] == [
        ("Which port does the VPN use?", "Port 51820 (WireGuard, vpn.example.com).")
    ]
    assert "evals/data.yaml" in (out / "copilot.yaml").read_text()
    assert (out / "IMPORT.md").read_text().startswith("# Imported from Prompt flow")
    seen: list[ModelRequest] = []

    def answer(request: ModelRequest) -> str:
        seen.append(request)
        return "Port 51820 (Source: vpn.md)."

    copilot = await Copilot.open(out, settings=settings, models=[FunctionModel(answer)])
    try:
        first = await copilot.ask("Which port does the VPN use?")
        second = await copilot.ask("And for printing?", conversation_id=first.conversation_id)
    finally:
        await copilot.aclose()
    assert first.status == "completed" and first.text == "Port 51820 (Source: vpn.md)."
    assert second.status == "completed"
    system = seen[0].messages[0]
    assert system.role == "system"
    assert system.text.startswith("You are an IT helpdesk assistant.")
    assert "51820" in system.text  # the passage, where the flow's template put its context
    assert [(m.role, m.text) for m in seen[0].messages[1:]] == [
        ("user", "Which port does the VPN use?")
    ]
    # the memory carries the earlier turn between the system message and the question
    assert [(m.role, m.text) for m in seen[1].messages[1:]] == [
        ("user", "Which port does the VPN use?"),
        ("assistant", "Port 51820 (Source: vpn.md)."),
        ("user", "And for printing?"),
    ]
    assert seen[0].max_output_tokens == 96 and seen[0].temperature == 0


async def test_an_index_flow_reports_what_it_could_not_convert_and_wires_its_tools(
    settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "qna"
    report = import_promptflow(IMPORTS / "chat_with_index", out)
    missing = "\n".join(report.not_converted)
    assert "`search_question_from_indexed_docs`" in missing
    assert "azureml://datastores/workspaceblobstore/paths/faiss_index" in missing
    assert "`embed_the_question` (python, promptflow.tools.embedding.embedding)" in missing
    assert "`generate_prompt_context` (python): reads the output of" in missing
    assert "flow input `language`" in missing and "'English'" in missing
    assert "input `top_p`" in missing and "connection `azure_open_ai_connection`" in missing
    assert "(deployment gpt-35-turbo)" in missing
    assert "data.jsonl: no line has both `question` and an expected answer" in missing
    assert (out / "IMPORT.md").read_text().count("\n- ") == len(report.converted) + len(
        report.not_converted
    )
    assert not (out / "knowledge").exists()
    model = ScriptedModel(
        [tool_call("check_service_status", {"question": "is the vpn down?"}), "VPN is degraded."]
    )
    copilot = await Copilot.open(out, settings=settings, models=[model])
    try:
        paused = await copilot.ask("Is the VPN down?")
        assert paused.status == "awaiting_approval"  # not read-only: a person decides
        assert paused.pending[0].call.name == "check_service_status"
        result = await copilot.approve(paused.run_id, approve=[paused.pending[0].call.id])
    finally:
        await copilot.aclose()
    assert result.text == "VPN is degraded."
    assert [t.name for t in model.requests[0].tools] == ["check_service_status"]
    [tool_result] = model.requests[1].messages[-1].parts
    assert isinstance(tool_result, ToolResultPart) and "vpn: degraded" in tool_result.content
    system = model.requests[0].messages[0].text
    assert "Answer in English." in system  # the prompt node's template, its input's default
    assert model.requests[0].messages[-1].text.endswith("Human: Is the VPN down?\nAI:")


def test_flows_it_cannot_convert_say_why(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match="no chat output"):
        import_promptflow(FLOWS / "web_classification", tmp_path / "a")
    python_answer = tmp_path / "python_answer"
    shutil.copytree(FLOWS / "chat_with_history", python_answer)
    dag = python_answer / "flow.dag.yaml"
    dag.write_text(dag.read_text().replace("${chat.output}", "${count_turns.output}"))
    with pytest.raises(FlowError, match=r"node 'count_turns' \(python\), not an llm node"):
        import_promptflow(python_answer, tmp_path / "b")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "copilot.yaml").write_text("name: x\n")
    with pytest.raises(FlowError, match="not empty"):
        import_promptflow(FLOWS / "chat_with_docs", taken)
    assert (taken / "copilot.yaml").read_text() == "name: x\n"


def test_the_cli_imports_and_prints_the_report(tmp_path: Path) -> None:
    out = tmp_path / "qna"
    result = CliRunner().invoke(
        app, ["import", "promptflow", str(IMPORTS / "chat_with_index"), str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["copilot"] == str(out) and report["not_converted"]
    check = CliRunner().invoke(app, ["copilot", "check", str(out)])
    assert check.exit_code == 0, check.output
