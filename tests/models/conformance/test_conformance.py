"""The conformance suite every cloud protocol adapter passes, against a local server
that speaks the vendor's documented wire format (see tests/fakes/).

A new provider is added by writing its fake and a HarnessSpec; these tests then run
against it unchanged.
"""

from __future__ import annotations

import json

import pytest

from pilothouse.errors import (
    AuthenticationError,
    MalformedResponseError,
    ModelError,
    ModelTimeoutError,
    RateLimitedError,
    UnavailableError,
)
from pilothouse.models import collect
from pilothouse.types import (
    ImagePart,
    Message,
    ModelRequest,
    OutputSchema,
    StreamEnd,
    StreamError,
    TextDelta,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)
from tests.fakes.script import (
    Call,
    CutStream,
    Echo,
    Fail,
    Malformed,
    MidStreamError,
    Reply,
    Stall,
)
from tests.fakes.server import closed_port
from tests.models.conformance.harness import Harness

WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
        "required": ["city"],
    },
)
TIME = ToolSpec(
    "get_time",
    "Local time in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}},
)


def ask(text: str = "What is the capital of France?", **options: object) -> ModelRequest:
    return ModelRequest((Message.system("Be brief."), Message.user(text)), **options)  # type: ignore[arg-type]


async def echo_facts(harness: Harness, request: ModelRequest) -> dict[str, object]:
    harness.fake.push(Echo())
    model = harness.model()
    try:
        response = await model.complete(request)
    finally:
        await model.aclose()
    facts: dict[str, object] = json.loads(response.text)
    return facts


# --- chat --------------------------------------------------------------------------


async def test_chat_returns_text_finish_usage_and_model(harness: Harness) -> None:
    harness.fake.push(Reply("Paris.", usage=(21, 3, 5)))
    model = harness.model()
    response = await model.complete(ask())
    await model.aclose()
    assert response.text == "Paris."
    assert response.finish_reason == "stop"
    assert response.usage.input_tokens == 21
    assert response.usage.output_tokens == 3
    assert response.model == harness.model_id
    assert response.latency_s > 0


async def test_request_options_are_mapped(harness: Harness) -> None:
    request = ask(
        "Name three rivers.", temperature=0.25, max_output_tokens=77, stop=("END",), seed=7
    )
    facts = await echo_facts(harness, request)
    assert facts["system"] == "Be brief."
    assert facts["messages"] == [["user", "Name three rivers."]]
    assert facts["temperature"] == 0.25
    assert facts["max_tokens"] == 77
    assert facts["stop"] == ["END"]
    if "seed" in harness.spec.features:
        assert facts["seed"] == 7


async def test_multi_turn_history_keeps_roles_in_order(harness: Harness) -> None:
    request = ModelRequest(
        (
            Message.system("You are terse."),
            Message.user("Hi"),
            Message.assistant("Hello."),
            Message.user("Bye"),
        )
    )
    facts = await echo_facts(harness, request)
    assert facts["system"] == "You are terse."
    assert facts["messages"] == [["user", "Hi"], ["assistant", "Hello."], ["user", "Bye"]]


async def test_images_are_sent(harness: Harness) -> None:
    image = ImagePart(data="iVBORw0KGgo=", media_type="image/png")
    facts = await echo_facts(harness, ModelRequest((Message.user("What is this?", image),)))
    assert facts["images"] == 1


# --- streaming ---------------------------------------------------------------------


async def test_stream_yields_deltas_then_the_whole_answer(harness: Harness) -> None:
    harness.fake.push(Reply("The capital is Paris.", chunks=4, usage=(30, 6, 0)))
    model = harness.model()
    events = [e async for e in model.stream(ask())]
    await model.aclose()
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) >= 2
    assert "".join(deltas) == "The capital is Paris."
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.response.text == "The capital is Paris."
    assert end.response.finish_reason == "stop"
    assert end.response.usage.output_tokens == 6
    assert harness.fake.requests[-1] is not None


async def test_length_finish_is_reported(harness: Harness) -> None:
    harness.fake.push(Reply("The capital", finish="length"))
    model = harness.model()
    response = await collect(model.stream(ask()))
    await model.aclose()
    assert response.finish_reason == "length"


# --- tools -------------------------------------------------------------------------


