"""What the conformance suite does not cover for the Anthropic Messages adapter: the
shape of the wire request (role merging, tool_choice, forced-tool structured output),
usage with prompt-cache tokens, and stream events the suite never sends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pilothouse.config import ProviderSettings, Settings
from pilothouse.errors import (
    AuthenticationError,
    BadRequestError,
    ContextTooLongError,
    ModelNotAvailableError,
    RateLimitedError,
    UnavailableError,
)
from pilothouse.models import collect, create_model
from pilothouse.models.base import Model
from pilothouse.models.profiles import profile_for
from pilothouse.testing.conformance import VendorSubject
from pilothouse.testing.loopback import serve_app
from pilothouse.testing.wire import Call, Fail, MidStreamError, Reply
from pilothouse.types import (
    ImagePart,
    Message,
    ModelRequest,
    OutputSchema,
    StreamEnd,
    StreamError,
    TextDelta,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)
from tests.fakes.anthropic_api import error_body, harness_specs

WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CAPITAL = OutputSchema(
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
    },
    name="capital",
)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[VendorSubject]:
    [spec] = harness_specs()
    fake = spec.make_fake()
    with serve_app(fake.app) as url:
        yield VendorSubject(spec, fake, url, tmp_path)


def anthropic_model(url: str, home: Path, *, key: str | None = "test-key", **extra: Any) -> Model:
    provider = ProviderSettings(
        base_url=url, api_key=SecretStr(key) if key else None, timeout_s=5, **extra
    )
    settings = Settings.from_sources(
        home=home, environ={}, file_data={"providers": {"anthropic": provider.model_dump()}}
    )
    return create_model("anthropic:claude-sonnet-4-5", settings)


def ask(text: str = "What is the capital of France?", **options: Any) -> ModelRequest:
    return ModelRequest((Message.system("Be brief."), Message.user(text)), **options)


async def complete(harness: VendorSubject, request: ModelRequest, *, stream: bool = False) -> Any:
    model = harness.model()
    try:
        return await (collect(model.stream(request)) if stream else model.complete(request))
    finally:
        await model.aclose()


# --- request mapping ---------------------------------------------------------------


async def test_roles_are_merged_into_alternating_turns(harness: VendorSubject) -> None:
    call = ToolCallPart("call_1", "get_weather", {"city": "Oslo"})
    request = ModelRequest(
        (
            Message.system("Be brief."),
            Message.user("Hi"),
            Message.user("Weather in Oslo?"),
            Message.assistant("Let me check."),
            Message.assistant("", (call,)),
            Message.tool(ToolResultPart("call_1", "get_weather", "4 C", is_error=False)),
            Message.user("And tomorrow?"),
            Message.system("Answer in English."),
        ),
        tools=(WEATHER,),
    )
    await complete(harness, request)
    sent = harness.fake.requests[-1]
    assert sent["system"] == "Be brief.\n\nAnswer in English."
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": "Hi"},
        {"type": "text", "text": "Weather in Oslo?"},
    ]
    assert [b["type"] for b in sent["messages"][1]["content"]] == ["text", "tool_use"]
    # the tool result opens the user turn; the next user text follows it
    assert sent["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "4 C"},
        {"type": "text", "text": "And tomorrow?"},
    ]


async def test_text_after_a_tool_result_is_moved_behind_it(harness: VendorSubject) -> None:
    call = ToolCallPart("call_1", "get_weather", {"city": "Oslo"})
    request = ModelRequest(
        (
            Message.user("Weather?"),
            Message.assistant("", (call,)),
            Message("user", (TextPart("note"),)),
            Message.tool(ToolResultPart("call_1", "get_weather", "failed", is_error=True)),
        ),
        tools=(WEATHER,),
    )
    await complete(harness, request)
    last = harness.fake.requests[-1]["messages"][-1]["content"]
    assert last[0] == {
        "type": "tool_result",
        "tool_use_id": "call_1",
        "content": "failed",
        "is_error": True,
    }
    assert last[1] == {"type": "text", "text": "note"}


async def test_foreign_tool_ids_are_made_valid_on_both_sides(harness: VendorSubject) -> None:
    call = ToolCallPart("functions.get_weather:0", "get_weather", {"city": "Oslo"})
    request = ModelRequest(
        (
            Message.user("Weather?"),
            Message.assistant("", (call,)),
            Message.tool(ToolResultPart("functions.get_weather:0", "get_weather", "4 C")),
        ),
        tools=(WEATHER,),
    )
    response = await complete(harness, request)
    assert response.text == "ok"
    sent = harness.fake.requests[-1]["messages"]
    assert sent[1]["content"][0]["id"] == "functions_get_weather_0"
    assert sent[2]["content"][0]["tool_use_id"] == "functions_get_weather_0"


async def test_options_defaults_and_no_seed(harness: VendorSubject) -> None:
    await complete(harness, ask(seed=7, temperature=0.5, stop=("END", "STOP")))
    sent = harness.fake.requests[-1]
    assert sent["max_tokens"] == 4096  # required by Anthropic; ours when none is asked
    assert sent["temperature"] == 0.5
    assert sent["stop_sequences"] == ["END", "STOP"]
    assert "seed" not in sent
    assert harness.fake.headers[-1]["anthropic-version"] == "2023-06-01"
    assert harness.fake.headers[-1]["x-api-key"] == "test-key"
    assert "authorization" not in harness.fake.headers[-1]


async def test_max_tokens_default_comes_from_the_profile(
    tmp_path: Path, harness: VendorSubject
) -> None:
    assert profile_for("anthropic:claude-sonnet-4-5").default_max_tokens == 4096
    model = anthropic_model(harness.url, tmp_path)
    model.profile = replace(model.profile, default_max_tokens=1234)
    await model.complete(ask())
    await model.complete(ask(max_output_tokens=77))  # the request's own limit wins
    model.profile = replace(model.profile, default_max_tokens=None)
    await model.complete(ask())  # no profile value: the adapter's fallback
    await model.aclose()
    assert [r["max_tokens"] for r in harness.fake.requests[-3:]] == [1234, 77, 4096]


async def test_api_version_comes_from_settings(tmp_path: Path, harness: VendorSubject) -> None:
    model = anthropic_model(harness.url, tmp_path, api_version="2023-01-01")
    await model.complete(ask())
    await model.aclose()
    assert harness.fake.headers[-1]["anthropic-version"] == "2023-01-01"


async def test_base_url_with_v1_is_not_doubled(tmp_path: Path, harness: VendorSubject) -> None:
    model = anthropic_model(harness.url + "/v1", tmp_path)
    response = await model.complete(ask())
    await model.aclose()
    assert response.text == "ok"
    assert harness.fake.paths[-1] == "/v1/messages"


async def test_images_as_base64_and_url_sources(harness: VendorSubject) -> None:
    message = Message.user(
        "Compare",
        ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
        ImagePart(url="data:image/jpeg;base64,/9j/4AAQ"),
        ImagePart(url="https://example.com/cat.webp"),
    )
    await complete(harness, ModelRequest((message,)))
    blocks = harness.fake.requests[-1]["messages"][0]["content"]
    assert [b["source"] for b in blocks[1:]] == [
        {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"},
        {"type": "url", "url": "https://example.com/cat.webp"},
    ]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", True, {"type": "auto"}),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("get_weather", True, {"type": "tool", "name": "get_weather"}),
        ("none", False, {"type": "none"}),  # the flag is not allowed with none
    ],
)
async def test_tool_choice_and_parallel_flag(
    harness: VendorSubject, choice: str, parallel: bool, expected: dict[str, Any]
) -> None:
    await complete(harness, ask(tools=(WEATHER,), tool_choice=choice, parallel_tool_calls=parallel))
    sent = harness.fake.requests[-1]
    assert sent["tool_choice"] == expected
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": WEATHER.parameters,
        }
    ]


async def test_tool_choice_naming_an_unknown_tool_fails_before_sending(
    harness: VendorSubject,
) -> None:
    with pytest.raises(BadRequestError, match="get_time"):
        await complete(harness, ask(tools=(WEATHER,), tool_choice="get_time"))
    with pytest.raises(BadRequestError, match="no tools"):
        await complete(harness, ask(tool_choice="required"))
    assert harness.fake.requests == []


async def test_missing_key_names_the_variable_without_a_call(
    tmp_path: Path, harness: VendorSubject
) -> None:
    model = anthropic_model(harness.url, tmp_path, key=None)
    with pytest.raises(AuthenticationError, match="ANTHROPIC_API_KEY"):
        await model.complete(ask())
    with pytest.raises(AuthenticationError, match="ANTHROPIC_API_KEY"):
        await collect(model.stream(ask()))
    await model.aclose()
    assert harness.fake.requests == []


# --- structured output -------------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_structured_output_forces_one_tool(harness: VendorSubject, streaming: bool) -> None:
    harness.fake.push(Reply('{"city": "Paris", "country": "France"}', usage=(40, 9, 0)))
    response = await complete(harness, ask(output_schema=CAPITAL), stream=streaming)
    sent = harness.fake.requests[-1]
    assert sent["tools"][-1]["name"] == "capital"
    assert sent["tools"][-1]["input_schema"] == CAPITAL.schema
    assert sent["tool_choice"] == {
        "type": "tool",
        "name": "capital",
        "disable_parallel_tool_use": True,
    }
    assert response.json() == {"city": "Paris", "country": "France"}
    assert response.tool_calls == []
    assert response.finish_reason == "stop"
    assert response.usage.output_tokens == 9


async def test_structured_output_streams_the_json_as_text(harness: VendorSubject) -> None:
    harness.fake.push(Reply('{"city": "Paris", "country": "France"}'))
    model = harness.model()
    events = [e async for e in model.stream(ask(output_schema=CAPITAL))]
    await model.aclose()
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) >= 2  # the tool input arrives in pieces and is passed on as such
    assert json.loads("".join(deltas)) == {"city": "Paris", "country": "France"}
    assert isinstance(events[-1], StreamEnd)


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_a_non_object_schema_is_wrapped_and_unwrapped(
    harness: VendorSubject, streaming: bool
) -> None:
    schema = OutputSchema({"type": "array", "items": {"type": "string"}}, name="cities")
    harness.fake.push(Reply(tool_calls=(Call("toolu_1", "cities", {"value": ["Oslo", "Lima"]}),)))
    response = await complete(harness, ask(output_schema=schema), stream=streaming)
    wire_schema = harness.fake.requests[-1]["tools"][-1]["input_schema"]
    assert wire_schema == {
        "type": "object",
        "properties": {"value": schema.schema},
        "required": ["value"],
    }
    assert response.json() == ["Oslo", "Lima"]
    assert response.finish_reason == "stop"


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_structured_output_with_tools_lets_the_model_call_a_tool_first(
    harness: VendorSubject, streaming: bool
) -> None:
    schema = OutputSchema(CAPITAL.schema, name="get_weather")  # clashes with a tool name
    harness.fake.push(Reply(tool_calls=(Call("toolu_1", "get_weather", {"city": "Oslo"}),)))
    response = await complete(
        harness, ask(tools=(WEATHER,), output_schema=schema), stream=streaming
    )
    sent = harness.fake.requests[-1]
    assert [t["name"] for t in sent["tools"]] == ["get_weather", "get_weather_answer"]
    assert sent["tool_choice"] == {"type": "any"}
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("get_weather", {"city": "Oslo"})
    ]
    assert response.finish_reason == "tool_calls"
    assert response.text == ""


# --- usage and finish ----------------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_usage_counts_cache_reads_in_the_input(
    harness: VendorSubject, streaming: bool
) -> None:
    harness.fake.push(Reply("Paris.", usage=(1000, 12, 800)))
    response = await complete(harness, ask(), stream=streaming)
    assert (response.usage.input_tokens, response.usage.output_tokens) == (1000, 12)
    assert response.usage.cached_tokens == 800
    assert response.cost_usd == pytest.approx((200 * 3.0 + 800 * 0.30 + 12 * 15.0) / 1e6)


@pytest.mark.parametrize(
    ("finish", "expected"),
    [("content_filter", "content_filter"), ("length", "length"), ("stop", "stop")],
)
async def test_stop_reasons_map(harness: VendorSubject, finish: str, expected: str) -> None:
    harness.fake.push(Reply("I can't", finish=finish))
    response = await complete(harness, ask())
    assert response.finish_reason == expected


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_overloaded_529_is_unavailable(harness: VendorSubject, streaming: bool) -> None:
    harness.fake.push(Fail(529, "Overloaded"))
    with pytest.raises(UnavailableError) as info:
        await complete(harness, ask(), stream=streaming)
    assert info.value.status == 529
    assert info.value.retryable and info.value.failover
    assert "overloaded_error" in str(info.value)


async def test_request_too_large_and_unknown_model(harness: VendorSubject) -> None:
    harness.fake.push(Fail(413, "Request exceeds the maximum allowed number of bytes."))
    with pytest.raises(ContextTooLongError) as too_large:
        await complete(harness, ask())
    assert too_large.value.status == 413
    harness.fake.push(Fail(404, "model: claude-sonnet-9"))
    with pytest.raises(ModelNotAvailableError, match="claude-sonnet-4-5"):
        await complete(harness, ask())


async def test_error_event_before_content_is_raised(harness: VendorSubject) -> None:
    harness.fake.push(MidStreamError("", "Overloaded"))
    with pytest.raises(UnavailableError, match="Overloaded"):
        await collect(harness.model().stream(ask()))


async def test_error_event_after_content_ends_the_stream_with_the_partial_answer(
    harness: VendorSubject,
) -> None:
    harness.fake.push(MidStreamError("The capital is", "Overloaded"))
    model = harness.model()
    events = [e async for e in model.stream(ask())]
    await model.aclose()
    last = events[-1]
    assert isinstance(last, StreamError)
    assert isinstance(last.error, UnavailableError)
    assert last.error.status == 529
    assert last.partial.text == "The capital is"
    assert last.partial.finish_reason == "error"


# --- stream events the fake's scripts never send -------------------------------------


@pytest.fixture
def raw() -> Iterator[tuple[list[Response], str]]:
    """A server that answers each request with the next prepared response."""
    queue: list[Response] = []

    async def messages(request: Request) -> Response:
        return queue.pop(0)

    app = Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])
    with serve_app(app) as url:
        yield queue, url


def sse_body(*events: dict[str, Any]) -> Response:
    text = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    return Response(text, media_type="text/event-stream")


def start(usage: dict[str, int]) -> dict[str, Any]:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "usage": usage}
    return {"type": "message_start", "message": message}


def text_delta(index: int, text: str) -> dict[str, Any]:
    delta = {"type": "text_delta", "text": text}
    return {"type": "content_block_delta", "index": index, "delta": delta}


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


async def test_pings_thinking_and_unknown_events_are_ignored(
    raw: tuple[list[Response], str], tmp_path: Path
) -> None:
    queue, url = raw
    usage = {"input_tokens": 10, "cache_creation_input_tokens": 30, "cache_read_input_tokens": 60}
    queue.append(
        sse_body(
            {"type": "ping"},
            start({**usage, "output_tokens": 1}),
            {"type": "ping"},
            block_start(0, {"type": "thinking", "thinking": ""}),
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "hmm"},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "x"},
            },
            {"type": "content_block_stop", "index": 0},
            block_start(1, {"type": "text", "text": ""}),
            text_delta(1, "Par"),
            {"type": "ping"},
            {"type": "some_future_event", "detail": 1},
            text_delta(1, "is."),
            {"type": "content_block_stop", "index": 1},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "stop_sequence"},
                "usage": {"output_tokens": 4},
            },
            {"type": "message_stop"},
        )
    )
    model = anthropic_model(url, tmp_path)
    events = [e async for e in model.stream(ask())]
    await model.aclose()
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Par", "is."]
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.response.text == "Paris."
    assert end.response.finish_reason == "stop"
    assert (end.response.usage.input_tokens, end.response.usage.cached_tokens) == (100, 60)
    assert end.response.usage.output_tokens == 4


async def test_json_answer_with_cache_creation_and_thinking(
    raw: tuple[list[Response], str], tmp_path: Path
) -> None:
    queue, url = raw
    body = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "...", "signature": "s"},
            {"type": "text", "text": "Paris."},
        ],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": 5,
            "cache_creation_input_tokens": 50,
            "cache_read_input_tokens": 0,
            "output_tokens": 2,
        },
    }
    queue.append(Response(json.dumps(body), media_type="application/json"))
    model = anthropic_model(url, tmp_path)
    response = await model.complete(ask())
    await model.aclose()
    assert response.text == "Paris."
    assert (response.usage.input_tokens, response.usage.cached_tokens) == (55, 0)


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [
        ("rate_limit_error", RateLimitedError),
        ("invalid_request_error", BadRequestError),
        ("api_error", UnavailableError),
    ],
)
async def test_error_event_types_map_to_typed_errors(
    raw: tuple[list[Response], str], tmp_path: Path, kind: str, error_type: type[Exception]
) -> None:
    queue, url = raw
    error = {"type": "error", "error": {"type": kind, "message": "went wrong"}}
    queue.append(sse_body(start({"input_tokens": 3, "output_tokens": 1}), error))
    model = anthropic_model(url, tmp_path)
    with pytest.raises(error_type, match="went wrong"):
        await collect(model.stream(ask()))
    await model.aclose()


async def test_stream_that_stops_after_message_delta_is_not_complete(
    raw: tuple[list[Response], str], tmp_path: Path
) -> None:
    queue, url = raw
    queue.append(
        sse_body(
            start({"input_tokens": 3, "output_tokens": 1}),
            block_start(0, {"type": "text", "text": ""}),
            text_delta(0, "Paris"),
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 2},
            },
        )
    )
    model = anthropic_model(url, tmp_path)
    events = [e async for e in model.stream(ask())]
    await model.aclose()
    assert isinstance(events[-1], StreamError)
    assert events[-1].partial.text == "Paris"


# --- the fake is strict (so mapping bugs cannot pass unnoticed) ----------------------


def post(url: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    sent = {"x-api-key": "test-key", "anthropic-version": "2023-06-01", **headers}
    return httpx.post(f"{url}/v1/messages", json=body, headers=sent)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": "hi"}]},
            "alternate",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
            },
            "alternate",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "seed": 1,
                "messages": [{"role": "user", "content": "a"}],
            },
            "seed",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}],
            },
            "non-empty",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "tools": [{"name": "t", "input_schema": {"type": "object"}}],
                "messages": [
                    {"role": "user", "content": "a"},
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}
                        ],
                    },
                    {"role": "user", "content": "no result"},
                ],
            },
            "without `tool_result`",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "tools": [{"name": "t", "input_schema": {"type": "object"}}],
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}
                        ],
                    }
                ],
            },
            "unexpected `tool_use_id`",
        ),
    ],
)
def test_the_fake_refuses_what_the_api_refuses(
    harness: VendorSubject, body: dict[str, Any], needle: str
) -> None:
    response = post(harness.url, body)
    assert response.status_code == 400
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert needle in response.json()["error"]["message"]


def test_the_fake_checks_its_headers(harness: VendorSubject) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    assert post(harness.url, body).status_code == 200
    assert post(harness.url, body, **{"x-api-key": "nope"}).json() == error_body(
        401, "invalid x-api-key"
    )
    assert post(harness.url, body, **{"anthropic-version": "2099-01-01"}).status_code == 400
