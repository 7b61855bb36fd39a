"""Build the model a caller uses from model ids and a resilience policy.

Each id becomes `CircuitBreaker(Retrying(Timeout(adapter)))`; several ids become a
fallback chain over those. The caller sees one `Model`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pilothouse.config import Settings
from pilothouse.models.base import Model
from pilothouse.models.breaker import BreakerBoard, CircuitBreakerModel
from pilothouse.models.fallback import Acceptor, FallbackModel, reject_empty
from pilothouse.models.registry import create_model
from pilothouse.models.retry import RetryingModel, RetryPolicy
from pilothouse.models.timeout import TimeoutModel, TimeoutPolicy


@dataclass(frozen=True)
class ResiliencePolicy:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: TimeoutPolicy = field(default_factory=TimeoutPolicy)
    accept: Acceptor | None = reject_empty


def harden(model: Model, policy: ResiliencePolicy, board: BreakerBoard | None) -> Model:
    """Wrap one model in timeouts, retries and (with a board) its circuit breaker."""
    wrapped: Model = model
    if policy.timeout != TimeoutPolicy():
        wrapped = TimeoutModel(wrapped, policy.timeout)
    if policy.retry.max_attempts > 1:
        wrapped = RetryingModel(wrapped, policy.retry)
    if board is not None:
        wrapped = CircuitBreakerModel(wrapped, board.get(model.id))
    return wrapped


def build_model(
    model_ids: str | Sequence[str],
    settings: Settings,
    *,
    policy: ResiliencePolicy | None = None,
    board: BreakerBoard | None = None,
) -> Model:
    """One hardened model, or a fallback chain when several ids are given."""
    ids = [model_ids] if isinstance(model_ids, str) else list(model_ids)
    if not ids:
        ids = [settings.default_model]
    chosen = policy or ResiliencePolicy()
    models = [harden(create_model(model_id, settings), chosen, board) for model_id in ids]
    if len(models) == 1:
        return models[0]
    return FallbackModel(models, accept=chosen.accept)
