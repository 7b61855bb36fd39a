"""Reading ahead while the user reads (copilot/passages_ahead.py): after a turn answered
from cut passages on a model that runs here, the conversation as sent keeps the rest of
those passages after the answer, the next prompt holds it, the new turn does not send
it again, and the runtime reads it into the cache before the question comes (the same
messages, one token); remote models, and profiles without `read_ahead`, read nothing
ahead and their prompts are unchanged."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.copilot.events import Citation
from pilothouse.copilot.grounding import Retrieval, context_block
from pilothouse.copilot.passages_ahead import HEADING, Reading
from pilothouse.copilot.sent_passages import unseen
from pilothouse.models import FunctionModel
from pilothouse.storage.traces import TraceStore
from pilothouse.tracing import attributes as A
from pilothouse.types import Message, ModelRequest
from tests.copilot.test_follow_up_prompts import wire
from tests.copilot.test_stepped_turns import shop, small_model

__all__ = ["shop"]

PRINTING = (
    "# Printing\n\n## Printers by floor\n\n"
    "Each floor but the fifth has a printer. Colour prints are free for staff.\n\n"
    "| Floor | Printer | Room |\n| --- | --- | --- |\n"
    "| 2 | HH-2-PRN01 | 2.01 |\n| 4 | HH-4-PRN01 | 4.12 |\n"
    "| 5 | none | use floor 4 |\n| 6 | HH-6-PRN01 | 6.02, badge access |\n\n"
    "Scans are sent to your mailbox. The IT Bar changes toner.\n"
)
REPLY = '{"sources": [1], "answer": "HH-4-PRN01, in room 4.12."}'


class Here(FunctionModel):
    """A test double that computes in this process, as the embedded model does; a
    one-token read ahead gets a space."""

    def runs_here(self) -> bool:
        return True


def scripted(here: bool, read_ahead: int | None = 80) -> FunctionModel:
    inner = small_model("answer", answer=REPLY)

    def reply(request: ModelRequest) -> object:
        if request.max_output_tokens == 1:
            return " "
        return inner.function(request)

    kind = Here if here else FunctionModel
    model = kind(
        reply, inner.id, profile=replace(inner.profile, passage_budget=40, read_ahead=read_ahead)
    )  # type: ignore[arg-type]
    return model


async def two_turns(folder: Path, settings: Settings, model: FunctionModel) -> list[str]:
    (folder / "knowledge/printing.md").write_text(PRINTING)
    copilot = await Copilot.open(folder, settings=settings, models=[model])
    try:
        one = await copilot.ask("Where is printer HH-4-PRN01?")
        two = await copilot.ask("And is there one on floor 6?", conversation_id=one.conversation_id)
        shown = await copilot.conversations.messages(one.conversation_id)
    finally:
        await copilot.aclose()
    assert [m.text for m in shown][::2] == [
        "Where is printer HH-4-PRN01?",
        "And is there one on floor 6?",
    ]  # people see the conversation as before
    return [one.run_id, two.run_id]


async def test_the_next_prompt_holds_the_rest_of_the_passages_read_ahead(
    shop: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Reading, "DELAY", 0.0)  # the follow-up comes after the read
    model = scripted(here=True)
    runs = await two_turns(shop, settings, model)
    ahead = [i for i, r in enumerate(model.requests) if r.max_output_tokens == 1]
    # The stable prefix is not read here (no read_ahead() call); one read after the turn.
    assert len(ahead) == 1
    read = model.requests[ahead[0]]
    follow = model.requests[ahead[0] + 1]
    # What was read ahead is the next prompt's start, byte for byte.
    assert wire(follow.messages[: len(read.messages)]) == wire(read.messages)
    assert len(follow.messages) == len(read.messages) + 1
    rest = read.messages[-1]
    assert rest.role == "user" and rest.text.startswith(HEADING + "\n\n[1] (")
    assert read.messages[-2].role == "assistant" and read.messages[-2].text == REPLY
    first_turn = read.messages[-3].text
    # The rest: the units of the passage the first turn did not send, under its number.
    assert "| 4 | HH-4-PRN01 | 4.12 |" in first_turn
    assert "| 6 | HH-6-PRN01 | 6.02, badge access |" in rest.text
    for line in rest.text.split("\n"):
        if line.startswith("| ") and "Floor" not in line:
            assert line not in first_turn
    # The follow-up's own turn does not send it again: the passage is given above.
    turn = follow.messages[-1].text
    assert "HH-6-PRN01" not in turn
    assert "[1] (knowledge/printing.md, Printing > Printers by floor), given above." in turn
    # Traced: a read_ahead span in the first run's trace, with its tokens.
    store = TraceStore(settings.database_path)
    spans = [s for s in store.get_run(runs[0]).spans if s.name == "read_ahead"]
    store.close()
    assert len(spans) == 1 and spans[0].status == "ok"
    assert spans[0].attributes[A.CONVERSATION_ID]


@pytest.mark.parametrize(
    ("here", "read_ahead"), [(False, 80), (True, None)], ids=["remote", "profile-without"]
)
async def test_a_remote_model_or_a_profile_without_read_ahead_is_sent_no_rest(
    shop: Path, settings: Settings, here: bool, read_ahead: int | None
) -> None:
    model = scripted(here=here, read_ahead=read_ahead)
    await two_turns(shop, settings, model)
    assert not [r for r in model.requests if r.max_output_tokens == 1]
    assert not [m for r in model.requests for m in r.messages if m.text.startswith(HEADING)]


async def test_a_question_waits_for_its_conversations_read_ahead_and_cancels_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = asyncio.Event()
    began: list[str] = []
    done: list[str] = []

    async def work(name: str) -> None:
        began.append(name)
        await release.wait()
        done.append(name)

    # Asked at once (within the delay): the read ahead is cancelled before it begins.
    reading = Reading()
    reading.start("a", work("a"))
    await reading.settle("a")
    assert began == [] and done == []
    # Asked while it reads: the question waits for its own conversation's read.
    monkeypatch.setattr(Reading, "DELAY", 0.0)
    reading.start("a", work("a"))
    reading.start("b", work("b"))
    for _ in range(3):
        await asyncio.sleep(0)
    assert began == ["a", "b"]
    waiting = asyncio.create_task(reading.settle("a"))
    await asyncio.sleep(0)
    assert not waiting.done()  # "a" reads the start of this question's own prompt
    release.set()
    await waiting
    assert done == ["a"]  # "b" was cancelled when a question came in "a"
    reading.start("c", work("c"))
    await reading.aclose()  # closing cancels what still runs
    assert "c" not in done


def test_passages_given_above_at_one_place_are_named_once_where_read_ahead() -> None:
    # The suite's printer table is three passages at one heading: named each with its
    # place, the "given above" line cost a follow-up ~60 tokens once the rest of the
    # passages was read ahead (more of them are then above whole).
    def cite(number: int, heading: str, whole: str) -> Citation:
        return Citation(number, "kb.md", "KB", None, ("KB", heading), "", number, 0.5, text=whole)

    rows = ["| 1 | A |", "| 2 | B |", "| 3 | C |"]
    found = [cite(i + 1, "Printers", row) for i, row in enumerate(rows)]
    found.append(cite(4, "Hours", "Open 9 to 5."))
    history = [
        Message.user(
            "Passages from the knowledge base:\n\n"
            + context_block(found, [c.text for c in found])
            + "\n\nQuestion: Where?"
        )
    ]
    retrieval = Retrieval(found, "...", texts=tuple(c.text for c in found))
    after = unseen(retrieval, history, grouped=True)
    assert after.context == (
        "[1], [2] and [3] (kb.md, KB > Printers) and [4] (kb.md, KB > Hours), given above."
    )
    # Without reading ahead, each is named with its place, as before.
    assert unseen(retrieval, history).context == (
        "[1] (kb.md, KB > Printers); [2] (kb.md, KB > Printers); [3] (kb.md, KB > Printers)"
        " and [4] (kb.md, KB > Hours), given above."
    )
