"""The shipped test doubles follow the same stream contract as real adapters."""

from __future__ import annotations

import pytest

from pilothouse.errors import UnavailableError
from pilothouse.models import BreakAfter, FunctionModel, ScriptedModel, collect, tool_call
from pilothouse.types import (
    Message,
    ModelRequest,
    StreamEnd,
    StreamError,
    TextDelta,
    ToolCallDelta,
)

REQUEST = ModelRequest((Message.user("say hi"),))


async def test_scripted_model_plays_turns_in_order_and_records_requests() -> None:
    model = ScriptedModel(["one", "two"])
    assert (await model.complete(REQUEST)).text == "one"
    assert (await collect(model.stream(REQUEST))).text == "two"
    assert model.requests == [REQUEST, REQUEST]
    with pytest.raises(AssertionError, match="no turn left"):
        await model.complete(REQUEST)


async def test_streams_are_real_deltas() -> None:
    events = [e async for e in ScriptedModel(["hello world"], chunk_size=3).stream(REQUEST)]
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == ["hel", "lo ", "wor", "ld"]
    assert isinstance(events[-1], StreamEnd)


async def test_tool_calls_stream_as_deltas_and_assemble() -> None:
    model = ScriptedModel([tool_call("lookup", {"q": "x"}, id="c1")])
    events = [e async for e in model.stream(REQUEST)]
    assert any(isinstance(e, ToolCallDelta) for e in events)
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.response.finish_reason == "tool_calls"
    assert end.response.tool_calls[0].id == "c1"
    assert end.response.tool_calls[0].arguments == {"q": "x"}


async def test_errors_before_content_raise_and_after_content_end_the_stream() -> None:
    with pytest.raises(UnavailableError):
        await ScriptedModel([UnavailableError("down")]).complete(REQUEST)
    events = [
        e async for e in ScriptedModel([BreakAfter("par", UnavailableError("x"))]).stream(REQUEST)
    ]
    assert isinstance(events[-1], StreamError)
    assert events[-1].partial.text == "par"


async def test_function_model_sync_and_async() -> None:
    def shout(request: ModelRequest) -> str:
        return request.messages[-1].text.upper()

    async def polite(request: ModelRequest) -> Message:
        return Message.assistant("please " + request.messages[-1].text)

    assert (await FunctionModel(shout).complete(REQUEST)).text == "SAY HI"
    assert (await FunctionModel(polite).complete(REQUEST)).text == "please say hi"
