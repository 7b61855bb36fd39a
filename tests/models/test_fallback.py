"""Fallback chains: each failure kind moves on; streaming follows the contract."""

from __future__ import annotations

import pytest

from pilothouse.errors import (
    AllModelsFailedError,
    AuthenticationError,
    ModelTimeoutError,
    RateLimitedError,
    ResponseRejectedError,
    UnavailableError,
)
from pilothouse.models import BreakAfter, ScriptedModel, collect, tool_call
from pilothouse.models.fallback import FallbackModel
from pilothouse.types import (
    Message,
    ModelRequest,
    StreamEnd,
    StreamError,
    TextDelta,
    ToolSpec,
)

REQUEST = ModelRequest((Message.user("What is the capital of France?"),))


@pytest.mark.parametrize(
    "failure",
    [
        UnavailableError("connection refused"),
        UnavailableError("HTTP 503", status=503),
        RateLimitedError("HTTP 429", retry_after=60),
        ModelTimeoutError("too slow"),
        AuthenticationError("bad key", status=401),
    ],
    ids=["refused", "503", "429", "timeout", "401"],
)
async def test_each_failure_kind_moves_to_the_next_model(failure: Exception) -> None:
    first = ScriptedModel([failure], model_id="cloud:a")
    second = ScriptedModel(["Paris."], model_id="local:b")
    chain = FallbackModel([first, second])
    response = await chain.complete(REQUEST)
    assert response.text == "Paris."
    assert response.model == "local:b"
    assert len(first.requests) == 1


async def test_two_failing_models_then_one_that_answers_streaming() -> None:
    chain = FallbackModel(
        [
            ScriptedModel([UnavailableError("refused")], model_id="openai:x"),
            ScriptedModel([RateLimitedError("slow down", retry_after=3)], model_id="anthropic:y"),
            ScriptedModel(["The capital is Paris."], model_id="local:z"),
        ]
    )
    events = [e async for e in chain.stream(REQUEST)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "The capital is Paris."
    assert isinstance(events[-1], StreamEnd)
    assert events[-1].response.model == "local:z"


async def test_all_failing_raises_with_every_error_in_order() -> None:
    errors = [UnavailableError("a down"), AuthenticationError("b key")]
    chain = FallbackModel(
        [ScriptedModel([errors[0]], model_id="p:a"), ScriptedModel([errors[1]], model_id="p:b")]
    )
    with pytest.raises(AllModelsFailedError) as info:
        await chain.complete(REQUEST)
    assert info.value.errors == errors
    assert "a down" in str(info.value) and "b key" in str(info.value)
    with pytest.raises(AllModelsFailedError):
        await collect(
            FallbackModel(
                [
                    ScriptedModel([errors[0]], model_id="p:a"),
                    ScriptedModel([errors[1]], model_id="p:b"),
                ]
            ).stream(REQUEST)
        )


async def test_a_rejected_response_fails_over() -> None:
    chain = FallbackModel(
        [ScriptedModel(["   "], model_id="p:empty"), ScriptedModel(["Paris."], model_id="p:ok")]
    )
    assert (await chain.complete(REQUEST)).model == "p:ok"
    chain = FallbackModel(
        [ScriptedModel(["   "], model_id="p:empty"), ScriptedModel(["Paris."], model_id="p:ok")]
    )
    response = await collect(chain.stream(REQUEST))
    assert response.model == "p:ok"


async def test_custom_acceptor_rejects_invalid_json() -> None:
    def must_be_json(response):  # type: ignore[no-untyped-def]
        try:
            response.json()
        except ValueError:
            return "not JSON"
        return None

    chain = FallbackModel(
        [
            ScriptedModel(["no json here"], model_id="p:a"),
            ScriptedModel(['{"ok": 1}'], model_id="p:b"),
        ],
        accept=must_be_json,
    )
    response = await chain.complete(REQUEST)
    assert response.json() == {"ok": 1}


async def test_failure_after_first_token_is_an_error_event_not_a_failover() -> None:
    second = ScriptedModel(["never used"], model_id="p:second")
    chain = FallbackModel(
        [
            ScriptedModel(
                [BreakAfter("The capital", UnavailableError("reset"))], model_id="p:first"
            ),
            second,
        ]
    )
    events = [e async for e in chain.stream(REQUEST)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "The capital"
    last = events[-1]
    assert isinstance(last, StreamError)
    assert isinstance(last.error, UnavailableError)
    assert last.partial.text == "The capital"
    assert second.requests == []


async def test_rejection_after_streamed_content_is_an_error_event() -> None:
    chain = FallbackModel(
        [ScriptedModel(["not json"], model_id="p:a"), ScriptedModel(["{}"], model_id="p:b")],
        accept=lambda r: None if r.text.startswith("{") else "not JSON",
    )
    events = [e async for e in chain.stream(REQUEST)]
    assert isinstance(events[-1], StreamError)
    assert isinstance(events[-1].error, ResponseRejectedError)


async def test_tools_travel_to_the_fallback_model() -> None:
    tools = (ToolSpec("get_weather", "weather", {"type": "object", "properties": {}}),)
    second = ScriptedModel([tool_call("get_weather", {"city": "Oslo"})], model_id="p:b")
    chain = FallbackModel([ScriptedModel([UnavailableError("down")], model_id="p:a"), second])
    response = await chain.complete(ModelRequest(REQUEST.messages, tools=tools))
    assert response.tool_calls[0].arguments == {"city": "Oslo"}
    assert second.requests[0].tools == tools


def test_an_empty_chain_is_refused() -> None:
    with pytest.raises(ValueError):
        FallbackModel([])
