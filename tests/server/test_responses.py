"""`/v1/responses` with the official openai SDK: raw models (instructions, streaming
events, function calls and their outputs, previous_response_id) and copilots
(citations in the extension, streaming, a conversation carried on)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from pilothouse.config import Settings
from pilothouse.models import FunctionModel
from pilothouse.server.app import create_app
from pilothouse.server.keys import KeyStore
from pilothouse.types import Message, ModelRequest, ToolCallPart
from tests.server.conftest import COPILOT_NAME, make_key, running
from tests.server.test_sdk_raw import TOOLS as CHAT_TOOLS

RAW = "test:assistant"
SEEN: list[ModelRequest] = []


def assistant(request: ModelRequest) -> Message | str:
    """Calls get_weather when offered it and no result is in yet; else answers from
    what it was sent."""
    SEEN.append(request)
    last = request.messages[-1]
    if last.role == "tool":
        return f"It is {last.tool_results[0].content} in Paris."
    if any(t.name == "get_weather" for t in request.tools):
        return Message("assistant", (ToolCallPart("call_w1", "get_weather", {"city": "Paris"}),))
    users = [m.text for m in request.messages if m.role == "user"]
    return f"You said: {' | '.join(users)}"


def vpn(request: ModelRequest) -> Message | str:
    """The copilot's model: calls the caller's get_weather tool when it is offered and
    asked about the weather, else answers from the handbook."""
    last = request.messages[-1]
    if last.role == "tool":
        return f"It is {last.tool_results[0].content} in Paris; the VPN is WireGuard [1]."
    users = [m.text for m in request.messages if m.role == "user"]
    if "weather" in users[-1].lower() and any(t.name == "get_weather" for t in request.tools):
        return Message("assistant", (ToolCallPart("call_c1", "get_weather", {"city": "Paris"}),))
    return f"Use WireGuard [1]. ({len(users)} user turns)"


@pytest.fixture
def server(copilot_dir: Path, settings: Settings) -> Iterator[tuple[str, str]]:
    SEEN.clear()
    store = KeyStore(settings.database_path)
    key = make_key(store, "models", f"chat:{COPILOT_NAME}")
    app = create_app(
        settings,
        copilots=[copilot_dir],
        keys=store,
        models={RAW: FunctionModel(assistant, model_id=RAW, chunk_size=4)},
        copilot_models={COPILOT_NAME: [FunctionModel(vpn, model_id="local:qwen", chunk_size=4)]},
    )
    with running(app) as (base, _):
        yield base, key
    store.close()


def client(server: tuple[str, str]) -> openai.OpenAI:
    base, key = server
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)


# The chat completions tests' tool, in the Responses API's flat form.
WEATHER_TOOL = {"type": "function", **CHAT_TOOLS[0]["function"], "strict": True}


def test_a_raw_model_answers_with_instructions(server: tuple[str, str]) -> None:
    with client(server) as sdk:
        response = sdk.responses.create(model=RAW, input="hello", instructions="Be brief.")
    assert response.object == "response" and response.status == "completed"
    assert response.output_text == "You said: hello"
    assert response.id.startswith("resp_") and response.model == RAW
    assert response.usage is not None and response.usage.total_tokens > 0
    assert [(m.role, m.text) for m in SEEN[-1].messages] == [
        ("system", "Be brief."),
        ("user", "hello"),
    ]


def test_a_stream_has_the_documented_events(server: tuple[str, str]) -> None:
    with client(server) as sdk:
        events = list(sdk.responses.create(model=RAW, input="hello there", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert kinds.count("response.output_text.delta") > 2
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response  # type: ignore[union-attr]
    assert text == final.output_text == "You said: hello there"
    assert final.usage is not None and final.usage.output_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_function_calls_and_their_outputs(server: tuple[str, str], stream: bool) -> None:
    with client(server) as sdk:
        if stream:
            with sdk.responses.stream(
                model=RAW, input="Weather in Paris?", tools=[WEATHER_TOOL]
            ) as events:
                kinds = [e.type for e in events]
                first = events.get_final_response()
            assert "response.function_call_arguments.delta" in kinds
            assert "response.function_call_arguments.done" in kinds
        else:
            first = sdk.responses.create(model=RAW, input="Weather in Paris?", tools=[WEATHER_TOOL])
        [call] = first.output
        assert call.type == "function_call" and call.name == "get_weather"
        assert call.call_id == "call_w1" and json.loads(call.arguments) == {"city": "Paris"}
        second = sdk.responses.create(
            model=RAW,
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": "call_w1", "output": "18°C"}],
            tools=[WEATHER_TOOL],
        )
    assert second.output_text == "It is 18°C in Paris."
    sent = SEEN[-1].messages
    assert [m.role for m in sent] == ["user", "assistant", "tool"]
    assert sent[1].tool_calls[0].name == "get_weather"


def test_previous_response_id_carries_the_conversation(server: tuple[str, str]) -> None:
    with client(server) as sdk:
        first = sdk.responses.create(model=RAW, input="one", instructions="first rules")
        second = sdk.responses.create(model=RAW, input="two", previous_response_id=first.id)
        assert second.output_text == "You said: one | two"
        assert second.previous_response_id == first.id
        # instructions are not carried over
        assert [m.role for m in SEEN[-1].messages] == ["user", "assistant", "user"]
        unstored = sdk.responses.create(model=RAW, input="three", store=False)
        with pytest.raises(openai.NotFoundError) as missing:
            sdk.responses.create(model=RAW, input="four", previous_response_id=unstored.id)
    assert missing.value.body["code"] == "previous_response_not_found"  # type: ignore[index]


def test_bad_input_is_a_clear_400(server: tuple[str, str]) -> None:
    with client(server) as sdk:
        with pytest.raises(openai.BadRequestError) as web:
            sdk.responses.create(model=RAW, input="x", tools=[{"type": "web_search"}])  # type: ignore[list-item]
        with pytest.raises(openai.BadRequestError) as role:
            sdk.responses.create(model=RAW, input=[{"role": "robot", "content": "x"}])  # type: ignore[list-item]
        with pytest.raises(openai.NotFoundError):
            sdk.responses.create(model="nobody", input="x")
        with pytest.raises(openai.BadRequestError) as user:
            sdk.responses.create(model=RAW, input="x", user=7)  # type: ignore[arg-type]
    assert "only function tools" in web.value.body["message"]  # type: ignore[index]
    assert role.value.body["param"] == "input[0].role"  # type: ignore[index]
    assert user.value.body["param"] == "user"  # type: ignore[index]


def ext(response: Any) -> dict[str, Any]:
    value: dict[str, Any] = (response.model_extra or {})["pilothouse"]
    return value


@pytest.mark.parametrize("stream", [False, True])
def test_a_copilot_answers_with_citations_and_remembers(
    server: tuple[str, str], stream: bool
) -> None:
    with client(server) as sdk:
        if stream:
            events = list(
                sdk.responses.create(model=COPILOT_NAME, input="Which VPN client?", stream=True)
            )
            assert events[0].type == "response.created"
            first = events[-1].response  # type: ignore[union-attr]
            assert events[-1].type == "response.completed"
        else:
            first = sdk.responses.create(model=COPILOT_NAME, input="Which VPN client?")
        assert first.output_text == "Use WireGuard [1]. (1 user turns)"
        info = ext(first)
        assert info["status"] == "completed" and info["model"] == "local:qwen"
        assert info["citations"][0]["source"].endswith("vpn.md")
        assert first.id == f"resp_{info['run_id']}" and first.model == "local:qwen"
        second = sdk.responses.create(
            model=COPILOT_NAME, input="And the port?", previous_response_id=first.id
        )
    assert ext(second)["conversation_id"] == info["conversation_id"]
    assert second.output_text.endswith("(2 user turns)")  # the earlier turn is history


# --- the OpenAI Agents SDK ------------------------------------------------------------


def agent_model(server: tuple[str, str], name: str) -> Any:
    from agents import OpenAIResponsesModel
    from openai import AsyncOpenAI

    base, key = server
    return OpenAIResponsesModel(
        model=name, openai_client=AsyncOpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)
    )


async def final_output(agent: Any, question: str, *, streamed: bool = False) -> Any:
    """The agent's final output for `question`, run streamed (every event read) or not."""
    from agents import RunConfig, Runner

    config = RunConfig(tracing_disabled=True)
    if streamed:
        result = Runner.run_streamed(agent, question, run_config=config)
        async for _ in result.stream_events():
            pass
        return result.final_output
    return (await Runner.run(agent, question, run_config=config)).final_output


