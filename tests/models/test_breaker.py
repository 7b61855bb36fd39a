"""Circuit breaker: open after failures, refuse fast, half-open probe, close."""

from __future__ import annotations

import pytest

from pilothouse.errors import BadRequestError, CircuitOpenError, UnavailableError
from pilothouse.models import BreakAfter, ScriptedModel, collect
from pilothouse.models.breaker import BreakerBoard, BreakerPolicy, CircuitBreakerModel
from pilothouse.models.fallback import FallbackModel
from pilothouse.types import Message, ModelRequest

REQUEST = ModelRequest((Message.user("hi"),))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker_model(turns, clock, threshold=2, recovery=10.0):  # type: ignore[no-untyped-def]
    board = BreakerBoard(BreakerPolicy(failure_threshold=threshold, recovery_s=recovery), clock)
    inner = ScriptedModel(turns, model_id="p:flaky")
    return CircuitBreakerModel(inner, board.get("p:flaky")), inner, board


async def test_opens_after_threshold_and_refuses_without_calling() -> None:
    clock = Clock()
    model, inner, board = breaker_model([UnavailableError("1"), UnavailableError("2"), "ok"], clock)
    for _ in range(2):
        with pytest.raises(UnavailableError):
            await model.complete(REQUEST)
    assert board.states() == {"p:flaky": "open"}
    with pytest.raises(CircuitOpenError) as info:
        await model.complete(REQUEST)
    assert len(inner.requests) == 2
    assert info.value.retry_after == pytest.approx(10.0)


async def test_half_open_probe_success_closes() -> None:
    clock = Clock()
    model, _inner, board = breaker_model(
        [UnavailableError("1"), UnavailableError("2"), "ok", "ok2"], clock
    )
    for _ in range(2):
        with pytest.raises(UnavailableError):
            await model.complete(REQUEST)
    clock.now += 10
    assert board.states()["p:flaky"] == "half-open"
    assert (await model.complete(REQUEST)).text == "ok"
    assert board.states()["p:flaky"] == "closed"
    assert (await model.complete(REQUEST)).text == "ok2"


async def test_half_open_probe_failure_reopens() -> None:
    clock = Clock()
    model, _inner, board = breaker_model([UnavailableError(str(i)) for i in range(3)], clock)
    for _ in range(2):
        with pytest.raises(UnavailableError):
            await model.complete(REQUEST)
    clock.now += 10
    with pytest.raises(UnavailableError):
        await model.complete(REQUEST)
    assert board.states()["p:flaky"] == "open"
    with pytest.raises(CircuitOpenError):
        await model.complete(REQUEST)


async def test_only_one_probe_at_a_time() -> None:
    clock = Clock()
    model, _, board = breaker_model([UnavailableError("1"), UnavailableError("2")], clock)
    for _ in range(2):
        with pytest.raises(UnavailableError):
            await model.complete(REQUEST)
    clock.now += 10
    breaker = board.get("p:flaky")
    breaker.acquire()  # the probe is under way
    with pytest.raises(CircuitOpenError):
        breaker.acquire()


async def test_bad_requests_do_not_count() -> None:
    clock = Clock()
    model, _, board = breaker_model([BadRequestError("x")] * 3, clock)
    for _ in range(3):
        with pytest.raises(BadRequestError):
            await model.complete(REQUEST)
    assert board.states()["p:flaky"] == "closed"


async def test_a_success_resets_the_count() -> None:
    clock = Clock()
    model, _, board = breaker_model([UnavailableError("1"), "ok", UnavailableError("2")], clock)
    with pytest.raises(UnavailableError):
        await model.complete(REQUEST)
    await model.complete(REQUEST)
    with pytest.raises(UnavailableError):
        await model.complete(REQUEST)
    assert board.states()["p:flaky"] == "closed"


async def test_broken_streams_count_as_failures() -> None:
    clock = Clock()
    turns = [BreakAfter("a", UnavailableError("1")), BreakAfter("b", UnavailableError("2"))]
    model, _, board = breaker_model(turns, clock)
    for _ in range(2):
        events = [e async for e in model.stream(REQUEST)]
        assert events[-1].kind == "error"
    assert board.states()["p:flaky"] == "open"


async def test_open_circuit_makes_the_chain_skip_straight_to_the_fallback() -> None:
    clock = Clock()
    model, inner, _ = breaker_model([UnavailableError("1"), UnavailableError("2")], clock)
    backup = ScriptedModel(["b1", "b2", "b3"], model_id="local:backup")
    chain = FallbackModel([model, backup])
    for expected in ("b1", "b2", "b3"):
        assert (await collect(chain.stream(REQUEST))).text == expected
    assert len(inner.requests) == 2  # the third call never reached the flaky model
