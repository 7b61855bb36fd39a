"""Retries: backoff with jitter, Retry-After honoured, streams retried only before content."""

from __future__ import annotations

import random

import pytest

from pilothouse.errors import BadRequestError, RateLimitedError, UnavailableError
from pilothouse.models import BreakAfter, ScriptedModel, collect
from pilothouse.models.retry import RetryingModel, RetryPolicy
from pilothouse.types import Message, ModelRequest, StreamError

REQUEST = ModelRequest((Message.user("hi"),))


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


async def test_retryable_errors_are_retried_with_growing_jittered_delays() -> None:
    sleeps = Sleeps()
    inner = ScriptedModel([UnavailableError("a"), UnavailableError("b"), "ok"])
    policy = RetryPolicy(max_attempts=3, base_delay_s=1.0, max_delay_s=10)
    model = RetryingModel(inner, policy, sleep=sleeps, rng=random.Random(1))
    assert (await model.complete(REQUEST)).text == "ok"
    assert len(sleeps.calls) == 2
    assert 0 <= sleeps.calls[0] <= 1.0
    assert 0 <= sleeps.calls[1] <= 2.0


async def test_retry_after_is_honoured_exactly() -> None:
    sleeps = Sleeps()
    inner = ScriptedModel([RateLimitedError("slow", retry_after=2.5), "ok"])
    model = RetryingModel(inner, RetryPolicy(max_attempts=2), sleep=sleeps)
    await model.complete(REQUEST)
    assert sleeps.calls == [2.5]


async def test_a_long_retry_after_gives_up_at_once_for_failover() -> None:
    sleeps = Sleeps()
    inner = ScriptedModel([RateLimitedError("quota", retry_after=3600), "never"])
    model = RetryingModel(inner, RetryPolicy(max_attempts=3, max_retry_after_s=30), sleep=sleeps)
    with pytest.raises(RateLimitedError):
        await model.complete(REQUEST)
    assert sleeps.calls == []


async def test_non_retryable_errors_are_raised_at_once() -> None:
    sleeps = Sleeps()
    model = RetryingModel(ScriptedModel([BadRequestError("bad"), "never"]), sleep=sleeps)
    with pytest.raises(BadRequestError):
        await model.complete(REQUEST)
    assert sleeps.calls == []


async def test_attempts_are_bounded() -> None:
    sleeps = Sleeps()
    inner = ScriptedModel([UnavailableError(str(i)) for i in range(5)])
    model = RetryingModel(inner, RetryPolicy(max_attempts=3), sleep=sleeps)
    with pytest.raises(UnavailableError, match="2"):
        await model.complete(REQUEST)
    assert len(inner.requests) == 3


async def test_stream_is_retried_before_first_content() -> None:
    sleeps = Sleeps()
    inner = ScriptedModel([UnavailableError("down"), "hello there"])
    model = RetryingModel(inner, sleep=sleeps)
    assert (await collect(model.stream(REQUEST))).text == "hello there"
    assert len(sleeps.calls) == 1


async def test_stream_is_not_retried_after_content() -> None:
    sleeps = Sleeps()
    inner = ScriptedModel([BreakAfter("hel", UnavailableError("reset")), "never"])
    model = RetryingModel(inner, sleep=sleeps)
    events = [e async for e in model.stream(REQUEST)]
    assert isinstance(events[-1], StreamError)
    assert sleeps.calls == []
    assert len(inner.requests) == 1
