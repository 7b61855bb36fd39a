"""The trace of a gateway request that failed over: one span for the request and one
per attempt (each try of each target, models/attempts.py), each with its status, error
and duration.

Only requests in which an upstream was tried and failed are traced (a retry, a
fallback, a stream that broke, no answer at all): a request answered by its first try
is in the access log and costs nothing more. A target refused by its open breaker is
an attempt span of the requests that are traced, but refusals alone do not make a
request traced: during an outage that would be every request, when the requests that
opened the breaker already were. Nor does a client's bad request (a 400 passed
back). The traces go to the data directory's trace store (and OpenTelemetry when
configured), like a copilot's runs, written from a worker thread: `pilothouse runs`
lists them as `gateway ROUTE`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pilothouse.errors import BadRequestError, CircuitOpenError, ContextTooLongError
from pilothouse.models.attempts import Attempt, record_attempt
from pilothouse.server.gateway.passthrough import UpstreamClientError
from pilothouse.tracing import Tracer, is_cancellation
from pilothouse.tracing import attributes as A


@dataclass
class RequestAttempts:
    """The attempts of one gateway request, told as they end (an attempt observer)."""

    route: str
    stream: bool
    started: float = field(default_factory=time.time)
    attempts: list[Attempt] = field(default_factory=list)

    def __call__(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)

    def worth_a_trace(self, error: BaseException | str | None) -> bool:
        """Whether an upstream was tried and failed (or the answer broke)."""
        if error is not None and not self.attempts:
            return True  # failed before any attempt: no target at all
        for attempt in self.attempts:  # a client that left is not a failure
            if attempt.status == "failed" and not _not_the_upstreams(attempt.error):
                return True
        return False


def _not_the_upstreams(error: BaseException | str | None) -> bool:
    """A failure that says nothing about the upstream's health: its breaker refused
    it, or the request was the client's mistake (a 400 passed back as it is)."""
    if isinstance(error, BadRequestError):
        return not isinstance(error, ContextTooLongError)
    return isinstance(error, CircuitOpenError | UpstreamClientError)


def write_trace(
    tracer: Tracer,
    request: RequestAttempts,
    *,
    answered_by: str | None,
    error: BaseException | str | None,
) -> str:
    """Record `request` as a trace of its own; returns the trace id."""
    root = tracer.start_span(
        f"gateway {request.route}",
        root=True,
        start_time=request.started,
        attributes={
            A.REQUEST_MODEL: request.route,
            A.MODEL_STREAM: request.stream,
            "pilothouse.gateway.attempts": len(request.attempts),
        },
    )
    if answered_by is not None:
        root.set(A.RESPONSE_MODEL, answered_by)
    tries: dict[str, int] = {}
    for attempt in sorted(request.attempts, key=lambda a: a.started):
        tries[attempt.model] = tries.get(attempt.model, 0) + 1
        record_attempt(tracer, attempt, tries[attempt.model], root)
    if error is not None:
        cancelled = isinstance(error, BaseException) and is_cancellation(error)
        root.fail(error, error_type=A.CANCELLED if cancelled else None)
    tracer.end_span(root)
    return root.trace_id
