"""Opt-in stream continuation (issue 11): a stream that breaks after text was sent is
carried on by a later model that can continue an assistant message, marked in the
stream and in the trace; off (the default), the stream ends with its error event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pilothouse.errors import UnavailableError
from pilothouse.models import ScriptedModel, tool_call
from pilothouse.models.base import AdapterEvent
from pilothouse.models.fallback import FallbackModel
from pilothouse.models.testing import BreakAfter
from pilothouse.types import (
    Message,
    ModelRequest,
    StreamContinued,
    StreamEnd,
    StreamError,
    StreamEvent,
    TextDelta,
    UsageEvent,
)
from tests.failover.rig import ASK, rig, sse_payloads

REQUEST = ModelRequest((Message.user("What is the capital of France?"),))


def broken(text: str = "The capital of France") -> ScriptedModel:
    return ScriptedModel([BreakAfter(text, UnavailableError("connection reset"))], model_id="p:a")


async def events_of(chain: FallbackModel) -> list[StreamEvent]:
    return [event async for event in chain.stream(REQUEST)]


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_off_by_default_a_broken_stream_ends_with_its_error() -> None:
    follow = ScriptedModel([" is Paris."], model_id="p:b", continues=True)
    events = await events_of(FallbackModel([broken(), follow]))
    assert isinstance(events[-1], StreamError)
    assert follow.requests == []


async def test_a_broken_stream_is_continued_by_a_model_that_can() -> None:
    cannot = ScriptedModel(["never asked"], model_id="p:b")
    can = ScriptedModel([" is Paris."], model_id="p:c", continues=True)
    events = await events_of(FallbackModel([broken(), cannot, can], continue_streams=True))
    assert text_of(events) == "The capital of France is Paris."
    [marker] = [e for e in events if isinstance(e, StreamContinued)]
    assert marker.model == "p:c" and "connection reset" in str(marker.error)
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.response.text == "The capital of France is Paris."
    assert end.response.model == "p:c"
    assert cannot.requests == []
    last = can.requests[0].messages[-1]  # the answer so far, to continue
    assert (last.role, last.text) == ("assistant", "The capital of France")


class BreaksAfterTheCall(ScriptedModel):
    """Streams its tool call, then breaks."""

    async def _stream(self, request: ModelRequest) -> AsyncIterator[AdapterEvent]:
        async for event in super()._stream(request):
            if isinstance(event, UsageEvent):
                raise UnavailableError("reset after the call started")
            yield event


async def test_a_started_tool_call_is_never_continued() -> None:
    first = BreaksAfterTheCall([tool_call("lookup", {"term": "vpn"})], model_id="p:a")
    can = ScriptedModel(["never"], model_id="p:c", continues=True)
    events = await events_of(FallbackModel([first, can], continue_streams=True))
    assert isinstance(events[-1], StreamError)
    assert can.requests == []


async def test_when_no_model_can_continue_the_error_stays() -> None:
    failing = ScriptedModel([UnavailableError("also down")], model_id="p:c", continues=True)
    events = await events_of(FallbackModel([broken(), failing], continue_streams=True))
    assert text_of(events) == "The capital of France"
    assert isinstance(events[-1], StreamError)
    assert "connection reset" in str(events[-1].error)


# --- the gateway -------------------------------------------------------------------


@pytest.mark.parametrize("continuing", ["continuing:m", "test:continues"])
def test_the_gateway_continues_a_broken_stream_when_the_route_says_so(
    tmp_path: Path, continuing: str
) -> None:
    neutral = ScriptedModel([" is Paris."], model_id="test:continues", continues=True)
    with rig(tmp_path, mode="cut_after_text", text="The capital of France is Paris.") as r:
        r.healthy.text = " is Paris."
        routes = {
            "on": {"targets": ["faulty:m", continuing], "continue_streams": True},
            "off": {"targets": ["faulty:m", continuing]},
        }
        with (
            r.gateway(routes, models={"test:continues": neutral}) as base,
            httpx.Client(base_url=base, timeout=10) as http,
        ):
            body = {"stream": True, **ASK}
            off = http.post("/v1/chat/completions", json={"model": "off", **body})
            on = http.post("/v1/chat/completions", json={"model": "on", **body})
    assert json.loads(sse_payloads(off.text)[-1])["error"]["code"] == "stream_interrupted"
    payloads = sse_payloads(on.text)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all("error" not in c for c in chunks)
    [marker] = [c["pilothouse"] for c in chunks if "pilothouse" in c]
    assert marker["continued_on"] == continuing
    text = "".join(
        choice["delta"].get("content") or "" for c in chunks for choice in c.get("choices", [])
    )
    assert text == "The capita is Paris."  # the first piece sent, then the continuation
    if continuing == "continuing:m":
        asked = r.healthy.requests[-1]
        assert asked["messages"][-1]["role"] == "assistant"
        assert asked["continue_final_message"] is True  # vLLM's own parameters
        assert asked["add_generation_prompt"] is False
    else:
        assert neutral.requests[-1].messages[-1].role == "assistant"