async def test_tools_and_choice_are_sent(harness: Harness) -> None:
    facts = await echo_facts(harness, ask("Weather?", tools=(WEATHER, TIME), tool_choice="auto"))
    assert facts["tools"] == ["get_weather", "get_time"]
    assert facts["tool_params"] == [["city", "unit"], ["city"]]
    assert facts["tool_choice"] in ("auto", None)
    facts = await echo_facts(harness, ask("Weather?", tools=(WEATHER,), tool_choice="required"))
    assert facts["tool_choice"] == "required"
    facts = await echo_facts(
        harness, ask("Weather?", tools=(WEATHER, TIME), tool_choice="get_time")
    )
    assert facts["tool_choice"] == "get_time"


async def test_a_tool_call_is_returned(harness: Harness) -> None:
    harness.fake.push(Reply(tool_calls=(Call("call_1", "get_weather", {"city": "Oslo"}),)))
    model = harness.model()
    response = await model.complete(ask("Weather in Oslo?", tools=(WEATHER,)))
    await model.aclose()
    assert response.finish_reason == "tool_calls"
    [call] = response.tool_calls
    assert call.name == "get_weather"
    assert call.arguments == {"city": "Oslo"}
    assert call.id


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_parallel_tool_calls(harness: Harness, streaming: bool) -> None:
    harness.fake.push(
        Reply(
            tool_calls=(
                Call("call_a", "get_weather", {"city": "Oslo", "unit": "C"}),
                Call("call_b", "get_time", {"city": "Lima"}),
            )
        )
    )
    model = harness.model()
    request = ask("Weather in Oslo and time in Lima?", tools=(WEATHER, TIME))
    response = await (collect(model.stream(request)) if streaming else model.complete(request))
    await model.aclose()
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("get_weather", {"city": "Oslo", "unit": "C"}),
        ("get_time", {"city": "Lima"}),
    ]
    assert len({c.id for c in response.tool_calls}) == 2
    assert response.finish_reason == "tool_calls"


async def test_tool_results_round_trip(harness: Harness) -> None:
    calls = (
        ToolCallPart("call_a", "get_weather", {"city": "Oslo"}),
        ToolCallPart("call_b", "get_time", {"city": "Lima"}),
    )
    request = ModelRequest(
        (
            Message.user("Weather in Oslo and time in Lima?"),
            Message.assistant("", calls),
            Message.tool(
                ToolResultPart("call_a", "get_weather", "4 C, rain"),
                ToolResultPart("call_b", "get_time", "09:15"),
            ),
        ),
        tools=(WEATHER, TIME),
    )
    facts = await echo_facts(harness, request)
    assert facts["assistant_tool_calls"] == [
        ["get_weather", '{"city":"Oslo"}'],
        ["get_time", '{"city":"Lima"}'],
    ]
    results = facts["tool_results"]
    assert isinstance(results, list)
    assert [r[1] for r in results] == ["4 C, rain", "09:15"]
    assert [r[0] for r in results] in (["call_a", "call_b"], ["get_weather", "get_time"])


# --- structured output -------------------------------------------------------------


async def test_structured_output_schema_is_sent_and_json_comes_back(harness: Harness) -> None:
    schema = OutputSchema(
        {
            "type": "object",
            "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
            "required": ["city", "country"],
            "additionalProperties": False,
        },
        name="capital",
    )
    facts = await echo_facts(harness, ask(output_schema=schema))
    assert facts["schema_properties"] == ["city", "country"]
    harness.fake.push(Reply('{"city": "Paris", "country": "France"}'))
    model = harness.model()
    response = await model.complete(ask(output_schema=schema))
    await model.aclose()
    assert response.json() == {"city": "Paris", "country": "France"}


# --- errors ------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_wrong_key_is_an_authentication_error_without_the_key(
    harness: Harness, streaming: bool
) -> None:
    model = harness.model(key="sk-wrong-secret-123")
    with pytest.raises(AuthenticationError) as info:
        await (collect(model.stream(ask())) if streaming else model.complete(ask()))
    await model.aclose()
    assert "sk-wrong-secret-123" not in str(info.value)
    assert "sk-wrong-secret-123" not in repr(model)
    assert info.value.status == 401


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_rate_limit_carries_retry_after(harness: Harness, streaming: bool) -> None:
    harness.fake.push(Fail(429, "Rate limit reached", retry_after="7"))
    model = harness.model()
    with pytest.raises(RateLimitedError) as info:
        await (collect(model.stream(ask())) if streaming else model.complete(ask()))
    await model.aclose()
    assert info.value.retry_after == 7
    assert info.value.retryable


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_unavailable(harness: Harness, status: int) -> None:
    harness.fake.push(Fail(status, "The server had an error"))
    model = harness.model()
    with pytest.raises(UnavailableError) as info:
        await model.complete(ask())
    await model.aclose()
    assert info.value.status == status
    assert info.value.failover


