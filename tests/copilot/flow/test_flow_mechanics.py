"""Prompt flow flows with a function model: references, activate and bypass, variants,
python nodes under the tool contract, aggregation and metrics, connections mapping,
every node a span, the flow served as an OpenAI model, and the must-fail cases (an
unsupported feature names the node and the feature)."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from pilothouse.config import Settings
from pilothouse.copilot.flow import Flow, FlowError, FlowModel, read_rows
from pilothouse.models import FunctionModel
from pilothouse.server.app import create_app
from pilothouse.tracing import MemorySink, Tracer
from pilothouse.tracing import attributes as A
from pilothouse.types import ModelRequest
from tests.server.conftest import running

FLOWS = Path(__file__).resolve().parents[3] / "examples" / "promptflow"
LOCAL = "local:qwen2.5-coder-1.5b"  # what the examples' connections.yaml name


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_sources(home=tmp_path / "home", environ={})


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(FLOWS / name, target)
    return target


def _echo_system(request: ModelRequest) -> str:
    return request.messages[0].text.splitlines()[0]


async def test_references_python_nodes_and_chat_history(settings: Settings) -> None:
    seen: list[ModelRequest] = []

    def answer(request: ModelRequest) -> str:
        seen.append(request)
        return "Your name is Ada."

    flow = Flow.open(FLOWS / "chat_with_history", settings, models={LOCAL: FunctionModel(answer)})
    history = [{"inputs": {"question": "I am Ada."}, "outputs": {"answer": "Hi Ada."}}]
    result = await flow.run({"question": "Who am I?", "chat_history": history})
    assert result.outputs == {"answer": "Your name is Ada.", "turns": 1}
    assert [(m.role, m.text) for m in seen[0].messages[1:]] == [
        ("user", "I am Ada."),
        ("assistant", "Hi Ada."),
        ("user", "Who am I?"),
    ]
    assert seen[0].max_output_tokens == 64


async def test_activate_bypasses_a_branch_and_defaults_fill_its_inputs(settings: Settings) -> None:
    flow = Flow.open(
        FLOWS / "route_by_intent", settings, models={LOCAL: FunctionModel(_echo_system)}
    )
    math = await flow.run({"question": "What is 2 + 2?"})
    assert math.bypassed == ["answer_general"]
    assert math.outputs == {
        "intent": "math",
        "answer": "Solve the arithmetic. Answer with the number only.",
    }
    general = await flow.run({"question": "Why is the sky blue?"})
    assert general.bypassed == ["answer_math"] and general.nodes["answer_math"] is None


async def test_variants_default_and_chosen(settings: Settings) -> None:
    seen: list[ModelRequest] = []

    def answer(request: ModelRequest) -> str:
        seen.append(request)
        return "one two three"

    models = {LOCAL: FunctionModel(answer)}
    default = Flow.open(FLOWS / "summarize_variants", settings, models=models)
    assert (await default.run({"text": "t"})).outputs == {"summary": "one two three", "words": 3}
    chosen = Flow.open(
        FLOWS / "summarize_variants", settings, models=models, variants=["${summarize.variant_1}"]
    )
    await chosen.run({"text": "t"})
    assert "two sentences" in seen[0].messages[0].text and seen[0].max_output_tokens == 48
    assert "five words" in seen[1].messages[0].text and seen[1].max_output_tokens == 16
    with pytest.raises(FlowError, match="no variant 'variant_9'"):
        Flow.open(FLOWS / "summarize_variants", settings, variants=["summarize.variant_9"])


async def test_aggregation_logs_metrics(settings: Settings) -> None:
    flow = Flow.open(FLOWS / "eval_accuracy", settings)
    report = await flow.test(read_rows(FLOWS / "eval_accuracy/data.jsonl"))
    assert [line.outputs["grade"] for line in report.lines] == [  # type: ignore[union-attr]
        "Correct",
        "Correct",
        "Incorrect",
        "Incorrect",
    ]
    assert report.metrics == {"accuracy": 0.5} and report.failed == 0


async def test_every_node_is_a_span(settings: Settings) -> None:
    sink = MemorySink()
    flow = Flow.open(
        FLOWS / "web_classification",
        settings,
        models={LOCAL: FunctionModel(lambda r: '{"category": "App", "evidence": "URL"}')},
        tracer=Tracer([sink]),
    )
    result = await flow.run({})
    assert result.outputs == {"category": "App", "evidence": "URL"}
    names = [s.name for s in sink.spans]
    for node in flow.definition.nodes:
        assert f"node {node.name}" in names
    bypassed = next(s for s in sink.spans if s.name == "node keep_text")
    assert bypassed.attributes["pilothouse.flow.bypassed"] is True
    root = next(s for s in sink.spans if s.kind == "run")
    model_spans = [s for s in sink.spans if s.kind == "model"]
    assert len(model_spans) == 2 and all(s.trace_id == root.trace_id for s in model_spans)


async def test_connections_map_and_its_error(settings: Settings, tmp_path: Path) -> None:
    folder = _copy("chat_with_history", tmp_path)
    (folder / "connections.yaml").write_text("azure_open_ai_connection:\n  gpt-35: openai:x\n")
    flow = Flow.open(folder, settings)
    with pytest.raises(FlowError) as info:
        await flow.run({"question": "q"})
    message = str(info.value)
    assert "flow.dag.yaml:24: nodes.chat: the connection 'azure_open_ai_connection'" in message
    assert "(deployment 'gpt-4o')" in message and "connections.yaml" in message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            "type: llm\n  source:\n    type: code\n    path: chat.jinja2",
            "type: llm\n  source:\n    type: package\n"
            "    tool: promptflow.tools.aoai.AzureOpenAI.chat",
        ),
        ("type: python", "type: custom_llm"),
        ("${inputs.question}", "${inputs.query}"),
        ("${inputs.chat_history}\n- name: chat", "${chat.output}\n- name: chat"),
    ],
    ids=["packaged-tool", "custom-llm", "unknown-input", "cycle"],
)
def test_unsupported_or_broken_flows_name_the_node(
    settings: Settings, tmp_path: Path, edit: str, expected: str
) -> None:
    folder = _copy("chat_with_history", tmp_path)
    file = folder / "flow.dag.yaml"
    text = file.read_text()
    assert edit in text
    text = text.replace(edit, expected, 1)
    if "${chat.output}" in expected:  # and chat reads count_turns: a cycle
        text = text.replace(
            "question: ${inputs.question}\n  connection",
            "question: ${count_turns.output}\n  connection",
        )
    file.write_text(text)
    with pytest.raises(FlowError) as info:
        Flow.open(folder, settings)
    message = str(info.value)
    assert message.startswith(str(file))
    assert "count_turns" in message or "'chat'" in message or "chat" in message


def test_flex_flows_and_uploaded_code_are_refused(settings: Settings, tmp_path: Path) -> None:
    flex = tmp_path / "flex"
    flex.mkdir()
    (flex / "flow.flex.yaml").write_text("entry: app:run\n")
    with pytest.raises(FlowError, match="flex flows"):
        Flow.open(flex, settings)
    with pytest.raises(FlowError, match=r"nodes.count_turns: python nodes run the flow's own code"):
        Flow.open(FLOWS / "chat_with_history", settings, allow_code=False)


def test_a_flow_is_served_as_an_openai_model(settings: Settings) -> None:
    seen: list[ModelRequest] = []

    def answer(request: ModelRequest) -> str:
        seen.append(request)
        return "Paris."

    sink = _ClosingSink()
    flow = Flow.open(
        FLOWS / "basic_chat",
        settings,
        models={LOCAL: FunctionModel(answer)},
        tracer=Tracer([sink]),
    )
    app = create_app(settings, no_auth=True, models={"basic_chat": FlowModel(flow)})
    body = {
        "model": "basic_chat",
        "messages": [
            {"role": "user", "content": "Capital of Italy?"},
            {"role": "assistant", "content": "Rome."},
            {"role": "user", "content": "And of France?"},
        ],
    }
    with running(app) as (base, _):
        reply = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=30)
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"] == "Paris."
        streamed = httpx.post(
            f"{base}/v1/chat/completions", json={**body, "stream": True}, timeout=30
        )
        assert "Paris." in streamed.text and "[DONE]" in streamed.text
        listed = httpx.get(f"{base}/v1/models", timeout=30).json()
        assert "basic_chat" in [m["id"] for m in listed["data"]]
    assert [(m.role, m.text) for m in seen[0].messages[1:]] == [
        ("user", "Capital of Italy?"),
        ("assistant", "Rome."),
        ("user", "And of France?"),
    ]
    assert len(sink.spans) > 0 and not sink.closed  # the app's models are closed: not this one


class _ClosingSink(MemorySink):
    closed = False

    def close(self) -> None:
        self.closed = True


async def test_a_served_flow_closes_the_tracer_it_owns(settings: Settings) -> None:
    sink = _ClosingSink()
    flow = Flow.open(FLOWS / "eval_accuracy", settings, tracer=Tracer([sink]))
    model = FlowModel(flow, owns_tracer=True)
    await model.aclose()
    assert sink.closed


CALL_API_FLOW = """\
inputs:
  q:
    type: string
