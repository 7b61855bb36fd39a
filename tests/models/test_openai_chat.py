"""What the conformance suite does not cover for the OpenAI Chat Completions adapter:
host presets (Azure URLs and headers, token-limit field per host, custom names),
refusals, legacy and odd stream shapes, request mapping details, embeddings."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, aclosing
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from pilothouse.config import Settings
from pilothouse.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilteredError,
    MalformedResponseError,
    ModelNotAvailableError,
    RateLimitedError,
    UnavailableError,
)
from pilothouse.models import collect, create_model
from pilothouse.models.openai_chat import OpenAIChatModel
from pilothouse.models.providers import PROVIDERS
from pilothouse.testing.loopback import serve_app
from pilothouse.testing.wire import Fail, Malformed, Reply
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
from tests.fakes.openai_api import FakeOpenAI, RawJSON, RawSSE, Refusal, fake_embedding

Serve = Callable[..., tuple[FakeOpenAI, str]]

WEATHER = ToolSpec(
    "get_weather",
    "Current weather",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 1, "pattern": "^[A-Z]"},
            "unit": {"const": "C"},
            "when": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
        },
        "required": ["city"],
        "additionalProperties": False,
    },
)
TIME = ToolSpec("get_time", "Local time", {"type": "object", "properties": {}})


@pytest.fixture
def serve() -> Iterator[Serve]:
    with ExitStack() as stack:

        def start(flavor: str = "openai", **options: Any) -> tuple[FakeOpenAI, str]:
            fake = FakeOpenAI(flavor=flavor, **options)  # type: ignore[arg-type]
            return fake, stack.enter_context(serve_app(fake.app))

        yield start


def make(
    tmp_path: Path,
    model_id: str,
    *,
    environ: dict[str, str] | None = None,
    **provider: Any,
) -> OpenAIChatModel:
    name = model_id.partition(":")[0]
    settings = Settings.from_sources(
        home=tmp_path,
        environ=environ or {},
        file_data={"providers": {name: provider}} if provider else None,
    )
    model = create_model(model_id, settings)
    assert isinstance(model, OpenAIChatModel)
    return model


def ask(text: str = "Hello", **options: Any) -> ModelRequest:
    return ModelRequest((Message.system("Be brief."), Message.user(text)), **options)


# --- hosts -------------------------------------------------------------------------


async def test_azure_uses_deployment_path_api_version_and_api_key_header(
    serve: Serve, tmp_path: Path
) -> None:
    fake, url = serve("azure")
    environ = {
        "AZURE_OPENAI_ENDPOINT": url + "/",
        "AZURE_OPENAI_API_KEY": "az-key-1",
        "OPENAI_API_VERSION": "2025-04-01-preview",
    }
    fake.key = "az-key-1"
    async with aclosing(make(tmp_path, "azure:prod-gpt4.1_mini", environ=environ)) as model:
        response = await model.complete(ask(max_output_tokens=50))
        events = [e async for e in model.stream(ask())]
    assert response.text == "ok"
    assert isinstance(events[-1], StreamEnd)
    deployment = "/openai/deployments/prod-gpt4.1_mini/chat/completions"
    assert fake.paths == [f"{deployment}?api-version=2025-04-01-preview"] * 2
    assert fake.headers[0]["api-key"] == "az-key-1"
    assert "authorization" not in fake.headers[0]
    assert "model" not in fake.requests[0]
    assert fake.requests[0]["max_completion_tokens"] == 50


async def test_azure_without_endpoint_names_the_variable(tmp_path: Path) -> None:
    model = make(tmp_path, "azure:gpt", environ={"AZURE_OPENAI_API_KEY": "k"})
    with pytest.raises(ModelNotAvailableError, match="AZURE_OPENAI_ENDPOINT"):
        await model.complete(ask())


async def test_azure_content_filter_error_is_typed(serve: Serve, tmp_path: Path) -> None:
    fake, url = serve("azure")
    body = {
        "error": {
            "message": "The response was filtered due to the prompt triggering Azure "
            "OpenAI's content management policy.",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
        }
    }
    fake.push(RawJSON(body, status=400))
    async with aclosing(make(tmp_path, "azure:gpt", base_url=url, api_key="test-key")) as model:
        with pytest.raises(ContentFilteredError, match="content management policy"):
            await model.complete(ask())


@pytest.mark.parametrize(
    "provider", sorted(name for name, e in PROVIDERS.items() if e.protocol == "openai")
)
def test_token_limit_field_per_host(provider: str, tmp_path: Path) -> None:
    model = make(tmp_path, f"{provider}:m", base_url="http://127.0.0.1:9", api_key="k")
    body = model.payload(ask(max_output_tokens=64), stream=False)
    expected = "max_completion_tokens" if provider in ("openai", "azure") else "max_tokens"
    other = "max_tokens" if expected == "max_completion_tokens" else "max_completion_tokens"
    assert body[expected] == 64
    assert other not in body


async def test_vllm_sends_max_tokens_and_the_fake_refuses_the_other_field(
    serve: Serve, tmp_path: Path
) -> None:
    fake, url = serve("vllm")
    async with aclosing(
        make(tmp_path, "vllm:Qwen/Qwen2.5-7B-Instruct", base_url=url, api_key="test-key")
    ) as model:
        await model.complete(ask(max_output_tokens=9))
    assert fake.requests[-1]["max_tokens"] == 9
    assert fake.requests[-1]["model"] == "Qwen/Qwen2.5-7B-Instruct"
    async with httpx.AsyncClient() as client:  # the fake is strict about it
        body = {**fake.requests[-1], "max_completion_tokens": 9}
        del body["max_tokens"]
        answer = await client.post(
            f"{url}/chat/completions", json=body, headers={"Authorization": "Bearer test-key"}
        )
    assert answer.status_code == 400
    assert "max_completion_tokens" in answer.json()["error"]["message"]


async def test_custom_provider_with_openai_preset(serve: Serve, tmp_path: Path) -> None:
    fake, url = serve("openai")
    model = make(tmp_path, "gateway:gpt-4.1", preset="openai", base_url=url, api_key="test-key")
    async with aclosing(model):
        response = await model.complete(ask(max_output_tokens=5))
    assert response.model == "gateway:gpt-4.1"
    assert fake.requests[-1]["max_completion_tokens"] == 5
    assert fake.headers[-1]["authorization"] == "Bearer test-key"


async def test_missing_key_names_the_variable_without_a_request(
    serve: Serve, tmp_path: Path
) -> None:
    fake, url = serve("openai")
    model = make(tmp_path, "openai:gpt-4.1-mini", base_url=url)
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        await model.complete(ask())
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        await collect(model.stream(ask()))
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        await model.embed(["x"])
    custom = make(tmp_path, "groq:llama", base_url=url, api_key_env="MY_GROQ_KEY")
    with pytest.raises(AuthenticationError, match="MY_GROQ_KEY"):
        await custom.complete(ask())
    assert fake.requests == []


async def test_key_from_environment(serve: Serve, tmp_path: Path) -> None:
    fake, url = serve("openai")
    model = make(tmp_path, "openai:gpt-4.1-mini", environ={"OPENAI_API_KEY": "test-key"})
    model.endpoint = replace(model.endpoint, base_url=url)
    async with aclosing(model):
        assert (await model.complete(ask())).text == "ok"
    assert fake.headers[-1]["authorization"] == "Bearer test-key"


async def test_keyless_host_calls_without_a_key(serve: Serve, tmp_path: Path) -> None:
    fake, url = serve("vllm")  # this server was started with --api-key
    async with aclosing(make(tmp_path, "vllm:m", base_url=url)) as model:
        with pytest.raises(AuthenticationError) as info:
            await model.complete(ask())
    assert "authorization" not in fake.headers[-1]
    assert info.value.status == 401


# --- request mapping ---------------------------------------------------------------


async def test_schemas_are_passed_intact(serve: Serve, tmp_path: Path) -> None:
    fake, url = serve("openai")
    schema = {
        "type": "object",
        "properties": {
            "kind": {"const": "city"},
            "name": {"type": "string", "pattern": "^[A-Z]", "maxLength": 40},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}},
        },
        "required": ["kind", "name", "tags"],
        "additionalProperties": False,
        "$defs": {
            "tag": {
                "type": "object",
                "properties": {"label": {"type": "string"}},
                "required": ["label"],
                "additionalProperties": False,
            }
        },
    }
    async with aclosing(make(tmp_path, "openai:gpt-4.1", base_url=url, api_key="test-key")) as m:
        await m.complete(ask(output_schema=OutputSchema(schema, name="place")))
        await m.complete(ask(output_schema=OutputSchema(schema, name="loose", strict=False)))
        await m.complete(ask(tools=(WEATHER, TIME)))
    strict, loose, tools = fake.requests
    assert strict["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "place", "schema": schema, "strict": True},
    }
    assert loose["response_format"]["json_schema"]["strict"] is False
    assert tools["tools"][0] == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather",
            "parameters": WEATHER.parameters,
        },
    }


async def test_strict_schema_rules_are_enforced_by_the_vendor(serve: Serve, tmp_path: Path) -> None:
    _, url = serve("openai")
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    async with aclosing(make(tmp_path, "openai:gpt-4.1", base_url=url, api_key="test-key")) as m:
        with pytest.raises(BadRequestError, match="additionalProperties"):
            await m.complete(ask(output_schema=OutputSchema(schema)))


def test_tool_choice_and_parallel_calls_mapping(tmp_path: Path) -> None:
    model = make(tmp_path, "openai:gpt-4.1", base_url="http://127.0.0.1:9", api_key="k")
    body = model.payload(ask(tools=(WEATHER, TIME), tool_choice="get_time"), stream=False)
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert body["parallel_tool_calls"] is True
    body = model.payload(
        ask(tools=(WEATHER,), tool_choice="none", parallel_tool_calls=False), stream=True
    )
    assert body["tool_choice"] == "none"
    assert body["parallel_tool_calls"] is False
    assert body["stream_options"] == {"include_usage": True}
    bare = model.payload(ask(), stream=False)
    assert {"tools", "tool_choice", "parallel_tool_calls", "stream", "stream_options"}.isdisjoint(
        bare
    )
    with pytest.raises(BadRequestError, match="not among"):
        model.payload(ask(tools=(WEATHER,), tool_choice="get_time"), stream=False)
    with pytest.raises(BadRequestError, match="no tools"):
        model.payload(ask(tool_choice="required"), stream=False)


def test_messages_mapping(tmp_path: Path) -> None:
    model = make(tmp_path, "openai:gpt-4.1", base_url="http://127.0.0.1:9", api_key="k")
    request = ModelRequest(
        (
            Message.system("Rules."),
            Message.user("Look", ImagePart(data="iVBORw0KGgo="), ImagePart(url="https://x/y.png")),
            Message.assistant("Checking.", (ToolCallPart("c1", "get_time", {"city": "Oslo"}),)),
            Message.tool(ToolResultPart("c1", "get_time", "no such city", is_error=True)),
        ),
        tools=(TIME,),
    )
    messages = model.payload(request, stream=False)["messages"]
    assert messages[0] == {"role": "system", "content": "Rules."}
    assert messages[1]["content"] == [
        {"type": "text", "text": "Look"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
    ]
    assert messages[2]["content"] == "Checking."
    assert messages[2]["tool_calls"][0]["function"] == {
        "name": "get_time",
        "arguments": '{"city": "Oslo"}',
    }
    assert messages[3] == {"role": "tool", "tool_call_id": "c1", "content": "Error: no such city"}


async def test_profile_without_system_role_or_json_schema(serve: Serve, tmp_path: Path) -> None:
    fake, url = serve("vllm")
    async with aclosing(make(tmp_path, "vllm:m", base_url=url, api_key="test-key")) as model:
        model.profile = replace(model.profile, system_role=False, json_schema=False)
        schema = OutputSchema({"type": "object", "properties": {"a": {"type": "integer"}}})
        await model.complete(ask("Give a", output_schema=schema))
    sent = fake.requests[-1]
    assert [m["role"] for m in sent["messages"]] == ["user"]
    content = sent["messages"][0]["content"]
    assert content.startswith("Be brief.\n\nAnswer with one JSON object only")
    assert '"a":{"type":"integer"}' in content and content.endswith("Give a")
    assert sent["response_format"] == {"type": "json_object"}


# --- responses ---------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_refusal_is_content_filter(serve: Serve, tmp_path: Path, streaming: bool) -> None:
    fake, url = serve("openai")
    fake.push(Refusal("I can't help with that."))
    async with aclosing(make(tmp_path, "openai:gpt-4.1", base_url=url, api_key="test-key")) as m:
        schema = {"type": "object", "properties": {}, "additionalProperties": False}
        request = ask(output_schema=OutputSchema(schema))
        response = await (collect(m.stream(request)) if streaming else m.complete(request))
    assert response.finish_reason == "content_filter"
    assert response.text == "I can't help with that."


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
async def test_usage_includes_cached_tokens_and_cost(
    serve: Serve, tmp_path: Path, streaming: bool
) -> None:
    fake, url = serve("openai")
    fake.push(Reply("Paris.", usage=(1000, 100, 400)))
    async with aclosing(
        make(tmp_path, "openai:gpt-4.1-mini", base_url=url, api_key="test-key")
    ) as m:
        response = await (collect(m.stream(ask())) if streaming else m.complete(ask()))
    assert (response.usage.input_tokens, response.usage.output_tokens) == (1000, 100)
    assert response.usage.cached_tokens == 400
    assert response.cost_usd == pytest.approx((600 * 0.40 + 400 * 0.10 + 100 * 1.60) / 1e6)


async def test_legacy_function_call_becomes_a_tool_call(serve: Serve, tmp_path: Path) -> None:
    fake, url = serve("vllm")
    message = {
        "role": "assistant",
        "content": None,
        "function_call": {"name": "get_time", "arguments": '{"city": "Lima"}'},
    }
    body = {"choices": [{"index": 0, "message": message, "finish_reason": "function_call"}]}
    fake.push(RawJSON(body))
    legacy = {"function_call": message["function_call"]}
    fake.push(
        RawSSE(
            (
                json.dumps({"choices": [{"index": 0, "delta": legacy}]}),
                json.dumps(
                    {"choices": [{"index": 0, "delta": {}, "finish_reason": "function_call"}]}
                ),
                "[DONE]",
            )
        )
    )
    async with aclosing(make(tmp_path, "vllm:m", base_url=url, api_key="test-key")) as model:
        for response in (await model.complete(ask()), await collect(model.stream(ask()))):
            assert response.finish_reason == "tool_calls"
            [call] = response.tool_calls
            assert (call.name, call.arguments) == ("get_time", {"city": "Lima"})


async def test_interleaved_tool_call_deltas_assemble_by_index(serve: Serve, tmp_path: Path) -> None:
    fake, url = serve("vllm")

    def chunk(calls: list[dict[str, Any]], finish: str | None = None) -> str:
        delta = {"tool_calls": calls} if calls else {}
        return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    def first(index: int, call_id: str, name: str, arguments: str) -> str:
        function = {"name": name, "arguments": arguments}
        return chunk([{"index": index, "id": call_id, "type": "function", "function": function}])

    def more(index: int, arguments: str) -> str:
        return chunk([{"index": index, "function": {"arguments": arguments}}])

    usage = {"prompt_tokens": 5, "completion_tokens": 2}
    fake.push(
        RawSSE(
            (
                first(0, "a", "get_time", ""),
                first(1, "b", "get_weather", '{"ci'),
                more(0, '{"city"'),
                more(1, 'ty": "Oslo"}'),
                more(0, ': "Lima"}'),
                chunk([], "tool_calls"),
                json.dumps({"choices": [], "usage": usage}),
                "[DONE]",
            )
        )
    )
    async with aclosing(make(tmp_path, "vllm:m", base_url=url, api_key="test-key")) as model:
        response = await collect(model.stream(ask(tools=(WEATHER, TIME))))
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        ("a", "get_time", {"city": "Lima"}),
        ("b", "get_weather", {"city": "Oslo"}),
    ]
    assert response.usage.input_tokens == 5


async def test_done_without_finish_is_malformed_and_finish_without_done_is_complete(
    serve: Serve, tmp_path: Path
) -> None:
    fake, url = serve("vllm")
    text = json.dumps({"choices": [{"index": 0, "delta": {"content": "Hi"}}]})
    stop = json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    fake.push(RawSSE((text, "[DONE]")), RawSSE((text, stop)))
    async with aclosing(make(tmp_path, "vllm:m", base_url=url, api_key="test-key")) as model:
        events = [e async for e in model.stream(ask())]
        assert isinstance(events[-1], StreamError)
        assert isinstance(events[-1].error, MalformedResponseError)
        assert "[DONE]" in str(events[-1].error)
        response = await collect(model.stream(ask()))
    assert (response.text, response.finish_reason) == ("Hi", "stop")


STREAM_ERRORS = {
    "vllm-flat": (
        {"object": "error", "message": "bad grammar", "type": "BadRequestError", "code": 400},
        BadRequestError,
    ),
    "rate-limit": (
        {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}},
        RateLimitedError,
    ),
    "server": (
        {"error": {"message": "Overloaded", "type": "server_error", "code": None}},
        UnavailableError,
    ),
    "string": ({"error": "engine died"}, UnavailableError),
}


@pytest.mark.parametrize(("error", "kind"), STREAM_ERRORS.values(), ids=STREAM_ERRORS.keys())
async def test_in_stream_error_shapes_are_typed(
    serve: Serve, tmp_path: Path, error: dict[str, Any], kind: type[Exception]
) -> None:
    fake, url = serve("vllm")
    text = json.dumps({"choices": [{"index": 0, "delta": {"content": "Par"}}]})
    fake.push(RawSSE((text, json.dumps(error))), RawSSE((json.dumps(error),)))
    async with aclosing(make(tmp_path, "vllm:m", base_url=url, api_key="test-key")) as model:
        events = [e async for e in model.stream(ask())]
        with pytest.raises(kind):  # before any content: raised, so failover can step in
            await collect(model.stream(ask()))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Par"
    assert isinstance(events[-1], StreamError)
    assert type(events[-1].error) is kind


async def test_error_object_in_a_200_body_is_typed(serve: Serve, tmp_path: Path) -> None:
    fake, url = serve("vllm")
    fake.push(RawJSON({"error": {"message": "model is loading", "type": "server_error"}}))
    async with aclosing(make(tmp_path, "vllm:m", base_url=url, api_key="test-key")) as model:
        with pytest.raises(UnavailableError, match="model is loading"):
            await model.complete(ask())


async def test_unknown_model_and_spent_quota(serve: Serve, tmp_path: Path) -> None:
    fake, url = serve("openai")
    fake.push(
        RawJSON(
            {
                "error": {
                    "message": "The model `gpt-9` does not exist or you do not have access to it.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "model_not_found",
                }
            },
            status=404,
        ),
        RawJSON(
            {
                "error": {
                    "message": "You exceeded your current quota.",
                    "type": "insufficient_quota",
                    "param": None,
                    "code": "insufficient_quota",
                }
            },
            status=429,
        ),
    )
    async with aclosing(make(tmp_path, "openai:gpt-9", base_url=url, api_key="test-key")) as m:
        with pytest.raises(ModelNotAvailableError, match="does not exist") as missing:
            await m.complete(ask())
        with pytest.raises(RateLimitedError) as quota:
            await m.complete(ask())
    assert missing.value.status == 404 and missing.value.failover
    assert not quota.value.retryable and quota.value.failover


async def test_rate_limit_headers_are_vendor_shaped(serve: Serve, tmp_path: Path) -> None:
    fake, url = serve("openai")
    fake.push(Fail(429, "Rate limit reached", retry_after="2"))
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{url}/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": "Bearer test-key"},
        )
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "2"
    assert answer.headers["x-ratelimit-remaining-requests"] == "0"
    assert set(answer.json()["error"]) == {"message", "type", "param", "code"}


# --- the fake is strict ------------------------------------------------------------


def _call(arguments: Any) -> dict[str, Any]:
    function = {"name": "f", "arguments": arguments}
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "x", "type": "function", "function": function}],
    }


def _append(message: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda body: body["messages"].append(message)


STRICTNESS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "unknown-arg": (lambda b: b.update(temperatur=1), "Unrecognized request argument"),
    "choice-without-tools": (lambda b: b.update(tool_choice="auto"), "only allowed when 'tools'"),
    "options-without-stream": (
        lambda b: b.update(stream_options={"include_usage": True}),
        "only allowed when 'stream'",
    ),
    "orphan-tool": (_append({"role": "tool", "tool_call_id": "x", "content": "1"}), "preceding"),
    "object-arguments": (_append(_call({})), "expected a string"),
    "unanswered-call": (_append(_call("{}")), "did not have response messages"),
    "bad-role": (_append({"role": "bot", "content": "x"}), "Supported values"),
}


@pytest.mark.parametrize(("change", "needle"), STRICTNESS.values(), ids=STRICTNESS.keys())
async def test_fake_rejects_what_openai_rejects(
    serve: Serve, change: Callable[[dict[str, Any]], None], needle: str
) -> None:
    _, url = serve("openai")
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    change(body)
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{url}/chat/completions", json=body, headers={"Authorization": "Bearer test-key"}
        )
    assert answer.status_code == 400
    assert needle in answer.json()["error"]["message"]


# --- embeddings --------------------------------------------------------------------


async def test_embeddings_are_batched_and_ordered_by_index(serve: Serve, tmp_path: Path) -> None:
    fake, url = serve("openai", reverse_embeddings=True)
    texts = ["alpha", "beta beta", "gamma", "delta", "epsilon e"]
    async with aclosing(make(tmp_path, "openai:gpt-4.1", base_url=url, api_key="test-key")) as m:
        m.embedding_batch_size = 2
        vectors = await m.embed(texts, model="text-embedding-3-small")
    assert vectors == [fake_embedding(t) for t in texts]
    assert [r["input"] for r in fake.requests] == [texts[0:2], texts[2:4], texts[4:]]
    assert {r["model"] for r in fake.requests} == {"text-embedding-3-small"}
    assert fake.paths == ["/embeddings"] * 3


async def test_azure_embeddings_path(serve: Serve, tmp_path: Path) -> None:
    fake, url = serve("azure")
    model = make(tmp_path, "azure:chat", base_url=url, api_key="test-key", api_version="2024-10-21")
    async with aclosing(model):
        vectors = await model.embed(["one", "two"], model="embed-large")
    assert vectors == [fake_embedding("one"), fake_embedding("two")]
    assert fake.paths == ["/openai/deployments/embed-large/embeddings?api-version=2024-10-21"]
    assert "model" not in fake.requests[0]
    assert fake.headers[0]["api-key"] == "test-key"


async def test_embeddings_input_checks_need_no_request(serve: Serve, tmp_path: Path) -> None:
    fake, url = serve("openai")
    async with aclosing(make(tmp_path, "openai:e", base_url=url, api_key="test-key")) as m:
        assert await m.embed([]) == []
        with pytest.raises(BadRequestError, match="text 1"):
            await m.embed(["fine", ""])
        with pytest.raises(BadRequestError, match="not one string"):
            await m.embed("a string")
    assert fake.requests == []


async def test_embedding_errors_are_typed(serve: Serve, tmp_path: Path) -> None:
    fake, url = serve("openai")
    short = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1]}]}
    dupe = {
        "object": "list",
        "data": [{"index": 0, "embedding": [0.1]}, {"index": 0, "embedding": [0.2]}],
    }
    fake.push(
        Fail(429, "Rate limit reached", retry_after="3"),
        Fail(400, "This model's maximum context length is 8192 tokens"),
        Malformed(),
        RawJSON(short),
        RawJSON(dupe),
    )
    async with aclosing(make(tmp_path, "openai:e", base_url=url, api_key="test-key")) as m:
        with pytest.raises(RateLimitedError) as limited:
            await m.embed(["a", "b"])
        with pytest.raises(BadRequestError, match="maximum context length"):
            await m.embed(["a", "b"])
        with pytest.raises(MalformedResponseError):
            await m.embed(["a", "b"])
        with pytest.raises(MalformedResponseError, match="1 embeddings for 2 inputs"):
            await m.embed(["a", "b"])
        with pytest.raises(MalformedResponseError, match="bad index"):
            await m.embed(["a", "b"])
        bad = make(tmp_path, "openai:e", base_url=url, api_key="sk-wrong-1234567")
        async with aclosing(bad):
            with pytest.raises(AuthenticationError) as denied:
                await bad.embed(["a"])
    assert limited.value.retry_after == 3
    assert "sk-wrong-1234567" not in str(denied.value)
