"""Retries with exponential backoff and full jitter that honour Retry-After.

Only errors marked `retryable` are retried, and a stream only before its first event:
once anything was shown to the caller, retrying would repeat it. No retry is waited
for when it cannot help:

- a Retry-After longer than `max_retry_after_s` is not waited for: the error is
  raised at once so a fallback chain can move to another model instead of stalling;
- `before_fallback` (set for every model of a chain but the last): a rate limit or a
  timeout moves on to the fallback at once instead of waiting or trying again;
- a wait that would end after `deadline_s` (counted from the start of the call) is not
  taken;
- when the model would refuse the next call at once (its circuit breaker just opened),
  the error is raised without sleeping first.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

from pilothouse.errors import ModelError, ModelTimeoutError, RateLimitedError
from pilothouse.models.base import (
    Model,
    WrapperModel,
    close_stream,
    end_of_stream,
    with_latency,
)
from pilothouse.tracing import current_span
from pilothouse.types import ModelRequest, ModelResponse, StreamEnd, StreamError, StreamEvent

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The defaults are the gateway's too (server/gateway/routes.py)."""

    max_attempts: int = 2
    base_delay_s: float = 0.25
    max_delay_s: float = 4.0
    max_retry_after_s: float = 5.0
    deadline_s: float | None = None
    """The whole call, every attempt and wait together: a wait that would end later is
    not taken."""
    before_fallback: bool = False
    """Another model comes next: a rate limit or a timeout moves on to it at once."""

    def delay(
        self, attempt: int, error: ModelError, rng: random.Random, elapsed_s: float = 0.0
    ) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to give up now."""
        if attempt >= self.max_attempts or not error.retryable:
            return None
        if self.before_fallback and isinstance(error, RateLimitedError | ModelTimeoutError):
            return None
        retry_after = getattr(error, "retry_after", None)
        if isinstance(error, RateLimitedError) and retry_after is not None:
            if retry_after > self.max_retry_after_s:
                return None
            wait = float(retry_after)
        else:
            ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
            wait = rng.uniform(0, ceiling)  # full jitter: spreads out synchronized clients
        if self.deadline_s is not None and elapsed_s + wait >= self.deadline_s:
            return None
        return wait


class RetryingModel(WrapperModel):
    def __init__(
        self,
        inner: Model,
        policy: RetryPolicy | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(inner)
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock

    async def _wait_or_raise(self, attempt: int, error: ModelError, started: float) -> None:
        delay = self.policy.delay(attempt, error, self._rng, self._clock() - started)
        if delay is None or not self.inner.available():
            raise error
        log.info("%s: %s; retry %d in %.2fs", self.id, type(error).__name__, attempt, delay)
        span = current_span()  # the attempt that failed, in the trace of the call
        if span is not None:
            span.add_event(
                "model.retry",
                {
                    "pilothouse.model": self.id,
                    "pilothouse.attempt": attempt,
                    "error.type": type(error).__name__,
                    "error.message": str(error),
                    "pilothouse.retry_in_s": round(delay, 3),
                },
            )
        await self._sleep(delay)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        started = self._clock()
        attempt = 1
        while True:
            try:
                response = await self.inner.complete(request)
            except ModelError as error:
                await self._wait_or_raise(attempt, error, started)
                attempt += 1
                continue
            return replace(response, latency_s=self._clock() - started)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        started = self._clock()
        attempt = 1
        while True:
            events = self.inner.stream(request)
            try:
                first = await anext(events)
            except StopAsyncIteration:
                return
            except ModelError as error:
                await close_stream(events)
                await self._wait_or_raise(attempt, error, started)
                attempt += 1
                continue
            try:
                if not _final(first):
                    yield first
                    async for event in events:
                        if _final(event):
                            first = event
                            break
                        yield event
                    else:
                        return  # no final event: the caller reports that
                await end_of_stream(events)
                yield with_latency(first, self._clock() - started)
            finally:
                await close_stream(events)
            return


def _final(event: StreamEvent) -> bool:
    return isinstance(event, StreamEnd | StreamError)