@pytest.mark.parametrize("streamed", [False, True])
async def test_an_agent_with_a_function_tool_runs_on_a_raw_model(
    server: tuple[str, str], streamed: bool
) -> None:
    from agents import Agent, function_tool

    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return "18°C"

    agent = Agent(
        name="weather",
        instructions="Answer with the weather.",
        model=agent_model(server, RAW),
        tools=[get_weather],
    )
    answer = await final_output(agent, "Weather in Paris?", streamed=streamed)
    assert calls == ["Paris"]
    assert answer == "It is 18°C in Paris."


@pytest.mark.parametrize("streamed", [False, True])
async def test_an_agent_with_a_function_tool_runs_on_a_copilot(
    server: tuple[str, str], streamed: bool
) -> None:
    """The copilot's model may call the agent's tool: the call goes back to the agent,
    which runs it and sends the output; the copilot's run goes on with it."""
    from agents import Agent, function_tool

    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return "18°C"

    agent = Agent(name="helpdesk", model=agent_model(server, COPILOT_NAME), tools=[get_weather])
    plain = await final_output(agent, "Which VPN client do we use?")
    assert plain == "Use WireGuard [1]. (1 user turns)" and calls == []
    answer = await final_output(agent, "What is the weather in Paris?", streamed=streamed)
    assert calls == ["Paris"]
    assert answer == "It is 18°C in Paris; the VPN is WireGuard [1]."


def test_a_copilot_hands_the_callers_tool_calls_back(server: tuple[str, str]) -> None:
    with client(server) as sdk:
        first = sdk.responses.create(
            model=COPILOT_NAME, input="Weather in Paris?", tools=[WEATHER_TOOL]
        )
        [call] = first.output
        assert call.type == "function_call" and call.call_id == "call_c1"
        assert ext(first)["status"] == "awaiting_tool_output"
        second = sdk.responses.create(
            model=COPILOT_NAME,
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": "call_c1", "output": "18°C"}],
            tools=[WEATHER_TOOL],
        )
        assert second.output_text == "It is 18°C in Paris; the VPN is WireGuard [1]."
        info = ext(second)
        assert info["status"] == "completed" and info["tool_calls"][0]["result"] == "18°C"
        with pytest.raises(openai.NotFoundError):  # answered already
            sdk.responses.create(
                model=COPILOT_NAME,
                previous_response_id=first.id,
                input=[{"type": "function_call_output", "call_id": "call_c1", "output": "x"}],
                tools=[WEATHER_TOOL],
            )
        with pytest.raises(openai.BadRequestError) as clash:  # the copilot's own name
            sdk.responses.create(
                model=COPILOT_NAME,
                input="x",
                tools=[{**WEATHER_TOOL, "name": "lookup"}],
            )
    assert clash.value.body["param"] == "tools[0].name"  # type: ignore[index]
