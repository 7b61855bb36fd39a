"""Timeouts around any model: whole call, first event, gaps between events."""

from __future__ import annotations

import pytest

from pilothouse.errors import ModelTimeoutError
from pilothouse.models import ScriptedModel, collect
from pilothouse.models.fallback import FallbackModel
from pilothouse.models.timeout import TimeoutModel, TimeoutPolicy
from pilothouse.types import Message, ModelRequest, StreamError, TextDelta

REQUEST = ModelRequest((Message.user("hi"),))


async def test_total_timeout_on_complete() -> None:
    slow = ScriptedModel(["a long answer"], delay_s=0.2, chunk_size=1)
    with pytest.raises(ModelTimeoutError):
        await TimeoutModel(slow, TimeoutPolicy(total_s=0.3)).complete(REQUEST)


async def test_slow_first_event_raises_before_content_so_fallback_is_invisible() -> None:
    slow = ScriptedModel(["late"], delay_s=0.5, model_id="p:slow")
    chain = FallbackModel(
        [
            TimeoutModel(slow, TimeoutPolicy(first_byte_s=0.05)),
            ScriptedModel(["fast"], model_id="p:fast"),
        ]
    )
    response = await collect(chain.stream(REQUEST))
    assert response.text == "fast"


async def test_a_stall_after_content_ends_with_a_timeout_event() -> None:
    class Stalling(ScriptedModel):
        async def _stream(self, request):  # type: ignore[no-untyped-def]
            import asyncio

            yield TextDelta("partial")
            await asyncio.sleep(5)

    model = TimeoutModel(Stalling([]), TimeoutPolicy(idle_s=0.1))
    events = [e async for e in model.stream(REQUEST)]
    assert isinstance(events[-1], StreamError)
    assert isinstance(events[-1].error, ModelTimeoutError)
    assert events[-1].partial.text == "partial"


async def test_no_limits_passes_through() -> None:
    model = TimeoutModel(ScriptedModel(["ok", "ok"]), TimeoutPolicy())
    assert (await model.complete(REQUEST)).text == "ok"
    assert (await collect(model.stream(REQUEST))).text == "ok"
