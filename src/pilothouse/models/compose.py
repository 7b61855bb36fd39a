"""Build the model a caller uses from model ids and a resilience policy.

Each id becomes `Retrying(Attempt(CircuitBreaker(Timeout(UsableAnswer(adapter)))))`:
every attempt passes the breaker (a failed half-open probe costs one attempt, not the
whole retry budget), is judged by the one rule of a usable answer (models/usable.py)
and is reported to the context's observer, a trace (models/attempts.py);
several ids become a fallback chain over those, where every model but the last moves
on at once on a rate limit or a timeout instead of waiting. The caller sees one
`Model`. Without a board, breakers live in the process-wide board, so every call to a
model in a process shares its breaker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pilothouse.config import Settings
from pilothouse.models.attempts import AttemptModel
from pilothouse.models.base import Model
from pilothouse.models.breaker import BreakerBoard, CircuitBreakerModel, process_board
from pilothouse.models.fallback import Acceptor, FallbackModel
from pilothouse.models.registry import create_model
from pilothouse.models.retry import RetryingModel, RetryPolicy
from pilothouse.models.timeout import NO_LIMITS, TimeoutModel, TimeoutPolicy
from pilothouse.models.usable import UsableAnswerModel, unusable


@dataclass(frozen=True)
class ResiliencePolicy:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: TimeoutPolicy = field(default_factory=TimeoutPolicy)
    accept: Acceptor | None = unusable
    continue_streams: bool = False
    """A stream that breaks after text was sent carries on with a model of the chain
    that can continue an assistant message (see FallbackModel)."""


def harden(
    model: Model,
    policy: ResiliencePolicy,
    board: BreakerBoard | None,
    *,
    before_fallback: bool = False,
) -> Model:
    """Wrap one model in the usable-answer rule, timeouts, (with a board) its circuit
    breaker, the report of each attempt, and retries. `before_fallback`: another
    model comes after this one. A model that `runs_here` (the embedded one) gets no
    time limits: they guard against a remote host that hangs, and would only cut its
    answers on a busy machine."""
    _set_connection_limits(model, policy.timeout)
    wrapped: Model = UsableAnswerModel(model)
    if policy.timeout != NO_LIMITS and not model.runs_here():
        wrapped = TimeoutModel(wrapped, policy.timeout)
    if board is not None:
        wrapped = CircuitBreakerModel(wrapped, board.get(model.id))
    wrapped = AttemptModel(wrapped)
    retry = policy.retry
    if retry.deadline_s is None and policy.timeout.total_s is not None and not model.runs_here():
        retry = replace(retry, deadline_s=policy.timeout.total_s)
    if before_fallback:
        retry = replace(retry, before_fallback=True)
    if retry.max_attempts > 1:
        wrapped = RetryingModel(wrapped, retry)
    return wrapped


def harden_chain(
    models: Sequence[Model], policy: ResiliencePolicy, board: BreakerBoard | None
) -> list[Model]:
    """`harden` each model of a chain, knowing which ones have a fallback after them."""
    last = len(models) - 1
    return [harden(m, policy, board, before_fallback=i < last) for i, m in enumerate(models)]


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
    adapters = [create_model(model_id, settings) for model_id in ids]
    models = harden_chain(adapters, chosen, board or process_board())
    if len(models) == 1:
        return models[0]
    return FallbackModel(models, accept=chosen.accept, continue_streams=chosen.continue_streams)


def _set_connection_limits(model: Model, timeout: TimeoutPolicy) -> None:
    """An HTTP adapter's own limits: connecting, and a whole JSON answer."""
    from pilothouse.models.http import HTTPProtocolModel  # not every model speaks HTTP

    adapter: object = model
    while not isinstance(adapter, HTTPProtocolModel) and hasattr(adapter, "inner"):
        adapter = adapter.inner  # an adapter inside tool emulation
    if isinstance(adapter, HTTPProtocolModel):
        if timeout.connect_s is not None:
            adapter.connect_s = timeout.connect_s
        if timeout.total_s is not None:
            adapter.answer_s = timeout.total_s