async def test_bad_request_is_not_retryable(harness: Harness) -> None:
    harness.fake.push(Fail(400, "Invalid value for 'temperature'"))
    model = harness.model()
    with pytest.raises(ModelError) as info:
        await model.complete(ask())
    await model.aclose()
    assert not info.value.retryable
    assert "temperature" in str(info.value)


async def test_connection_refused_is_unavailable(harness: Harness) -> None:
    model = harness.model(base_url=f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(UnavailableError):
        await model.complete(ask())
    with pytest.raises(UnavailableError):
        await collect(model.stream(ask()))
    await model.aclose()


async def test_timeout_is_a_timeout_error(harness: Harness) -> None:
    harness.fake.push(Stall(seconds=3))
    model = harness.model(timeout_s=0.5)
    with pytest.raises(ModelTimeoutError):
        await model.complete(ask())
    await model.aclose()


async def test_malformed_json_is_a_malformed_response(harness: Harness) -> None:
    harness.fake.push(Malformed())
    model = harness.model()
    with pytest.raises(MalformedResponseError):
        await model.complete(ask())
    await model.aclose()


async def test_malformed_stream_before_content_raises(harness: Harness) -> None:
    harness.fake.push(Malformed())
    model = harness.model()
    with pytest.raises(MalformedResponseError):
        await collect(model.stream(ask()))
    await model.aclose()


@pytest.mark.parametrize("abrupt", [True, False], ids=["dropped", "no-end-marker"])
async def test_stream_cut_midway_ends_with_an_error_event(harness: Harness, abrupt: bool) -> None:
    harness.fake.push(CutStream("The capital is", abrupt=abrupt))
    model = harness.model()
    events = [e async for e in model.stream(ask())]
    await model.aclose()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "The capital is"
    last = events[-1]
    assert isinstance(last, StreamError), "a cut stream must never look complete"
    assert isinstance(last.error, UnavailableError | MalformedResponseError)
    assert last.partial.text == "The capital is"
    assert not any(isinstance(e, StreamEnd) for e in events)


async def test_stalled_stream_after_content_ends_with_a_timeout_event(harness: Harness) -> None:
    harness.fake.push(Stall("The capital", seconds=3))
    model = harness.model(timeout_s=0.5)
    events = [e async for e in model.stream(ask())]
    await model.aclose()
    last = events[-1]
    assert isinstance(last, StreamError)
    assert isinstance(last.error, ModelTimeoutError)


async def test_stalled_stream_before_content_raises_timeout(harness: Harness) -> None:
    harness.fake.push(Stall("", seconds=3))
    model = harness.model(timeout_s=0.5)
    with pytest.raises(ModelTimeoutError):
        await collect(model.stream(ask()))
    await model.aclose()


async def test_vendor_error_event_mid_stream(harness: Harness) -> None:
    if "mid_stream_error" not in harness.spec.features:
        pytest.skip(f"{harness.spec.provider} documents no in-stream error event")
    harness.fake.push(MidStreamError("The capital", "Overloaded"))
    model = harness.model()
    events = [e async for e in model.stream(ask())]
    await model.aclose()
    last = events[-1]
    assert isinstance(last, StreamError)
    assert isinstance(last.error, ModelError)
    assert "Overloaded" in str(last.error)


async def test_key_travels_only_in_the_auth_header(harness: Harness) -> None:
    harness.fake.push(Reply("ok"))
    model = harness.model(key="sk-live-abc")
    await model.complete(ask())
    await model.aclose()
    assert "sk-live-abc" not in harness.fake.paths[-1]
    assert any("sk-live-abc" in value for value in harness.fake.headers[-1].values())
    assert "sk-live-abc" not in json.dumps(harness.fake.requests[-1])
