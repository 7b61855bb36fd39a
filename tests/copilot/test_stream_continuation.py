"""A copilot with `model.continue_streams` (copilot.yaml): a broken answer is carried
on by a fallback that can continue it, and the run's trace and its events say so."""

from __future__ import annotations

from pathlib import Path

from pilothouse.config import Settings
from pilothouse.copilot.copilot import Copilot
from pilothouse.copilot.events import Continued, RunEvent, RunFinished
from pilothouse.errors import UnavailableError
from pilothouse.models import ScriptedModel
from pilothouse.models.testing import BreakAfter
from pilothouse.storage.traces import TraceStore
from pilothouse.types import TextDelta


def broken(text: str) -> ScriptedModel:
    return ScriptedModel([BreakAfter(text, UnavailableError("connection reset"))], model_id="p:a")


def continuing(copilot_dir: Path) -> None:
    yaml_path = copilot_dir / "copilot.yaml"
    yaml_path.write_text(
        yaml_path.read_text().replace(
            "  primary: local:qwen2.5-coder-0.5b\n",
            "  primary: local:qwen2.5-coder-0.5b\n  continue_streams: true\n",
        )
    )


async def run_breaking(copilot_dir: Path, settings: Settings) -> list[RunEvent]:
    """The events of a run whose first model breaks after "The VPN", before a model
    that can continue it."""
    can = ScriptedModel([" client is WireGuard [1]."], model_id="p:c", continues=True)
    copilot = await Copilot.open(copilot_dir, settings=settings, models=[broken("The VPN"), can])
    try:
        return [event async for event in copilot.stream("Which VPN client?")]
    finally:
        await copilot.aclose()


async def test_a_copilot_marks_the_continuation_in_its_trace(
    copilot_dir: Path, settings: Settings
) -> None:
    continuing(copilot_dir)
    last = (await run_breaking(copilot_dir, settings))[-1]
    assert isinstance(last, RunFinished)
    answer = last.answer
    assert answer.status == "completed"
    assert answer.text.startswith("The VPN client is WireGuard")
    store = TraceStore(settings.database_path)
    try:
        run = store.get_run(answer.run_id)
    finally:
        store.close()
    events = [event for span in run.spans for event in span.events]
    assert any(e.name == "model.continued" for e in events)


async def test_the_run_events_mark_where_another_model_carries_on(
    copilot_dir: Path, settings: Settings
) -> None:
    continuing(copilot_dir)
    seen = await run_breaking(copilot_dir, settings)
    kinds = [e.kind for e in seen if isinstance(e, TextDelta | Continued)]
    marker = kinds.index("continued")
    [continued] = [e for e in seen if isinstance(e, Continued)]
    assert continued.model == "p:c" and "connection reset" in continued.error
    text = [e.text for e in seen if isinstance(e, TextDelta)]
    # Before the mark, only the broken model's text; after it, the continuation, led by
    # what the answer filter still held (the last, unfinished word waits).
    assert "The VPN".startswith("".join(text[:marker]))
    assert "".join(text) == "The VPN client is WireGuard [1]."
    assert isinstance(seen[-1], RunFinished) and seen[-1].answer.status == "completed"


async def test_without_continuation_no_event_marks_a_carry_on(
    copilot_dir: Path, settings: Settings
) -> None:
    seen = await run_breaking(copilot_dir, settings)
    assert not [e for e in seen if isinstance(e, Continued)]
    assert seen[-1].kind == "run_failed"
