"""A circuit breaker per model: stop calling a model that keeps failing.

closed: calls go through; `failure_threshold` consecutive failures open the circuit.
open: calls fail at once with `CircuitOpenError` (so a fallback chain moves on without
waiting for a timeout) until `recovery_s` have passed.
half-open: one probe call goes through; success closes the circuit, failure opens it
again. Other calls during the probe are refused.

Every call takes a `Permit` and gives it back exactly once, with a verdict (success,
failure) or without one (the caller left, the call was cancelled, the request was
the caller's fault): a probe can never be left taken, so a recovered model is always
probed again.

Only failures that say the model is unwell count (unavailable, timeouts, rate limits,
malformed or empty answers, authentication); a bad request is the caller's fault and
does not. Breaker state is kept in a `BreakerBoard` shared by everyone who calls the
same model in a process, bounded for ids that clients choose (the gateway's raw
`provider:model` ids): the least recently used healthy breakers are forgotten first.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Literal

from pilothouse.errors import (
    AuthenticationError,
    CircuitOpenError,
    EmptyAnswerError,
    MalformedResponseError,
    ModelError,
    ModelTimeoutError,
    RateLimitedError,
    UnavailableError,
)
from pilothouse.models.base import Model, WrapperModel, close_stream, end_of_stream
from pilothouse.types import ModelRequest, ModelResponse, StreamEnd, StreamError, StreamEvent

log = logging.getLogger(__name__)

State = Literal["closed", "open", "half-open"]
_COUNTED = (
    UnavailableError,
    ModelTimeoutError,
    RateLimitedError,
    MalformedResponseError,
    EmptyAnswerError,
    AuthenticationError,
)


def counts(error: BaseException) -> bool:
    """Whether `error` says the model is unwell (and counts against its breaker)."""
    return isinstance(error, _COUNTED) and not isinstance(error, CircuitOpenError)


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
    last_error: ModelError | None = None
    """The latest counted failure: what the model suffers from while the circuit is open."""

    @property
    def state(self) -> State:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.policy.recovery_s:
            return "half-open"
        return "open"

    def refuses(self) -> bool:
        """Whether a call now would be refused (open, or half-open with the probe out)."""
        state = self.state
        return state == "open" or (state == "half-open" and self.probing)

    def acquire(self) -> Permit:
        """A permit for one call, or `CircuitOpenError` when the call may not go through."""
        state = self.state
        if state == "closed":
            return Permit(self, probe=False)
        if state == "half-open" and not self.probing:
            self.probing = True
            log.info("circuit for %s half-open: probing", self.model_id)
            return Permit(self, probe=True)
        assert self.opened_at is not None
        remaining = max(self.policy.recovery_s - (self.clock() - self.opened_at), 0.0)
        why = f" (last: {self.last_error.detail})" if self.last_error is not None else ""
        raise CircuitOpenError(
            f"circuit open after {self.failures} consecutive failures{why}; "
            f"next probe in {remaining:.1f}s",
            model=self.model_id,
            retry_after=remaining,
            cause=self.last_error,
        )

    def _success(self) -> None:
        if self.opened_at is not None:
            log.info("circuit for %s closed", self.model_id)
        self.failures = 0
        self.opened_at = None
        self.probing = False
        self.last_error = None

    def _failure(self, error: BaseException, probe: bool) -> None:
        probe = probe and self.probing  # a success elsewhere may have closed it meanwhile
        if not counts(error):
            if probe:
                self.probing = False  # no verdict: the next call probes again
            return
        assert isinstance(error, ModelError)
        self.failures += 1
        self.last_error = error
        if probe or self.failures >= self.policy.failure_threshold:
            if self.opened_at is None or probe:
                log.warning("circuit for %s opened (%s)", self.model_id, error)
            self.opened_at = self.clock()
        if probe:
            self.probing = False

    def _release(self, probe: bool) -> None:
        if probe and self.probing:
            self.probing = False


class Permit:
    """One call's passage through a breaker. Give it back once: `success`, `failure`
    or `release` (no verdict); whichever comes first counts, the rest do nothing, so
    `release` in a `finally` is always safe."""

    __slots__ = ("breaker", "done", "probe")

    def __init__(self, breaker: CircuitBreaker, *, probe: bool) -> None:
        self.breaker = breaker
        self.probe = probe
        self.done = False

    def success(self) -> None:
        if not self.done:
            self.done = True
            self.breaker._success()

    def failure(self, error: BaseException) -> None:
        if not self.done:
            self.done = True
            self.breaker._failure(error, self.probe)

    def release(self) -> None:
        if not self.done:
            self.done = True
            self.breaker._release(self.probe)


class BreakerBoard:
    """One breaker per model id, for everything in a process that calls that model.

    At most `max_breakers` are kept: past that, the least recently used breaker that
    is closed and has no failures is forgotten (it holds nothing worth keeping), or
    failing that the least recently used one."""

    def __init__(
        self,
        policy: BreakerPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_breakers: int = 4096,
    ):
        self.policy = policy or BreakerPolicy()
        self.clock = clock
        self.max_breakers = max_breakers
        self._breakers: OrderedDict[str, CircuitBreaker] = OrderedDict()

    def get(self, model_id: str) -> CircuitBreaker:
        breaker = self._breakers.get(model_id)
        if breaker is not None:
            self._breakers.move_to_end(model_id)
            return breaker
        breaker = CircuitBreaker(model_id, self.policy, self.clock)
        self._breakers[model_id] = breaker
        if len(self._breakers) > self.max_breakers:
            self._evict()
        return breaker

    def _evict(self) -> None:
        for model_id, breaker in self._breakers.items():
            if breaker.opened_at is None and breaker.failures == 0 and not breaker.probing:
                del self._breakers[model_id]
                return
        self._breakers.popitem(last=False)

    def states(self) -> dict[str, State]:
        return {model_id: b.state for model_id, b in self._breakers.items()}

    def clear(self) -> None:
        self._breakers.clear()


_PROCESS_BOARD = BreakerBoard()


def process_board() -> BreakerBoard:
    """The breakers of this process: what `build_model` and `Copilot.open` use unless
    given a board, so every call to one model in a process (every `ask`, every
    copilot) shares its breaker."""
    return _PROCESS_BOARD


class CircuitBreakerModel(WrapperModel):
    def __init__(self, inner: Model, breaker: CircuitBreaker):
        super().__init__(inner)
        self.breaker = breaker

    def available(self) -> bool:
        return not self.breaker.refuses() and self.inner.available()

    async def complete(self, request: ModelRequest) -> ModelResponse:
        permit = self.breaker.acquire()
        try:
            response = await self.inner.complete(request)
        except Exception as error:
            permit.failure(error)
            raise
        except BaseException:  # cancelled: no verdict on the model
            permit.release()
            raise
        permit.success()
        return response

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        permit = self.breaker.acquire()
        events = self.inner.stream(request)
        try:
            async for event in events:
                if isinstance(event, StreamEnd | StreamError):
                    await end_of_stream(events)
                    if isinstance(event, StreamError):
                        permit.failure(event.error)
                    else:
                        permit.success()
                yield event
        except Exception as error:
            permit.failure(error)
            raise
        finally:
            permit.release()  # the caller stopped reading, or cancelled: no verdict
            await close_stream(events)
