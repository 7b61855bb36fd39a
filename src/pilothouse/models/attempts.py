"""Attempts: each try of one model, told to whoever watches, so that a trace can show
every attempt (each retry, each fallback model) as a span of its own.

The model layer holds no tracer, so it does not open spans itself: it reports. An
`AttemptModel` (every model `compose.harden` builds has one, inside its retries, so a
call that is retried reports one attempt per try, and one refused by an open breaker
reports a failed attempt too) tells each attempt, when it ends, to the observer of
the context in which the call started, if there is one. Observers:

- `traced_attempts(tracer)` records each attempt as a span under the span that is
  current when it ends (the copilot's model call; a caller's own span on the Python
  API);
- the gateway collects them and writes the request's trace (server/gateway/traces.py);
  its pass-through targets report their tries through `report` in the same form.

An attempt's status is `pilothouse.model.status`'s vocabulary: completed, failed or
cancelled (the caller stopped reading before the end; not the model's fault).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from pilothouse.models.base import WrapperModel, close_stream, end_of_stream
from pilothouse.tracing import Span, Tracer, is_cancellation
from pilothouse.tracing import attributes as A
from pilothouse.types import ModelRequest, ModelResponse, StreamEnd, StreamError, StreamEvent


@dataclass(slots=True)  # not frozen: made on the gateway's hot path, frozen costs 3x
class Attempt:
    """One try of one model, ended."""

    model: str
    started: float
    """Wall-clock epoch seconds."""
    duration_s: float
    status: str
    """completed, failed or cancelled."""
    error: BaseException | str | None = None
    answered_by: str | None = None
    """The model id the answer names (completed attempts)."""


Observer = Callable[[Attempt], None]

_observer: ContextVar[Observer | None] = ContextVar("pilothouse_attempt_observer", default=None)


def current_observer() -> Observer | None:
    """Who is told of attempts in this context (None: nobody)."""
    return _observer.get()


class observing:  # a context manager, used like a function
    """Tell every attempt that starts inside the block to `observer` (a class, not
    `contextlib.contextmanager`: it is on the gateway's hot path)."""

    __slots__ = ("_chosen", "_token")

    def __init__(self, observer: Observer) -> None:
        self._chosen = observer

    def __enter__(self) -> None:
        self._token = _observer.set(self._chosen)

    def __exit__(self, *_: object) -> None:
        _observer.reset(self._token)


def report(attempt: Attempt, observer: Observer | None = None) -> None:
    """Tell `attempt` to `observer`, or to the context's observer."""
    chosen = observer or _observer.get()
    if chosen is not None:
        chosen(attempt)


class Timer:
    """When an attempt started: wall clock for the record, monotonic for its length."""

    __slots__ = ("monotonic", "wall")

    def __init__(self) -> None:
        self.wall = time.time()
        self.monotonic = time.perf_counter()

    def ended(
        self,
        model: str,
        status: str,
        error: BaseException | str | None = None,
        answered_by: str | None = None,
    ) -> Attempt:
        duration = time.perf_counter() - self.monotonic
        return Attempt(model, self.wall, duration, status, error, answered_by)


def outcome(error: BaseException) -> str:
    return A.CANCELLED if is_cancellation(error) else "failed"


class AttemptModel(WrapperModel):
    """`inner`, each call of which is one attempt, reported when it ends (see the
    module docstring)."""

    async def complete(self, request: ModelRequest) -> ModelResponse:
        observer = _observer.get()
        if observer is None:
            return await self.inner.complete(request)
        timer = Timer()
        try:
            response = await self.inner.complete(request)
        except BaseException as error:
            observer(timer.ended(self.id, outcome(error), error))
            raise
        observer(timer.ended(self.id, "completed", answered_by=response.model))
        return response

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        observer = _observer.get()  # the context the call starts in: it may be read later
        if observer is None:
            return self.inner.stream(request)
        return self._observed(request, observer)

    async def _observed(
        self, request: ModelRequest, observer: Observer
    ) -> AsyncIterator[StreamEvent]:
        events = self.inner.stream(request)
        timer = Timer()
        ended: Attempt | None = None
        try:
            async for event in events:
                if isinstance(event, StreamEnd):
                    ended = timer.ended(self.id, "completed", answered_by=event.response.model)
                elif isinstance(event, StreamError):
                    ended = timer.ended(self.id, "failed", event.error)
                else:
                    yield event
                    continue
                observer(ended)
                await end_of_stream(events)  # the wrappers inside record their outcome
                yield event
        except BaseException as error:
            if ended is None:
                ended = timer.ended(self.id, outcome(error), error)
                observer(ended)
            raise
        finally:
            await close_stream(events)
            if ended is None:
                observer(timer.ended(self.id, "failed", "the stream ended without a final event"))


# --- attempts as spans -----------------------------------------------------------------


class AttemptSpans:
    """An observer that records each attempt as a span of `tracer`, under `parent` or
    the span current when the attempt ends, numbered per model (1 for the first try)."""

    def __init__(self, tracer: Tracer, parent: Span | None = None) -> None:
        self.tracer = tracer
        self.parent = parent
        self.tries: dict[str, int] = {}

    def __call__(self, attempt: Attempt) -> None:
        number = self.tries.get(attempt.model, 0) + 1
        self.tries[attempt.model] = number
        record_attempt(self.tracer, attempt, number, self.parent)


def record_attempt(
    tracer: Tracer, attempt: Attempt, number: int, parent: Span | None = None
) -> Span:
    """`attempt` as an ended span (kind model, named `attempt MODEL #N`)."""
    attributes: dict[str, object] = {
        A.REQUEST_MODEL: attempt.model,
        A.ATTEMPT: number,
        A.MODEL_STATUS: attempt.status,
    }
    if attempt.answered_by:
        attributes[A.RESPONSE_MODEL] = attempt.answered_by
    return tracer.record_span(
        f"attempt {attempt.model} #{number}",
        kind="model",
        start_time=attempt.started,
        duration_s=attempt.duration_s,
        attributes=attributes,
        error=attempt.error,
        error_type=A.CANCELLED if attempt.status == A.CANCELLED else None,
        parent=parent,
    )


@contextmanager
def traced_attempts(tracer: Tracer, parent: Span | None = None) -> Iterator[AttemptSpans]:
    """Record every attempt that starts inside the block as a span of `tracer` (see
    `AttemptSpans`)."""
    spans = AttemptSpans(tracer, parent)
    with observing(spans):
        yield spans
