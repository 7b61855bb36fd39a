"""A retry of a copilot's model is recorded on that model's span, in the real trace
store: a copilot always streams, and its model span is current while the stream is
read, so the retry layer's `model.retry` event lands there, not on the run's span.
Each try of each model (a hardened model's attempts) is a span of its own under that
model's span, with its status and error."""

from __future__ import annotations

from pathlib import Path

from pilothouse.config import Settings
from pilothouse.copilot.copilot import Copilot
from pilothouse.errors import UnavailableError
from pilothouse.models import ScriptedModel
from pilothouse.models.base import Model
from pilothouse.models.breaker import BreakerBoard
from pilothouse.models.compose import ResiliencePolicy, harden
from pilothouse.models.retry import RetryPolicy
from pilothouse.storage.traces import TraceStore
from pilothouse.tracing import attributes as A


def retried(model: ScriptedModel, attempts: int) -> Model:
    """`model` hardened as a copilot's models are, retrying without waiting."""
    policy = ResiliencePolicy(retry=RetryPolicy(max_attempts=attempts, base_delay_s=0.0))
    return harden(model, policy, BreakerBoard())


async def test_each_retry_is_an_event_of_its_own_model_span(
    copilot_dir: Path, settings: Settings
) -> None:
    down = UnavailableError("connection reset", model="p:a")
    first = retried(ScriptedModel([down, down], model_id="p:a"), attempts=2)
    second = retried(
        ScriptedModel([UnavailableError("503"), "WireGuard [1]."], model_id="p:b"), attempts=2
    )
    copilot = await Copilot.open(copilot_dir, settings=settings, models=[first, second])
    answer = await copilot.ask("Which VPN client?")
    await copilot.aclose()
    assert answer.status == "completed"
    store = TraceStore(settings.database_path)
    try:
        run = store.get_run(answer.run_id)
    finally:
        store.close()
    model_spans = {
        s.name: s for s in run.spans if s.kind == "model" and A.ATTEMPT not in s.attributes
    }
    assert set(model_spans) == {"chat p:a", "chat p:b"}
    for name, model_id in (("chat p:a", "p:a"), ("chat p:b", "p:b")):
        retries = [e for e in model_spans[name].events if e.name == "model.retry"]
        assert [e.attributes["pilothouse.model"] for e in retries] == [model_id]
        assert retries[0].attributes["pilothouse.attempt"] == 1
    others = [e for s in run.spans if s.kind != "model" for e in s.events]
    assert not [e for e in others if e.name == "model.retry"]
    assert model_spans["chat p:a"].attributes["pilothouse.model.status"] == "failed"
    assert model_spans["chat p:b"].attributes["pilothouse.model.status"] == "completed"
    tries = sorted((s for s in run.spans if A.ATTEMPT in s.attributes), key=lambda s: s.start_time)
    assert [(s.name, s.attributes[A.MODEL_STATUS], s.error_type, s.parent_id) for s in tries] == [
        ("attempt p:a #1", "failed", "UnavailableError", model_spans["chat p:a"].span_id),
        ("attempt p:a #2", "failed", "UnavailableError", model_spans["chat p:a"].span_id),
        ("attempt p:b #1", "failed", "UnavailableError", model_spans["chat p:b"].span_id),
        ("attempt p:b #2", "completed", None, model_spans["chat p:b"].span_id),
    ]
    assert all(s.duration_s is not None for s in tries)
    # the run's figures count the model calls, not their attempts as well
    assert run.run.model == "p:b"
