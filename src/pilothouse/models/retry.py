"""Retries with exponential backoff and full jitter that honour Retry-After.

Only errors marked `retryable` are retried, and a stream only before its first event:
once anything was shown to the caller, retrying would repeat it.

A Retry-After longer than `max_retry_after_s` is not waited for: the error is raised
at once so a fallback chain can move to another model instead of stalling.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from pilothouse.errors import ModelError, RateLimitedError
from pilothouse.models.base import Model, close_stream
from pilothouse.types import ModelRequest, ModelResponse, StreamEvent

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 30.0

    def delay(self, attempt: int, error: ModelError, rng: random.Random) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to give up now."""
        if attempt >= self.max_attempts or not error.retryable:
            return None
        retry_after = getattr(error, "retry_after", None)
        if isinstance(error, RateLimitedError) and retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after_s else None
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return rng.uniform(0, ceiling)  # full jitter: spreads out synchronized clients


class RetryingModel(Model):
    def __init__(
        self,
        inner: Model,
        policy: RetryPolicy | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ):
        super().__init__(inner.id, inner.profile)
        self.inner = inner
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def _wait_or_raise(self, attempt: int, error: ModelError) -> None:
        delay = self.policy.delay(attempt, error, self._rng)
        if delay is None:
            raise error
        log.info("%s: %s; retry %d in %.2fs", self.id, type(error).__name__, attempt, delay)
        await self._sleep(delay)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        attempt = 1
        while True:
            try:
                return await self.inner.complete(request)
            except ModelError as error:
                await self._wait_or_raise(attempt, error)
                attempt += 1

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        attempt = 1
        while True:
            events = self.inner.stream(request)
            try:
                first = await anext(events)
            except StopAsyncIteration:
                return
            except ModelError as error:
                await close_stream(events)
                await self._wait_or_raise(attempt, error)
                attempt += 1
                continue
            try:
                yield first
                async for event in events:
                    yield event
            finally:
                await close_stream(events)
            return

    async def aclose(self) -> None:
        await self.inner.aclose()