outputs:
  out:
    type: string
    reference: ${call_api.output}
nodes:
- name: call_api
  type: python
  source:
    type: code
    path: call_api.py
  inputs:
    conn: my_custom_connection
    q: ${inputs.q}
"""
CALL_API = """\
from promptflow import tool
from promptflow.connections import CustomConnection


@tool
def call_api(conn: CustomConnection, q: str) -> str:
    return f"{conn.api_base} {conn.api_key} {q}"
"""
CUSTOM_CONNECTION = """\
my_custom_connection:
  type: custom
  configs:
    api_base: https://search.example.com
  secrets:
    api_key: ${env:SEARCH_KEY}
"""


async def test_python_nodes_take_connection_objects_from_connections_yaml(tmp_path: Path) -> None:
    folder = tmp_path / "call_api"
    folder.mkdir()
    (folder / "flow.dag.yaml").write_text(CALL_API_FLOW)
    (folder / "call_api.py").write_text(CALL_API)
    home = tmp_path / "home"
    unmapped = Settings.from_sources(home=home, environ={})
    with pytest.raises(FlowError) as info:
        Flow.open(folder, unmapped)
    assert "flow.dag.yaml:9: nodes.call_api: input 'conn' takes a connection" in str(info.value)
    assert "my_custom_connection" in str(info.value)
    (folder / "connections.yaml").write_text(CUSTOM_CONNECTION)
    with pytest.raises(FlowError, match=r"my_custom_connection.api_key: .*SEARCH_KEY is not set"):
        Flow.open(folder, unmapped)
    keyed = Settings.from_sources(home=home, environ={"SEARCH_KEY": "k-123"})
    result = await Flow.open(folder, keyed).run({"q": "vpn"})
    assert result.outputs == {"out": "https://search.example.com k-123 vpn"}


async def test_a_run_records_its_question_answer_and_status(settings: Settings) -> None:
    sink = MemorySink()
    flow = Flow.open(
        FLOWS / "basic_chat",
        settings,
        models={LOCAL: FunctionModel(lambda r: "Bonjour.")},
        tracer=Tracer([sink]),
    )
    await flow.run({"question": "Say hello in French."})
    root = next(s for s in sink.spans if s.kind == "run")
    assert root.attributes[A.RUN_QUESTION] == "Say hello in French."
    assert root.attributes[A.RUN_ANSWER] == "Bonjour."
    assert root.attributes[A.RUN_STATUS] == "completed"

    def broken(request: ModelRequest) -> str:
        raise RuntimeError("the model is down")

    failing = Flow.open(
        FLOWS / "basic_chat", settings, models={LOCAL: FunctionModel(broken)}, tracer=Tracer([sink])
    )
    with pytest.raises(Exception, match="the model is down"):
        await failing.run({"question": "Again?"})
    last = [s for s in sink.spans if s.kind == "run"][-1]
    assert last.attributes[A.RUN_STATUS] == "failed"


@pytest.mark.parametrize("feature", ["tools", "functions"])
def test_an_llm_node_with_function_calling_is_refused_naming_it(
    settings: Settings, tmp_path: Path, feature: str
) -> None:
    # Prompt flow's function-calling flows pass `tools` to the llm node and read the
    # tool calls from its output; sending the request without them would answer
    # something else, silently.
    folder = _copy("basic_chat", tmp_path)
    dag = folder / "flow.dag.yaml"
    dag.write_text(
        dag.read_text().replace(
            "    temperature: 0.7\n",
            f"    temperature: 0.7\n    {feature}: ${{inputs.question}}\n",
        )
    )
    with pytest.raises(FlowError) as info:
        Flow.open(folder, settings)
    message = str(info.value)
    assert f"flow.dag.yaml:19: nodes.chat: input {feature!r}" in message
    assert "function calling" in message
