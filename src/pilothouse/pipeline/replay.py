"""Re-answer one stored run on another model: the same question and conversation
before it, through the copilot's real runtime (approval-gated calls denied), so the
two answers can be read side by side."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pilothouse.config import Settings
from pilothouse.copilot.conversations import ConversationStore
from pilothouse.copilot.copilot import Copilot
from pilothouse.errors import ConfigError
from pilothouse.models.base import Model
from pilothouse.pipeline.capture import conversation_before
from pilothouse.pipeline.execute import CaseOutcome, run_case
from pilothouse.pipeline.suite import Case, Turn
from pilothouse.storage.runs import RunSummary
from pilothouse.storage.traces import TraceStore


@dataclass(frozen=True, slots=True)
class Replay:
    original: RunSummary
    conversation: tuple[Turn, ...]
    model: str
    outcome: CaseOutcome


async def replay(
    settings: Settings,
    run_id: str,
    model: str,
    folder: Path | None = None,
    *,
    models: list[Model] | None = None,
) -> Replay:
    """The stored run `run_id` answered again by `model`. The copilot folder is
    `folder`, or the managed copilot of the run's name in the data directory."""
    with TraceStore.for_settings(settings) as traces:
        original = traces.get_run(run_id).run
    if not original.question or not original.copilot:
        raise ConfigError(f"run {original.run_id} is not a copilot run with a question")
    if folder is None:
        folder = settings.home / "copilots" / original.copilot
        if not (folder / "copilot.yaml").is_file():
            raise ConfigError(
                f"run {original.run_id} is of copilot {original.copilot!r}: give its folder "
                "with --copilot PATH"
            )
    with ConversationStore.for_settings(settings) as conversations:
        turns = await conversation_before(conversations, original.conversation_id, original.run_id)
    case = Case(
        id="replay",
        question=original.question,
        reference=original.answer or None,
        conversation=[Turn.model_validate(t) for t in turns],
    )
    copilot = await Copilot.open(folder, settings=settings, model=model, models=models)
    try:
        if copilot.name != original.copilot:
            raise ConfigError(
                f"{folder} is copilot {copilot.name!r}, but run {original.run_id} is of "
                f"{original.copilot!r}"
            )
        outcome = await run_case(copilot, case, approve=False)
    finally:
        await copilot.aclose()
    return Replay(original, tuple(case.conversation), model, outcome)
