"""A retry of a copilot's model is recorded on that model's span, in the real trace
store: a copilot always streams, and its model span is current while the stream is
read, so the retry layer's `model.retry` event lands there, not on the run's span."""

from __future__ import annotations

from pathlib import Path

from pilothouse.config import Settings
from pilothouse.copilot.copilot import Copilot
from pilothouse.errors import UnavailableError
from pilothouse.models import ScriptedModel
from pilothouse.models.retry import RetryingModel, RetryPolicy
from pilothouse.storage.traces import TraceStore


async def _no_wait(_: float) -> None:
    return None


def retried(model: ScriptedModel, attempts: int) -> RetryingModel:
    return RetryingModel(model, RetryPolicy(max_attempts=attempts), sleep=_no_wait)


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
    model_spans = {s.name: s for s in run.spans if s.kind == "model"}
    assert set(model_spans) == {"chat p:a", "chat p:b"}
    for name, model_id in (("chat p:a", "p:a"), ("chat p:b", "p:b")):
        retries = [e for e in model_spans[name].events if e.name == "model.retry"]
        assert [e.attributes["pilothouse.model"] for e in retries] == [model_id]
        assert retries[0].attributes["pilothouse.attempt"] == 1
    others = [e for s in run.spans if s.kind != "model" for e in s.events]
    assert not [e for e in others if e.name == "model.retry"]
    assert model_spans["chat p:a"].attributes["pilothouse.model.status"] == "failed"
    assert model_spans["chat p:b"].attributes["pilothouse.model.status"] == "completed"
