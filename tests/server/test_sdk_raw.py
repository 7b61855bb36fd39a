"""The official openai SDK against raw models: sync, async, streaming, tool-call round
trips and structured output, through the pass-through fast path (an OpenAI-protocol
upstream: the OpenAI fake) and through the neutral path (a FunctionModel)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from pilothouse.config import Settings
from pilothouse.models import FunctionModel, tool_call
from pilothouse.server.app import create_app
from pilothouse.testing.loopback import serve_app
from pilothouse.testing.wire import Call, Echo, Reply
from pilothouse.types import Message, ModelRequest, TextPart
from tests.fakes.openai_api import FakeOpenAI
from tests.server.conftest import make_key, running

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
]


@pytest.fixture
def fake() -> Iterator[tuple[FakeOpenAI, str]]:
    vendor = FakeOpenAI()
    with serve_app(vendor.app) as url:
        yield vendor, url


def weather(request: ModelRequest) -> Message:
    """Calls get_weather first; answers from the tool result after."""
    last = request.messages[-1]
    if last.role == "tool":
        return Message("assistant", (TextPart(f"It is {last.tool_results[0].content}."),))
    assert [t.name for t in request.tools] == ["get_weather"]
    return tool_call("get_weather", {"city": "Oslo"}, id="call_w1")


@pytest.fixture
def server(fake: tuple[FakeOpenAI, str], tmp_path: Path) -> Iterator[tuple[str, str, FakeOpenAI]]:
    vendor, url = fake
    settings = Settings.from_sources(
        home=tmp_path / "home", environ={"OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": url}
    )
    from pilothouse.server.keys import KeyStore

    store = KeyStore(settings.database_path)
    key = make_key(store, "models")
    models = {"test:weather": FunctionModel(weather, model_id="test:weather")}
    app = create_app(
        settings,
        keys=store,
        models=models,
        routes={
            "routes": {
                "fast": {"targets": ["openai:gpt-4.1-mini"]},
            }
        },
    )
    with running(app) as (base, _):
        yield base, key, vendor
    store.close()


def client(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)


# --- pass-through (OpenAI protocol upstream) ------------------------------------------


def test_sync_chat_through_the_fast_path(server: tuple[str, str, FakeOpenAI]) -> None:
    base, key, vendor = server
    vendor.push(Reply("Hello from upstream"))
    with client(base, key) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="openai:gpt-4.1-mini",
            messages=[{"role": "user", "content": "hi"}],
            max_completion_tokens=20,
        )
    answer = raw.parse()
    assert answer.choices[0].message.content == "Hello from upstream"
    assert answer.model == "gpt-4.1-mini"  # the upstream's own answer, untouched
    assert raw.headers["x-pilothouse-model"] == "openai:gpt-4.1-mini"
    sent = vendor.requests[-1]
    assert sent["model"] == "gpt-4.1-mini"  # rewritten from the public name
    assert sent["max_completion_tokens"] == 20  # everything else as the client sent it
    assert vendor.headers[-1]["authorization"] == "Bearer test-key"  # the upstream key
    assert key not in json.dumps(vendor.headers[-1])  # the client's key never travels on


async def test_async_stream_through_a_route(server: tuple[str, str, FakeOpenAI]) -> None:
    base, key, vendor = server
    vendor.push(Reply("one two three four", chunks=4))
    async with openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0) as sdk:
        stream = await sdk.chat.completions.create(
            model="fast",
            messages=[{"role": "user", "content": "count"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces, usage = [], None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
            usage = chunk.usage or usage
    assert "".join(pieces) == "one two three four"
    assert len(pieces) >= 2  # streamed, not one blob
    assert usage is not None and usage.prompt_tokens == 11
    assert vendor.requests[-1]["model"] == "gpt-4.1-mini"


def test_tool_call_round_trip_through_the_fast_path(
    server: tuple[str, str, FakeOpenAI],
) -> None:
    base, key, vendor = server
    vendor.push(Reply(tool_calls=(Call("call_1", "get_weather", {"city": "Oslo"}),)))
    vendor.push(Echo())
    with client(base, key) as sdk:
        first = sdk.chat.completions.create(
            model="openai:gpt-4.1-mini",
            messages=[{"role": "user", "content": "weather in Oslo?"}],
            tools=TOOLS,  # type: ignore[arg-type]
        )
        call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
        assert first.choices[0].finish_reason == "tool_calls"
        assert call.function.name == "get_weather"  # type: ignore[union-attr]
        assert json.loads(call.function.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
        second = sdk.chat.completions.create(
            model="openai:gpt-4.1-mini",
            messages=[
                {"role": "user", "content": "weather in Oslo?"},
                first.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
                {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"},
            ],
            tools=TOOLS,  # type: ignore[arg-type]
        )
    facts = json.loads(second.choices[0].message.content or "{}")
    assert facts["tool_results"] == [["call_1", "sunny, 21 C"]]
    assert facts["tools"] == ["get_weather"]


def test_streamed_tool_calls_through_the_fast_path(server: tuple[str, str, FakeOpenAI]) -> None:
    base, key, vendor = server
    vendor.push(Reply(tool_calls=(Call("call_9", "get_weather", {"city": "Bergen"}),)))
    with client(base, key) as sdk:
        stream = sdk.chat.completions.create(
            model="openai:gpt-4.1-mini",
            messages=[{"role": "user", "content": "weather?"}],
            tools=TOOLS,  # type: ignore[arg-type]
            stream=True,
        )
        args, name, finish = "", None, None
        for chunk in stream:
            for delta in chunk.choices[0].delta.tool_calls or []:
                name = delta.function.name or name  # type: ignore[union-attr]
                args += delta.function.arguments or ""  # type: ignore[union-attr]
            finish = chunk.choices[0].finish_reason or finish
    assert name == "get_weather"
    assert json.loads(args) == {"city": "Bergen"}
    assert finish == "tool_calls"


# --- neutral path (a model given to the app) ------------------------------------------


def test_tool_call_round_trip_with_a_function_model(server: tuple[str, str, FakeOpenAI]) -> None:
    base, key, _ = server
    with client(base, key) as sdk:
        first = sdk.chat.completions.create(
            model="test:weather",
            messages=[{"role": "user", "content": "weather in Oslo?"}],
            tools=TOOLS,  # type: ignore[arg-type]
        )
        message = first.choices[0].message
        assert first.model == "test:weather"
        assert first.choices[0].finish_reason == "tool_calls"
        [call] = message.tool_calls or []
        assert call.id == "call_w1"
        assert json.loads(call.function.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
        second = sdk.chat.completions.create(
            model="test:weather",
            messages=[
                {"role": "user", "content": "weather in Oslo?"},
                message.model_dump(exclude_none=True),  # type: ignore[list-item]
                {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
            ],
            tools=TOOLS,  # type: ignore[arg-type]
        )
    assert second.choices[0].message.content == "It is sunny."
    assert second.choices[0].finish_reason == "stop"


def test_streamed_tool_call_with_a_function_model(server: tuple[str, str, FakeOpenAI]) -> None:
    base, key, _ = server
    with client(base, key) as sdk:
        stream = sdk.chat.completions.create(
            model="test:weather",
            messages=[{"role": "user", "content": "weather?"}],
            tools=TOOLS,  # type: ignore[arg-type]
            stream=True,
        )
        chunks = list(stream)
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert calls[0].id == "call_w1" and calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads("".join(c.function.arguments or "" for c in calls)) == {"city": "Oslo"}  # type: ignore[union-attr]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_structured_output_reaches_the_model(tmp_path: Path) -> None:
    seen: list[ModelRequest] = []

    def answer(request: ModelRequest) -> str:
        seen.append(request)
        return json.dumps({"city": "Oslo"})

    settings = Settings.from_sources(home=tmp_path / "home", environ={})
    models = {"test:json": FunctionModel(answer, model_id="test:json")}
    app = create_app(settings, no_auth=True, models=models)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    with running(app) as (base, _), client(base, "unused") as sdk:
        reply = sdk.chat.completions.create(
            model="test:json",
            messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "?"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "place", "schema": schema, "strict": True},
            },
            temperature=0.2,
            max_tokens=50,
            stop=["END"],
        )
    assert json.loads(reply.choices[0].message.content or "") == {"city": "Oslo"}
    request = seen[0]
    assert request.output_schema is not None and request.output_schema.schema == schema
    assert request.output_schema.name == "place"
    assert request.messages[0].role == "system" and request.messages[0].text == "Be terse."
    assert (request.temperature, request.max_output_tokens, request.stop) == (0.2, 50, ("END",))


def test_models_endpoint_lists_routes_and_given_models(
    server: tuple[str, str, FakeOpenAI],
) -> None:
    base, key, _ = server
    with client(base, key) as sdk:
        ids = [m.id for m in sdk.models.list()]
        assert "fast" in ids and "test:weather" in ids
        assert sdk.models.retrieve("fast").owned_by == "pilothouse-route"
        with pytest.raises(openai.NotFoundError):
            sdk.models.retrieve("no-such-model")


def test_embeddings_with_the_sdk(server: tuple[str, str, FakeOpenAI]) -> None:
    base, key, vendor = server
    with client(base, key) as sdk:
        result = sdk.embeddings.create(
            model="openai:text-embedding-3-small", input=["alpha", "beta"]
        )  # the SDK asks for base64 and decodes it
        floats = sdk.embeddings.create(
            model="openai:text-embedding-3-small", input="alpha", encoding_format="float"
        )
    assert len(result.data) == 2 and len(result.data[0].embedding) == 8
    assert result.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    assert vendor.requests[-1]["model"] == "text-embedding-3-small"
