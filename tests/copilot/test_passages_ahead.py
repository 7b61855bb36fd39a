"""Reading ahead while the user reads (copilot/passages_ahead.py): after a turn answered
from cut passages on a model that runs here, the runtime reads the conversation and the
rest of those passages into the cache (the same messages as the next prompt's start,
one token); a question that comes after the read began holds the rest before its own
turn (stored with it, so the conversation replays it) and does not send it again; one
asked at once is sent as without reading ahead, byte for byte. Remote models, and
profiles without `read_ahead`, read nothing ahead and their prompts are unchanged."""

from __future__ import annotations

import asyncio
import itertools
import shutil
from collections.abc import Awaitable
from dataclasses import replace
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.copilot.events import Citation
from pilothouse.copilot.grounding import Retrieval, context_block
from pilothouse.copilot.passages_ahead import HEADING, Reading, rest_pieces
from pilothouse.copilot.run_state import RunState
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
    # A row goes with its table's header, though the first turn sent that header: the
    # 1.5B answered the model and not the room from header-less rows (followups-fresh).
    assert "| Floor | Printer | Room |\n| 5 | none | use floor 4 |" in rest.text
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
    # A remote model reads nothing ahead (an embedded one only the next turn's opening).
    assert here or not [r for r in model.requests if r.max_output_tokens == 1]
    assert not [m for r in model.requests for m in r.messages if m.text.startswith(HEADING)]


async def test_without_a_rest_the_next_turns_opening_is_read_ahead_and_not_held(
    shop: Path, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No rest to read (no read_ahead in the profile): while the user reads, the model
    # reads the conversation and the start of a user turn with passages, a dozen tokens
    # every follow-up would read itself; the follow-up is sent as when asked at once.
    monkeypatch.setattr(Reading, "DELAY", 0.0)
    model = scripted(here=True, read_ahead=None)
    await turns(shop, settings, model, think=0.2)
    ahead = [i for i, r in enumerate(model.requests) if r.max_output_tokens == 1]
    assert ahead  # after the first turn (the copilot closes right after the second)
    read, follow = model.requests[ahead[0]], model.requests[ahead[0] + 1]
    assert wire(follow.messages[: len(read.messages) - 1]) == wire(read.messages[:-1])
    opening = read.messages[-1]
    assert opening.role == "user" and opening.text == "Passages from the knowledge base:"
    assert follow.messages[-1].text.startswith(opening.text + "\n\n[")
    monkeypatch.setattr(Reading, "DELAY", 0.5)
    at_once = scripted(here=True, read_ahead=None)
    other = tmp_path / "at-once"
    shutil.copytree(shop, other)
    home = Settings.from_sources(home=tmp_path / "home-at-once", environ={})
    await turns(other, home, at_once)
    assert not [r for r in at_once.requests if r.max_output_tokens == 1]
    assert [wire(r.messages) for r in turn_requests(model)] == [
        wire(r.messages) for r in turn_requests(at_once)
    ]


async def test_a_question_holds_the_rest_only_as_far_as_it_was_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = asyncio.Event()
    began: list[str] = []
    done: list[str] = []

    async def read(piece: Message, ok: bool = True) -> bool:
        began.append(piece.text)
        await release.wait()
        done.append(piece.text)
        return ok

    def failing(piece: Message) -> Awaitable[bool]:
        return read(piece, ok=False)

    def pieces(name: str) -> list[Message]:
        return [Message.user(f"{HEADING} {name}"), Message.user(f"{HEADING} {name} more")]

    async def steps(count: int = 5) -> None:
        for _ in range(count):
            await asyncio.sleep(0)

    # Asked at once (within the delay): cancelled before it began; nothing to hold.
    reading = Reading()
    reading.start("a", pieces("a"), read)
    assert await reading.settle("a") == ()
    assert began == [] and done == []
    # Asked while it reads its first piece: the question waits for that piece (llama.cpp
    # cannot stop a batch it has begun) and holds it; the second is not read.
    monkeypatch.setattr(Reading, "DELAY", 0.0)
    reading.start("a", pieces("a"), read)
    await steps()
    assert began == [pieces("a")[0].text]
    waiting = asyncio.create_task(reading.settle("a"))
    await steps(1)
    assert not waiting.done()  # the piece read is the start of this question's prompt
    release.set()
    assert await waiting == (pieces("a")[0],)
    assert began == [pieces("a")[0].text]
    # Asked after the read ended: every piece read, the whole held; once.
    reading.start("a", pieces("a2"), read)
    await steps(10)
    assert done[-1] == pieces("a2")[1].text
    assert await reading.settle("a") == (pieces("a2")[1],)
    assert await reading.settle("a") == ()
    # A piece that failed is not held (the one before it is).
    reading.start("a", pieces("a3")[:1], failing)
    await steps(10)
    assert await reading.settle("a") == ()
    # Another conversation's question cancels a read not begun, and stops one under way
    # after its piece, which stays held for its own next question.
    release.clear()
    reading.start("b", pieces("b"), read)
    await steps()
    monkeypatch.setattr(Reading, "DELAY", 10.0)
    reading.start("c", pieces("c"), read)
    other = asyncio.create_task(reading.settle("d"))
    await steps()
    assert await other == ()
    release.set()
    await steps(10)
    assert pieces("b")[0].text in done and pieces("b")[1].text not in began
    assert not [t for t in began if "c" in t.split()]
    assert await reading.settle("b") == (pieces("b")[0],)
    monkeypatch.setattr(Reading, "DELAY", 0.0)
    release.clear()
    reading.start("e", pieces("e"), read)
    await reading.aclose()  # closing cancels what still runs
    assert not [t for t in done if "e" in t.split()]


def test_the_rest_is_read_in_pieces_each_the_one_before_and_more() -> None:
    text = "\n\n".join(f"Sentence number {i} is about printer {i} on floor {i}." for i in range(30))
    citation = Citation(1, "kb.md", "KB", None, ("KB",), "", 1, 0.5, text=text)
    first = "Sentence number 0 is about printer 0 on floor 0."
    state = RunState("r", "c", "q", None, [citation])
    state.sent_turn = (Message.user(f"Passages:\n\n[1] (kb.md, KB)\n{first}\n\nQuestion: q"),)
    pieces = rest_pieces(state, 240, 64)
    assert len(pieces) > 2
    for shorter, longer in itertools.pairwise(pieces):
        assert longer.text.startswith(shorter.text)  # read on from the cached piece
    assert pieces[-1].text.startswith(HEADING + "\n\n[1] (kb.md, KB)\n")
    assert first not in pieces[-1].text  # sent already


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
