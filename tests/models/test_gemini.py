"""What the conformance suite does not cover for the Gemini adapter: function calls that
are not the first part, safety finishes and blocked prompts, schema conversion, tool
pairing and thought signatures, Gemini-specific errors, embeddings, and the key never
appearing in a URL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from pilothouse.config import ProviderSettings, Settings
from pilothouse.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilteredError,
    ContextTooLongError,
    MalformedResponseError,
    ModelNotAvailableError,
    RateLimitedError,
)
from pilothouse.models import collect, create_model
from pilothouse.models.gemini import (
    PLACEHOLDER_SIGNATURE,
    GeminiModel,
    build_contents,
    gemini_json_schema,
    tool_parameters,
)
from pilothouse.models.profiles import ModelProfile
from pilothouse.testing.conformance.chat import TIME, WEATHER
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
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)
from tests.fakes.gemini_api import SIGNATURE, GeminiFake, Raw

PING = ToolSpec("ping", "Check the service is up")


class Served:
    def __init__(self, fake: GeminiFake, url: str, home: Path) -> None:
        self.fake = fake
        self.url = url
        self.home = home

    def model(self, key: str | None = "test-key", name: str = "gemini-2.5-flash") -> GeminiModel:
        provider = ProviderSettings(
            base_url=self.url, api_key=SecretStr(key) if key else None, timeout_s=5.0
        )
        settings = Settings.from_sources(
            home=self.home, environ={}, file_data={"providers": {"gemini": provider.model_dump()}}
        )
        model = create_model(f"gemini:{name}", settings)
        assert isinstance(model, GeminiModel)
        return model


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    fake = GeminiFake()
    with serve_app(fake.app) as url:
        yield Served(fake, url, tmp_path)


@pytest.fixture
async def model(served: Served) -> Any:
    m = served.model()
    yield m
    await m.aclose()


def ask(text: str = "Weather in Oslo?", **options: Any) -> ModelRequest:
    return ModelRequest((Message.system("Be brief."), Message.user(text)), **options)


def chunk(
    parts: list[dict[str, Any]] | None = None, finish: str | None = None, **extra: Any
) -> Any:
    candidate: dict[str, Any] = {"index": 0}
    if parts is not None:
        candidate["content"] = {"role": "model", "parts": parts}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], **extra}


# --- function calls ------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_a_call_after_text_is_picked_up(
    served: Served, model: GeminiModel, streaming: bool
) -> None:
    served.fake.push(
        Reply("Let me check.", tool_calls=(Call("x", "get_weather", {"city": "Oslo"}),), chunks=2)
    )
    request = ask(tools=(WEATHER,))
    response = await (collect(model.stream(request)) if streaming else model.complete(request))
    assert response.text == "Let me check."
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("get_weather", {"city": "Oslo"})
    ]
    assert response.finish_reason == "tool_calls"


async def test_calls_in_later_chunks_keep_distinct_indexes(
    served: Served, model: GeminiModel
) -> None:
    served.fake.push(
        Raw(
            (
                chunk([{"text": "Checking"}]),
                chunk(
                    [
                        {"text": "."},
                        {"functionCall": {"name": "get_weather", "args": {"city": "A"}}},
                    ]
                ),
                chunk(
                    [{"functionCall": {"name": "get_time", "args": {"city": "B"}}}],
                    "STOP",
                    usageMetadata={"promptTokenCount": 9, "candidatesTokenCount": 4},
                ),
            )
        )
    )
    response = await collect(model.stream(ask(tools=(WEATHER, TIME))))
    assert response.text == "Checking."
    assert [c.name for c in response.tool_calls] == ["get_weather", "get_time"]
    assert len({c.id for c in response.tool_calls}) == 2
    assert response.usage.output_tokens == 4


async def test_gemini_call_ids_are_kept_and_generated_ids_are_unique(
    served: Served, model: GeminiModel
) -> None:
    served.fake.push(
        Raw(
            (
                chunk(
                    [
                        {"functionCall": {"id": "gem-7", "name": "get_time", "args": {}}},
                        {"functionCall": {"name": "get_time", "args": {"city": "Lima"}}},
                        {"functionCall": {"name": "get_time", "args": {"city": "Lima"}}},
                    ],
                    "STOP",
                ),
            )
        )
    )
    response = await model.complete(ask(tools=(TIME,)))
    ids = [c.id for c in response.tool_calls]
    assert ids[0] == "gem-7"
    assert len(set(ids)) == 3 and all(ids)


async def test_thought_parts_are_not_answer_text(served: Served, model: GeminiModel) -> None:
    served.fake.push(
        Raw((chunk([{"text": "secret plan", "thought": True}, {"text": "Paris."}], "STOP"),))
    )
    response = await model.complete(ask())
    assert response.text == "Paris."


async def test_a_malformed_function_call_finish_is_a_retryable_error(
    served: Served, model: GeminiModel
) -> None:
    served.fake.push(Raw((chunk(None, "MALFORMED_FUNCTION_CALL"),)))
    with pytest.raises(MalformedResponseError) as info:
        await model.complete(ask(tools=(WEATHER,)))
    assert info.value.retryable


# --- safety --------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["SAFETY", "RECITATION", "PROHIBITED_CONTENT", "SPII"])
@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_safety_finish_is_content_filter(
    served: Served, model: GeminiModel, reason: str, streaming: bool
) -> None:
    served.fake.push(Raw((chunk(None, reason, usageMetadata={"promptTokenCount": 5}),)))
    response = await (collect(model.stream(ask())) if streaming else model.complete(ask()))
    assert response.finish_reason == "content_filter"
    assert response.text == ""


async def test_max_tokens_with_text_is_length(served: Served, model: GeminiModel) -> None:
    served.fake.push(Raw((chunk([{"text": "The capi"}], "MAX_TOKENS"),)))
    response = await model.complete(ask())
    assert (response.text, response.finish_reason) == ("The capi", "length")


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_a_blocked_prompt_is_content_filtered(
    served: Served, model: GeminiModel, streaming: bool
) -> None:
    blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {}}
    served.fake.push(Raw((blocked,)))
    with pytest.raises(ContentFilteredError) as info:
        await (collect(model.stream(ask())) if streaming else model.complete(ask()))
    assert "PROHIBITED_CONTENT" in str(info.value)
    assert info.value.failover


async def test_a_response_without_candidates_is_malformed(
    served: Served, model: GeminiModel
) -> None:
    served.fake.push(Raw(({"usageMetadata": {"promptTokenCount": 3}},)))
    with pytest.raises(MalformedResponseError):
        await model.complete(ask())


async def test_error_object_mid_stream_ends_with_an_error_event(
    served: Served, model: GeminiModel
) -> None:
    served.fake.push(MidStreamError("The capital", "Overloaded"))
    events = [e async for e in model.stream(ask())]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "The capital"
    last = events[-1]
    assert isinstance(last, StreamError)
    assert "Overloaded" in str(last.error)


# --- usage ---------------------------------------------------------------------------


async def test_usage_counts_cached_and_thinking_tokens(served: Served, model: GeminiModel) -> None:
    usage = {
        "promptTokenCount": 100,
        "candidatesTokenCount": 10,
        "thoughtsTokenCount": 30,
        "cachedContentTokenCount": 60,
    }
    served.fake.push(Raw((chunk([{"text": "ok"}], "STOP", usageMetadata=usage),)))
    response = await model.complete(ask())
    assert (response.usage.input_tokens, response.usage.output_tokens) == (100, 40)
    assert response.usage.cached_tokens == 60
    # gemini-2.5-flash prices: 0.30 in, 0.075 cached, 2.50 out per million tokens
    assert response.cost_usd == pytest.approx((40 * 0.30 + 60 * 0.075 + 40 * 2.50) / 1e6)


# --- schemas -------------------------------------------------------------------------


def test_schema_conversion_keeps_required_and_enum() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "kind": {"const": "order"},
            "size": {"type": "integer", "enum": [1, 2, 3]},
            "item": {"$ref": "#/definitions/Item"},
            "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        },
        "allOf": [
            {"properties": {"note": {"type": "string"}}, "required": ["note"]},
            {"required": ["size"]},
        ],
        "required": ["kind"],
        "definitions": {"Item": {"type": "string", "enum": ["a", "b"], "examples": ["a"]}},
    }
    converted = gemini_json_schema(schema)
    assert "$schema" not in converted and "allOf" not in converted
    assert converted["required"] == ["kind", "note", "size"]
    assert converted["properties"]["kind"] == {"enum": ["order"]}
    assert converted["properties"]["size"]["enum"] == [1, 2, 3]
    assert converted["properties"]["item"] == {"$ref": "#/$defs/Item"}
    assert converted["properties"]["either"] == {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    assert converted["properties"]["note"] == {"type": "string"}
    assert converted["$defs"] == {"Item": {"type": "string", "enum": ["a", "b"]}}
    assert schema["required"] == ["kind"], "the caller's schema is not changed"


def test_output_schemas_get_property_ordering() -> None:
    schema = {
        "type": "object",
        "properties": {
            "b": {"type": "string"},
            "a": {"type": "object", "properties": {"y": {}, "x": {}}},
        },
    }
    converted = gemini_json_schema(schema, ordered=True)
    assert converted["propertyOrdering"] == ["b", "a"]
    assert converted["properties"]["a"]["propertyOrdering"] == ["y", "x"]


def test_tool_parameters() -> None:
    assert tool_parameters(PING) is None
    params = tool_parameters(WEATHER)
    assert params is not None
    assert params["required"] == ["city"] and params["properties"]["unit"]["enum"] == ["C", "F"]
    with pytest.raises(BadRequestError, match="type object"):
        tool_parameters(ToolSpec("bad", "", {"type": "array"}))


async def test_wire_request_for_tools_schema_and_options(
    served: Served, model: GeminiModel
) -> None:
    schema = OutputSchema({"type": "object", "properties": {"city": {"type": "string"}}})
    await model.complete(ask(temperature=0.5, max_output_tokens=9, stop=("X",), seed=3))
    body = served.fake.requests[-1]
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["generationConfig"] == {
        "temperature": 0.5,
        "maxOutputTokens": 9,
        "stopSequences": ["X"],
        "seed": 3,
    }
    await model.complete(ask(output_schema=schema))
    config = served.fake.requests[-1]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"]["properties"] == {"city": {"type": "string"}}

    await model.complete(ask(tools=(WEATHER, PING), tool_choice="none"))
    body = served.fake.requests[-1]
    [declarations] = [t["functionDeclarations"] for t in body["tools"]]
    assert declarations[0]["parametersJsonSchema"]["required"] == ["city"]
    assert "parametersJsonSchema" not in declarations[1] and "parameters" not in declarations[1]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}
    await model.complete(ask(tools=(WEATHER, PING), tool_choice="ping"))
    assert served.fake.requests[-1]["toolConfig"]["functionCallingConfig"] == {
        "mode": "ANY",
        "allowedFunctionNames": ["ping"],
    }


async def test_tool_choice_errors_are_local(served: Served, model: GeminiModel) -> None:
    with pytest.raises(BadRequestError, match="nope"):
        await model.complete(ask(tools=(WEATHER,), tool_choice="nope"))
    with pytest.raises(BadRequestError, match="needs tools"):
        await model.complete(ask(tool_choice="required"))
    assert served.fake.requests == []


async def test_a_model_without_system_role_gets_it_in_the_first_turn(
    served: Served, model: GeminiModel
) -> None:
    model.profile = ModelProfile(system_role=False)
    await model.complete(ask("Hi"))
    body = served.fake.requests[-1]
    assert "systemInstruction" not in body
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Be brief."}, {"text": "Hi"}]}]


# --- history -------------------------------------------------------------------------

CALLS = (
    ToolCallPart("c1", "get_weather", {"city": "Oslo"}),
    ToolCallPart("c2", "get_time", {"city": "Lima"}),
)


def test_results_follow_call_order_by_id_then_by_name() -> None:
    history = (
        Message.user("Go"),
        Message.assistant("Sure.", CALLS),
        Message.tool(ToolResultPart("c2", "get_time", "09:15")),
        Message.tool(ToolResultPart("other-id", "get_weather", "rain", is_error=True)),
        Message.user("Thanks"),
    )
    contents = build_contents(history)
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"][0] == {"text": "Sure."}
    responses = contents[2]["parts"]
    assert responses[0] == {
        "functionResponse": {"name": "get_weather", "response": {"error": "rain"}}
    }
    assert responses[1] == {
        "functionResponse": {"name": "get_time", "response": {"output": "09:15"}}
    }
    assert responses[2] == {"text": "Thanks"}


def test_missing_or_stray_results_are_refused() -> None:
    with pytest.raises(BadRequestError, match="get_time"):
        build_contents(
            (Message.assistant("", CALLS), Message.tool(ToolResultPart("c1", "get_weather", "x")))
        )
    with pytest.raises(BadRequestError, match="no tool result"):
        build_contents((Message.assistant("", CALLS), Message.user("hello?")))
    with pytest.raises(BadRequestError, match="answers no call"):
        build_contents((Message.user("x"), Message.tool(ToolResultPart("z", "zap", "1"))))


def test_images_map_to_inline_and_file_data() -> None:
    message = Message.user(
        "Look",
        ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
        ImagePart(url="data:image/webp;base64,UklGRg=="),
        ImagePart(url="https://example.com/cat.jpg"),
    )
    [content] = build_contents((message,))
    assert content["parts"][1:] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg"}},
    ]


async def test_thought_signatures_go_back_with_their_calls(
    served: Served, model: GeminiModel
) -> None:
    served.fake.push(
        Reply(tool_calls=(Call("a", "get_weather", {"city": "Oslo"}), Call("b", "get_time", {})))
    )
    first = await model.complete(ask(tools=(WEATHER, TIME)))
    results = [ToolResultPart(c.id, c.name, "done") for c in first.tool_calls]
    foreign = (ToolCallPart("call_from_openai", "get_time", {"city": "Rome"}),)
    history = (
        Message.user("Weather in Oslo?"),
        first.message,
        Message.tool(*results),
        Message.assistant("", foreign),
        Message.tool(ToolResultPart("call_from_openai", "get_time", "10:00")),
    )
    await model.complete(ModelRequest(history, tools=(WEATHER, TIME)))
    model_turns = [c for c in served.fake.requests[-1]["contents"] if c["role"] == "model"]
    own, other = model_turns
    assert own["parts"][0]["thoughtSignature"] == SIGNATURE
    assert "thoughtSignature" not in own["parts"][1]
    assert other["parts"][0]["thoughtSignature"] == PLACEHOLDER_SIGNATURE


# --- errors --------------------------------------------------------------------------


async def test_missing_key_fails_without_a_request(served: Served) -> None:
    model = served.model(key=None)
    with pytest.raises(AuthenticationError, match="GEMINI_API_KEY"):
        await model.complete(ask())
    with pytest.raises(AuthenticationError):
        await model.embed(["x"])
    await model.aclose()
    assert served.fake.requests == []


async def test_invalid_key_reported_as_400_is_an_authentication_error(tmp_path: Path) -> None:
    fake = GeminiFake(bad_key_status=400)
    with serve_app(fake.app) as url:
        model = Served(fake, url, tmp_path).model(key="AIza-not-valid-123")
        with pytest.raises(AuthenticationError) as info:
            await model.complete(ask())
        await model.aclose()
    assert info.value.status == 400
    assert "AIza-not-valid-123" not in str(info.value)
    assert "API key not valid" in str(info.value)


async def test_unknown_model_is_not_available(served: Served, model: GeminiModel) -> None:
    served.fake.push(Fail(404, "models/gemini-9 is not found for API version v1beta"))
    with pytest.raises(ModelNotAvailableError) as info:
        await model.complete(ask())
    assert info.value.status == 404


async def test_too_many_input_tokens_is_context_too_long(
    served: Served, model: GeminiModel
) -> None:
    message = (
        "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
    )
    served.fake.push(Fail(400, message))
    with pytest.raises(ContextTooLongError):
        await model.complete(ask())


async def test_the_fake_rejects_what_gemini_rejects(served: Served, model: GeminiModel) -> None:
    """The fake is strict, so the adapter's passing requests are meaningful."""
    async with httpx.AsyncClient(base_url=served.url) as client:
        url = "/models/gemini-2.5-flash:generateContent"
        hdr = {"x-goog-api-key": "test-key"}
        user = {"role": "user", "parts": [{"text": "hi"}]}
        bad_bodies = [
            {"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]},
            {"contents": [user], "generation_config": {"temperature": 1}},
            {"contents": [{"role": "user", "parts": []}]},
            {
                "contents": [
                    user,
                    {
                        "role": "user",
                        "parts": [{"functionResponse": {"name": "f", "response": {}}}],
                    },
                ]
            },
        ]
        for body in bad_bodies:
            response = await client.post(url, json=body, headers=hdr)
            assert response.status_code == 400, body
            assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
        response = await client.post(f"{url}?key=test-key", json={"contents": [user]})
        assert response.status_code == 400


# --- the key and URLs ----------------------------------------------------------------


async def test_the_key_is_never_in_a_url(served: Served) -> None:
    model = served.model(key="AIza-live-key-42")
    served.fake.valid_keys.add("AIza-live-key-42")
    await model.complete(ask())
    await collect(model.stream(ask()))
    await model.embed(["a"])
    await model.aclose()
    assert served.fake.paths == [
        "/models/gemini-2.5-flash:generateContent",
        "/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        "/models/gemini-embedding-001:batchEmbedContents",
    ]
    assert all(h["x-goog-api-key"] == "AIza-live-key-42" for h in served.fake.headers)
    assert all("AIza-live-key-42" not in json.dumps(r) for r in served.fake.requests)


# --- embeddings ----------------------------------------------------------------------


async def test_embeddings_are_batched_and_in_order(served: Served, model: GeminiModel) -> None:
    texts = [f"text number {i}" for i in range(205)]
    vectors = await model.embed(texts)
    assert len(vectors) == 205
    assert [len(r["requests"]) for r in served.fake.requests] == [100, 100, 5]
    sent = [q["content"]["parts"][0]["text"] for r in served.fake.requests for q in r["requests"]]
    assert sent == texts
    assert vectors[0][0] == len(texts[0]) and vectors[150][0] == len(texts[150])
    assert vectors[3] != vectors[4]
    assert await model.embed([]) == []


async def test_embeddings_use_the_named_model(served: Served, model: GeminiModel) -> None:
    await model.embed(["x"], model="text-embedding-004")
    assert served.fake.paths[-1] == "/models/text-embedding-004:batchEmbedContents"
    assert served.fake.requests[-1]["requests"][0]["model"] == "models/text-embedding-004"


async def test_embedding_errors_are_typed(served: Served, model: GeminiModel) -> None:
    served.fake.push(Fail(429, "Resource has been exhausted", retry_after="2.5"))
    with pytest.raises(RateLimitedError) as info:
        await model.embed(["a", "b"])
    assert info.value.retry_after == 2.5
    served.fake.push(Raw(({"embeddings": [{"values": [0.1]}]},)))
    with pytest.raises(MalformedResponseError, match="1 embeddings for 2 texts"):
        await model.embed(["a", "b"])
    with pytest.raises(BadRequestError, match="text 1"):
        await model.embed(["a", "  "])
    with pytest.raises(BadRequestError, match="not one string"):
        await model.embed("abc")


async def test_stream_end_carries_the_finish(served: Served, model: GeminiModel) -> None:
    served.fake.push(Reply("Paris.", usage=(4, 2, 0)))
    events = [e async for e in model.stream(ask())]
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert (end.response.text, end.response.usage.input_tokens) == ("Paris.", 4)
