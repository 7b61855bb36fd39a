"""Reading ahead while the user reads (copilot/passages_ahead.py): after a turn answered
from cut passages on a model that runs here, the runtime reads the conversation and the
rest of those passages into the cache (the same messages as the next prompt's start,
one token); a question that comes after the read began holds the rest before its own
turn (stored with it, so the conversation replays it) and does not send it again; one
asked at once is sent as without reading ahead, byte for byte. Remote models, and
profiles without `read_ahead`, read nothing ahead and their prompts are unchanged."""

from __future__ import annotations

import asyncio
import shutil
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


async def turns(
    folder: Path, settings: Settings, model: FunctionModel, think: float = 0.0, count: int = 2
) -> list[str]:
    """Ask `count` questions in one conversation, each `think` seconds after the answer
    before it; the run ids."""
    (folder / "knowledge/printing.md").write_text(PRINTING)
    questions = ["Where is printer HH-4-PRN01?", "And is there one on floor 6?", "And on 2?"]
    copilot = await Copilot.open(folder, settings=settings, models=[model])
    try:
        one = await copilot.ask(questions[0])
        runs = [one.run_id]
        for question in questions[1:count]:
            await asyncio.sleep(think)
            answer = await copilot.ask(question, conversation_id=one.conversation_id)
            runs.append(answer.run_id)
        shown = await copilot.conversations.messages(one.conversation_id)
    finally:
        await copilot.aclose()
    assert [m.text for m in shown][::2] == questions[:count]  # people see it as before
    return runs


def turn_requests(model: FunctionModel) -> list[ModelRequest]:
    return [r for r in model.requests if r.max_output_tokens != 1]


async def test_a_question_after_the_read_holds_the_rest_of_the_passages_read_ahead(
    shop: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Reading, "DELAY", 0.0)
    model = scripted(here=True)
    runs = await turns(shop, settings, model, think=0.2)  # asked after the read
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


async def test_the_rest_read_ahead_is_stored_with_the_turn_that_held_it(
    shop: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Reading, "DELAY", 0.0)
    model = scripted(here=True)
    runs = await turns(shop, settings, model, think=0.2, count=3)
    asked = turn_requests(model)

    # Each turn decides, then answers: the answer step's request holds the turn as stored.
    answers = [r.messages for r in asked if r.messages[-1].text.endswith("Step: answer.")]
    assert len(answers) == 3
    second, third = answers[1], answers[2]
    # The third turn's prompt begins with the second's as it was sent, the rest read
    # ahead before the second question included (the conversation as sent replays it).
    assert wire(third[: len(second)]) == wire(second)
    assert second[-2].text.startswith(HEADING)
    assert len(runs) == 3


async def test_a_question_asked_at_once_is_sent_as_without_reading_ahead(
    shop: Path, settings: Settings, tmp_path: Path
) -> None:
    # Asked before the read began (half a second after the answer): nothing is read,
    # and the follow-up does not read the rest itself: its prompt is the one a profile
    # without read_ahead sends, byte for byte.
    model = scripted(here=True)
    await turns(shop, settings, model)
    assert not [r for r in model.requests if r.max_output_tokens == 1]
    without = scripted(here=True, read_ahead=None)
    other = tmp_path / "without"
    shutil.copytree(shop, other)
    home = Settings.from_sources(home=tmp_path / "home-without", environ={})
    await turns(other, home, without)
    assert [wire(r.messages) for r in turn_requests(model)] == [
        wire(r.messages) for r in turn_requests(without)
    ]


@pytest.mark.parametrize(
    ("here", "read_ahead"), [(False, 80), (True, None)], ids=["remote", "profile-without"]
)
async def test_a_remote_model_or_a_profile_without_read_ahead_is_sent_no_rest(
    shop: Path, settings: Settings, here: bool, read_ahead: int | None
) -> None:
    model = scripted(here=here, read_ahead=read_ahead)
    await turns(shop, settings, model, think=0.6)
    assert not [r for r in model.requests if r.max_output_tokens == 1]
    assert not [m for r in model.requests for m in r.messages if m.text.startswith(HEADING)]


async def test_a_question_holds_the_rest_only_where_its_read_began(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = asyncio.Event()
    began: list[str] = []
    done: list[str] = []

    async def work(name: str, ok: bool = True) -> bool:
        began.append(name)
        await release.wait()
        done.append(name)
        return ok

    def rest(name: str) -> Message:
        return Message.user(f"{HEADING} {name}")

    # Asked at once (within the delay): cancelled before it began; nothing to hold.
    reading = Reading()
    reading.start("a", rest("a"), work("a"))
    assert await reading.settle("a") == ()
    assert began == [] and done == []
    # Asked while it reads: the question waits for it and holds what it read.
    monkeypatch.setattr(Reading, "DELAY", 0.0)
    reading.start("a", rest("a"), work("a"))
    for _ in range(3):
        await asyncio.sleep(0)
    assert began == ["a"]
    waiting = asyncio.create_task(reading.settle("a"))
    await asyncio.sleep(0)
    assert not waiting.done()  # "a" reads the start of this question's own prompt
    release.set()
    assert await waiting == (rest("a"),)
    # Asked after the read ended: held; the next question in it holds nothing more.
    reading.start("a", rest("a2"), work("a2"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert done[-1] == "a2"
    assert await reading.settle("a") == (rest("a2"),)
    assert await reading.settle("a") == ()
    # A read that failed is not held.
    reading.start("a", rest("a3"), work("a3", ok=False))
    for _ in range(5):
        await asyncio.sleep(0)
    assert await reading.settle("a") == ()
    # Another conversation's question cancels a read not begun; one reading goes on.
    release.clear()
    reading.start("b", rest("b"), work("b"))
    for _ in range(3):
        await asyncio.sleep(0)
    monkeypatch.setattr(Reading, "DELAY", 10.0)
    reading.start("c", rest("c"), work("c"))
    assert await reading.settle("d") == ()
    release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert "b" in done and "c" not in began
    assert await reading.settle("b") == (rest("b"),)
    monkeypatch.setattr(Reading, "DELAY", 0.0)
    release.clear()
    reading.start("e", rest("e"), work("e"))
    await reading.aclose()  # closing cancels what still runs
    assert "e" not in done


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
