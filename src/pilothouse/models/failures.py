"""What the failures of every model of a chain say together, so the final error is
honest about the cause: all rate limited, all timed out, or failed otherwise. A
breaker's refusal counts as the failure that opened the breaker, so the answer does
not change when the breakers open."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pilothouse.errors import (
    AllModelsFailedError,
    CircuitOpenError,
    ModelError,
    ModelTimeoutError,
    RateLimitedError,
)

Cause = Literal["rate_limited", "timeout", "failed"]


@dataclass(frozen=True, slots=True)
class Summary:
    cause: Cause
    retry_after: float | None = None
    """All rate limited: the shortest wait any model asked for (or its breaker's next
    probe), None when none said."""


def underlying(error: ModelError) -> ModelError:
    """The failure behind a circuit breaker's refusal (the one that opened it), else
    `error` itself."""
    while isinstance(error, CircuitOpenError) and error.cause is not None:
        error = error.cause
    return error


def flatten(errors: Iterable[ModelError]) -> list[ModelError]:
    """Each model's own failure, with nested chains' failures listed in their place."""
    flat: list[ModelError] = []
    for error in errors:
        if isinstance(error, AllModelsFailedError):
            flat.extend(flatten(error.errors))
        else:
            flat.append(error)
    return flat


def summarize(errors: Iterable[ModelError]) -> Summary:
    flat = flatten(errors)
    causes = [underlying(e) for e in flat]
    if causes and all(isinstance(c, RateLimitedError) for c in causes):
        waits = [w for w in (_wait(e) for e in flat) if w is not None]
        return Summary("rate_limited", min(waits) if waits else None)
    if causes and all(isinstance(c, ModelTimeoutError) for c in causes):
        return Summary("timeout")
    return Summary("failed")


def _wait(error: ModelError) -> float | None:
    """When calling this model again may help: its breaker's next probe, or the
    upstream's own Retry-After."""
    if isinstance(error, CircuitOpenError):
        return error.retry_after
    return error.retry_after if isinstance(error, RateLimitedError) else None
