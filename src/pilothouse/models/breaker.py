"""A circuit breaker per model: stop calling a model that keeps failing.

closed: calls go through; `failure_threshold` consecutive failures open the circuit.
open: calls fail at once with `CircuitOpenError` (so a fallback chain moves on without
waiting for a timeout) until `recovery_s` have passed.
half-open: one probe call goes through; success closes the circuit, failure opens it
again. Other calls during the probe are refused.

Only failures that say the model is unwell count (unavailable, timeouts, rate limits,
malformed answers, authentication); a bad request is the caller's fault and does not.
Breaker state is kept in a `BreakerBoard` shared by everyone who calls the same model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Literal

from pilothouse.errors import (
    AuthenticationError,
    CircuitOpenError,
    MalformedResponseError,
    ModelError,
    ModelTimeoutError,
    RateLimitedError,
    UnavailableError,
)
from pilothouse.models.base import Model, close_stream
from pilothouse.types import ModelRequest, ModelResponse, StreamError, StreamEvent

log = logging.getLogger(__name__)

State = Literal["closed", "open", "half-open"]
_COUNTED = (
    UnavailableError,
    ModelTimeoutError,
    RateLimitedError,
    MalformedResponseError,
    AuthenticationError,
)


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5
    recovery_s: float = 30.0


@dataclass
class CircuitBreaker:
    """The state of one model's circuit."""

    model_id: str
    policy: BreakerPolicy = field(default_factory=BreakerPolicy)
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False

    @property
    def state(self) -> State:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.policy.recovery_s:
            return "half-open"
        return "open"

    def before_call(self) -> None:
        """Raise CircuitOpenError if this call may not go through."""
        state = self.state
        if state == "closed":
            return
        if state == "half-open" and not self.probing:
            self.probing = True
            log.info("circuit for %s half-open: probing", self.model_id)
            return
        assert self.opened_at is not None
        remaining = max(self.policy.recovery_s - (self.clock() - self.opened_at), 0.0)
        raise CircuitOpenError(
            f"circuit open after {self.failures} consecutive failures; "
            f"next probe in {remaining:.1f}s",
            model=self.model_id,
            retry_after=remaining,
        )

    def record_success(self) -> None:
        if self.opened_at is not None:
            log.info("circuit for %s closed", self.model_id)
        self.failures = 0
        self.opened_at = None
        self.probing = False

    def record_failure(self, error: Exception) -> None:
        if not isinstance(error, _COUNTED) or isinstance(error, CircuitOpenError):
            self.probing = False
            return
        self.failures += 1
        if self.probing or self.failures >= self.policy.failure_threshold:
            if self.opened_at is None or self.probing:
                log.warning("circuit for %s opened (%s)", self.model_id, error)
            self.opened_at = self.clock()
        self.probing = False


class BreakerBoard:
    """One breaker per model id, for everything that calls that model."""

    def __init__(
        self, policy: BreakerPolicy | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self.policy = policy or BreakerPolicy()
        self.clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, model_id: str) -> CircuitBreaker:
        breaker = self._breakers.get(model_id)
        if breaker is None:
            breaker = CircuitBreaker(model_id, self.policy, self.clock)
            self._breakers[model_id] = breaker
        return breaker

    def states(self) -> dict[str, State]:
        return {model_id: b.state for model_id, b in self._breakers.items()}


class CircuitBreakerModel(Model):
    def __init__(self, inner: Model, breaker: CircuitBreaker):
        super().__init__(inner.id, inner.profile)
        self.inner = inner
        self.breaker = breaker

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.breaker.before_call()
        try:
            response = await self.inner.complete(request)
        except ModelError as error:
            self.breaker.record_failure(error)
            raise
        except BaseException:
            self.breaker.probing = False  # cancelled: neither success nor failure
            raise
        self.breaker.record_success()
        return response

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        self.breaker.before_call()
        events = self.inner.stream(request)
        outcome: Exception | None = None
        finished = False
        try:
            async for event in events:
                if isinstance(event, StreamError):
                    outcome = event.error
                yield event
            finished = True
        except ModelError as error:
            outcome = error
            raise
        finally:
            await close_stream(events)
            if outcome is not None:
                self.breaker.record_failure(outcome)
            elif finished:
                self.breaker.record_success()
            else:  # the caller stopped reading: no verdict on the model
                self.breaker.probing = False

    async def aclose(self) -> None:
        await self.inner.aclose()
