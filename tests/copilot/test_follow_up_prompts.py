"""A follow-up's prompt begins with the previous turn's last request and the model's
reply, byte for byte (so a local model reuses its cached prompt): the conversation
keeps each turn as it was sent (its passages, its step, the reply as the model wrote
it), while people see the bare question and the shown answer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.copilot.events import Answer, Citation
from pilothouse.copilot.grounding import Retrieval, context_block
from pilothouse.copilot.sent_passages import unseen
from pilothouse.copilot.tool_runner import Decision
from pilothouse.models import FunctionModel
from pilothouse.types import Message, ModelRequest, message_to_dict
from tests.copilot.test_stepped_turns import shop, small_model

__all__ = ["shop"]


def wire(messages: Sequence[Message]) -> str:
    return json.dumps([message_to_dict(m) for m in messages], ensure_ascii=False)


@dataclass
class TwoTurns:
    turn1: list[ModelRequest]
    turn2: list[ModelRequest]
    shown: list[Message]
    """The conversation as people see it."""
    answers: tuple[Answer, Answer]


async def two_turns(
    folder: Path, settings: Settings, model: FunctionModel, first: str, second: str
) -> TwoTurns:
    """A question and a follow-up in one conversation."""
    copilot = await Copilot.open(folder, settings=settings, models=[model])
    try:
        one = await copilot.ask(first)
        count = len(model.requests)
        two = await copilot.ask(second, conversation_id=one.conversation_id)
        shown = await copilot.conversations.messages(one.conversation_id)
    finally:
        await copilot.aclose()
    return TwoTurns(model.requests[:count], model.requests[count:], shown, (one, two))


def assert_continues(turn1: list[ModelRequest], turn2: list[ModelRequest], reply: str) -> None:
    before = [*turn1[-1].messages, Message.assistant(reply)]
    for request in turn2:
        assert wire(request.messages[: len(before)]) == wire(before)
        assert len(request.messages) > len(before)


async def test_a_stepped_follow_up_begins_with_the_answered_request(
    shop: Path,
    settings: Settings,
) -> None:
    reply = '{"sources": [1], "answer": "Express costs 6 pounds."}'
    model = small_model("answer", answer=reply)
    turns = await two_turns(
        shop, settings, model, "How much is express delivery?", "And how fast is it?"
    )
    assert_continues(turns.turn1, turns.turn2, reply)
    assert "Passages from the knowledge base" in turns.turn2[0].messages[1].text
    assert [m.text for m in turns.shown] == [
        "How much is express delivery?",
        "Express costs 6 pounds. [1]",
        "And how fast is it?",
        "Express costs 6 pounds. [1]",
    ]


async def test_a_follow_up_after_a_tool_call_begins_with_the_call_and_its_result(
    shop: Path,
    settings: Settings,
) -> None:
    reply = '{"answer": "SO-1002 has shipped."}'
    model = small_model("call:order_status", arguments='{"order_id": "SO-1002"}', answer=reply)
    turns = await two_turns(
        shop, settings, model, "Where is my order SO-1002?", "When will SO-1002 arrive?"
    )
    # The id given for the one lookup: no decision, no arguments step (the message holds
    # the one argument); the answer from the result.
    assert len(turns.turn1) == 1
    assert_continues(turns.turn1, turns.turn2, reply)
    assert [m.role for m in turns.shown] == ["user", "assistant", "tool", "assistant"] * 2
    assert turns.shown[0].text == "Where is my order SO-1002?"


async def test_a_native_follow_up_begins_with_the_answered_request(
    shop: Path,
    settings: Settings,
) -> None:
    reply = "Express costs 6 pounds [1]. It arrives the next working day."
    model = FunctionModel(lambda request: reply)
    turns = await two_turns(
        shop, settings, model, "How much is express delivery?", "And how fast is it?"
    )
    assert len(turns.turn1) == len(turns.turn2) == 1
    assert_continues(turns.turn1, turns.turn2, reply)
    shown = [m.text for m in turns.shown][::2]
    assert shown == ["How much is express delivery?", "And how fast is it?"]


async def one_passage_each(folder: Path, settings: Settings, reply: str, second: str) -> TwoTurns:
    """The shop retrieving one passage per question: the express price, then `second`;
    the model answers `reply` at every answer step."""
    definition = folder / "copilot.yaml"
    text = definition.read_text().replace(
        "grounding: strict", "grounding: strict\n  retrieval: {top_k: 1}"
    )
    definition.write_text(text)
    model = small_model("answer", answer=reply)
    return await two_turns(folder, settings, model, "How much is express delivery?", second)


async def test_a_passage_the_conversation_was_given_is_not_sent_again(
    shop: Path, settings: Settings
) -> None:
    reply = '{"sources": [1], "answer": "Express costs 6 pounds."}'
    turns = await one_passage_each(shop, settings, reply, "What does express delivery cost?")
    first, again = turns.answers
    turn2 = turns.turn2
    asked = turn2[-1].messages[-1].text
    given = "[1] (knowledge/shipping.md, Shipping > Express), given above."
    assert f"Passages from the knowledge base:\n\n{given}\n\nQuestion:" in asked
    assert "6 pounds" not in asked  # the passage is in the history, above, once
    assert sum("Express delivery costs 6 pounds" in m.text for m in turn2[-1].messages) == 1
    sources = turn2[-1].output_schema.schema["properties"]["sources"]  # type: ignore[union-attr]
    assert sources["items"]["enum"] == [1]
    [citation] = again.citations
    assert (citation.number, citation.headings[-1]) == (1, "Express")
    assert again.text == "Express costs 6 pounds. [1]"
    assert first.citations[0].chunk_id == citation.chunk_id


async def test_a_new_passage_is_numbered_after_the_ones_above(
    shop: Path, settings: Settings
) -> None:
    reply = '{"sources": [2], "answer": "Returns are free."}'
    turns = await one_passage_each(shop, settings, reply, "Are returns free?")
    second = turns.answers[1]
    asked = turns.turn2[-1].messages[-1].text
    assert asked.startswith("Passages from the knowledge base:\n\n[2] (knowledge/shipping.md")
    assert "[1]" not in asked and "Returns are free within 30 days" in asked
    assert "[1] (knowledge/shipping.md, Shipping > Express)" in turns.turn1[0].messages[1].text
    [citation] = second.citations
    assert (citation.number, citation.headings[-1]) == (2, "Returns")
    assert second.text == "Returns are free. [2]"
    assert_continues(turns.turn1, turns.turn2, reply)


def test_passages_above_keep_their_numbers_and_new_ones_follow_the_highest() -> None:
    def cite(number: int, heading: str, text: str) -> Citation:
        return Citation(number, "kb.md", "KB", None, ("KB", heading), text[:20], number, 0.5)

    a, b, c = "Alpha is first.", "Beta is second.", "Gamma is third."
    before = [cite(1, "A", a), cite(2, "B", b), cite(3, "C", c)]
    history = [
        Message.user(f"Passages:\n\n{context_block(before, [a, b, c])}\n\nQuestion: q1"),
        Message.assistant("[1] and [3]."),
    ]
    found = [cite(1, "C", c), cite(2, "D", "Delta is new."), cite(3, "A", a), cite(4, "B", "B?")]
    texts = ("Gamma is third.", "Delta is new.", a, "Beta, cut to a budget.")
    after = unseen(Retrieval(found, "...", texts=texts), history)
    assert [(x.number, x.headings[-1]) for x in after.citations] == [
        (3, "C"),
        (4, "D"),
        (1, "A"),
        (5, "B"),  # another text than the one above: sent again
    ]
    assert after.context == (
        "[4] (kb.md, KB > D)\nDelta is new.\n\n[5] (kb.md, KB > B)\nBeta, cut to a budget."
        "\n\nAlso [3] (kb.md, KB > C) and [1] (kb.md, KB > A), given above."
    )
    assert unseen(Retrieval(found, "as found", texts=texts), []).context == "as found"


HOURS = (
    "The desk answers by phone and portal.\n\n"
    "Day | Phone\nMonday | 8 to 6\nSaturday | 9 to 1\nSunday | Closed\n\n"
    "All times are UK time. Bank holidays are closed."
)


def test_a_passage_cut_otherwise_above_sends_only_what_the_history_lacks() -> None:
    # Under a passage budget a follow-up cuts a passage to its own question: the same
    # passage, another cut. It keeps its number; only the units not above are sent.
    def cite(number: int, heading: str, whole: str) -> Citation:
        return Citation(number, "kb.md", "KB", None, ("KB", heading), "", number, 0.5, text=whole)

    above = "Day | Phone\nSaturday | 9 to 1\n\nAll times are UK time."
    other = "Parking is in the basement. Bikes go in the yard."
    history = [
        Message.user(
            "Passages from the knowledge base:\n\n"
            + context_block([cite(1, "Hours", HOURS), cite(2, "Site", other)], [above, other])
            + "\n\nQuestion: Is it open on Saturday?"
        ),
        Message.assistant("9 to 1 [1]."),
    ]
    sunday = "Day | Phone\nSunday | Closed\n\nAll times are UK time."
    after = unseen(Retrieval([cite(1, "Hours", HOURS)], "...", texts=(sunday,)), history)
    assert [c.number for c in after.citations] == [1]
    assert after.context == "[1] (kb.md, KB > Hours)\nDay | Phone\nSunday | Closed"
    assert after.texts == ("Day | Phone\nSunday | Closed",)

    held = "All times are UK time."
    after = unseen(Retrieval([cite(1, "Hours", HOURS)], "...", texts=(held,)), history)
    assert after.context == "[1] (kb.md, KB > Hours), given above."

    # Another passage at the same place (the history's block is not part of it): new.
    lunch = "The canteen opens at noon. All times are UK time."
    after = unseen(Retrieval([cite(1, "Hours", lunch)], "...", texts=(lunch,)), history)
    assert after.context == f"[3] (kb.md, KB > Hours)\n{lunch}"


async def test_a_follow_up_under_a_budget_does_not_send_again_what_it_was_given(
    shop: Path, settings: Settings
) -> None:
    (shop / "knowledge/printing.md").write_text(
        "# Printing\n\n## Printers by floor\n\n"
        "Every floor has one printer, except floor 5. Printing is free for staff.\n\n"
        "| Floor | Printer | Where |\n| --- | --- | --- |\n"
        "| 3 | HH-3-PRN01 | Kitchen area |\n| 4 | HH-4-PRN01 | East wing, room 4.12 |\n"
        "| 5 | none | Use floor 4 |\n| 6 | HH-6-PRN01 | Secure print room 6.02 |\n\n"
        "Scans go to your email. Toner is changed by the IT Bar.\n"
    )
    reply = '{"sources": [1], "answer": "HH-4-PRN01, in the east wing."}'
    model = small_model("answer", answer=reply)
    model.profile = replace(model.profile, passage_budget=70)
    turns = await two_turns(
        shop, settings, model, "Where is printer HH-4-PRN01?", "And is there one on floor 5?"
    )
    assert_continues(turns.turn1, turns.turn2, reply)
    first = turns.turn1[-1].messages[-1].text
    asked = turns.turn2[0].messages[-1].text
    assert "[1] (knowledge/printing.md, Printing > Printers by floor)" in first
    assert "| 4 | HH-4-PRN01 | East wing, room 4.12 |" in first
    assert "| 5 | none | Use floor 4 |" in asked
    assert "(knowledge/printing.md, Printing > Printers by floor)\n" in asked
    assert "[2] (knowledge/printing.md, Printing > Printers by floor)" not in asked
    for line in first.split("\n"):  # nothing sent twice but the table's header
        if line.startswith("| ") and "Floor" not in line:
            assert line not in asked


def test_the_rest_of_a_weak_passage_given_above_is_not_sent() -> None:
    # A follow-up's cut of a passage given above may hold units the history lacks; of a
    # passage under 3/4 of the best one given above they are not sent: printed next to
    # the question, such a rest was answered from instead of the passage above that
    # answered it (issue 20's sixth round), and it costs the follow-up its tokens.
    def cite(number: int, heading: str, whole: str, score: float) -> Citation:
        return Citation(number, "kb.md", "KB", None, ("KB", heading), "", number, score, text=whole)

    site = "Parking is in the basement. Bikes go in the yard."
    above = "Day | Phone\nSaturday | 9 to 1\n\nAll times are UK time."
    history = [
        Message.user(
            "Passages from the knowledge base:\n\n"
            + context_block(
                [cite(1, "Hours", HOURS, 0.6), cite(2, "Site", site, 0.5)],
                [above, "Parking is in the basement."],
            )
            + "\n\nQuestion: Is it open on Saturday?"
        ),
        Message.assistant("9 to 1 [1]."),
    ]
    sunday = "Day | Phone\nSunday | Closed\n\nAll times are UK time."

    def after(score: float) -> Retrieval:
        found = [cite(1, "Hours", HOURS, 0.6), cite(2, "Site", site, score)]
        return unseen(Retrieval(found, "...", texts=(sunday, site)), history)

    weak = after(0.44)
    assert [c.number for c in weak.citations] == [1, 2]
    assert weak.context == (
        "[1] (kb.md, KB > Hours)\nDay | Phone\nSunday | Closed"
        "\n\nAlso [2] (kb.md, KB > Site), given above."
    )
    assert weak.texts == ("Day | Phone\nSunday | Closed",)
    close = after(0.46)  # 3/4 of the best passage above (0.6) or more: its rest is sent
    assert "[2] (kb.md, KB > Site)\nBikes go in the yard." in close.context


async def test_what_every_turn_would_repeat_is_said_once_in_the_system_message(
    shop: Path, settings: Settings
) -> None:
    # How an answer from passages replies, and how a follow-up is answered, are read
    # once, in the cached system message; a turn carries only its step's name and the
    # questions a follow-up follows (a follow-up reads its new turn anew: issue 21).
    reply = '{"sources": [1], "answer": "Express costs 6 pounds."}'
    model = small_model("answer", answer=reply)
    turns = await two_turns(
        shop, settings, model, "How much is express delivery?", "And how fast is it?"
    )
    first, follow = turns.turn1[-1], turns.turn2[-1]
    system = first.messages[0].text
    assert follow.messages[0].text == system
    assert 'With passages: {"sources": [...], "answer": "..."}' in system
    assert "not the earlier one, in a full sentence with its figures and their units" in system
    assert first.messages[-1].text.endswith(
        "Question: How much is express delivery?\n\nStep: answer."
    )
    assert follow.messages[-1].text.endswith(
        'Question: And how fast is it?\nThis follows the earlier question "How much is '
        'express delivery?".\n\nStep: answer.'
    )
    assert_continues(turns.turn1, turns.turn2, reply)


def test_a_weak_new_passage_below_every_passage_given_above_is_not_sent() -> None:
    def cite(number: int, heading: str, text: str, score: float) -> Citation:
        return Citation(number, "kb.md", "KB", None, ("KB", heading), text[:20], number, score)

    reset, install = "Hold the dial to reset.", "Switch off at the fuse box."
    before = [cite(1, "Reset", reset, 0.6), cite(2, "Install", install, 0.4)]
    history = [
        Message.user(f"Passages:\n\n{context_block(before, [reset, install])}\n\nQuestion: q1"),
        Message.assistant("[1]."),
    ]
    battery = "Two AA batteries last a year."

    def after(*scores: float) -> Retrieval:
        found = [
            cite(1, "Reset", reset, scores[0]),
            cite(2, "Install", install, scores[1]),
            cite(3, "Battery", battery, scores[2]),
        ]
        return unseen(Retrieval(found, "...", texts=(reset, install, battery)), history)

    # Under 3/4 of the best passage above and below all of them: left out.
    weak = after(0.57, 0.39, 0.31)
    assert [c.number for c in weak.citations] == [1, 2]
    assert battery not in weak.context and weak.texts == ()
    assert weak.context == ("[1] (kb.md, KB > Reset) and [2] (kb.md, KB > Install), given above.")
    # Close to the passages above: sent, numbered on.
    close = after(0.42, 0.41, 0.39)
    assert [c.number for c in close.citations] == [1, 2, 3]
    assert close.context.startswith(f"[3] (kb.md, KB > Battery)\n{battery}")


def test_a_new_passage_ranked_above_one_given_above_is_sent_however_weak() -> None:
    def cite(number: int, heading: str, text: str, score: float) -> Citation:
        return Citation(number, "kb.md", "KB", None, ("KB", heading), text[:20], number, score)

    a, b = "Alpha.", "Beta."
    history = [Message.user(f"Passages:\n\n{context_block([cite(1, 'A', a, 0.9)], [a])}\n\nq")]
    found = [cite(1, "A", a, 0.9), cite(2, "B", b, 0.3), cite(3, "A", a, 0.2)]
    after = unseen(Retrieval(found[:2], "...", texts=(a, b)), history)
    assert [c.number for c in after.citations] == [1]  # below the only one above: weak
    history.append(Message.user(f"Passages:\n\n{context_block([cite(2, 'C', 'C.', 0.1)], ['C.'])}"))
    found = [cite(1, "B", b, 0.3), cite(2, "C", "C.", 0.1)]
    after = unseen(Retrieval(found, "...", texts=(b, "C.")), history)
    assert [(c.number, c.headings[-1]) for c in after.citations] == [(3, "B"), (2, "C")]


async def test_a_follow_up_question_is_put_next_to_the_questions_it_follows(
    shop: Path, settings: Settings
) -> None:
    reply = '{"sources": [1], "answer": "Express costs 6 pounds."}'
    model = small_model("answer", answer=reply)
    copilot = await Copilot.open(shop, settings=settings, models=[model])
    try:
        asked = ["How much is express delivery?", "And how fast is it?", "Is it free then?"]
        first = await copilot.ask(asked[0])
        turns = [len(model.requests)]
        for question in [*asked[1:], "And returns?"]:
            await copilot.ask(question, conversation_id=first.conversation_id)
            turns.append(len(model.requests))
        shown = await copilot.conversations.messages(first.conversation_id)
    finally:
        await copilot.aclose()
    last_user = [r.messages[-1].text for r in model.requests]
    assert "This follows" not in last_user[0]
    assert "Question: How much is express delivery?\n\nStep:" in last_user[0]
    second = last_user[turns[0]]
    assert (
        'Question: And how fast is it?\nThis follows the earlier question "How much is '
        'express delivery?".\n\nStep:'
    ) in second
    # The last two questions, oldest first; the question itself stays as the user wrote it.
    fourth = last_user[turns[2]]
    assert (
        'Question: And returns?\nThis follows the earlier questions "And how fast is it?" '
        'and "Is it free then?".'
    ) in fourth
    assert "How much is express" not in fourth.split("Question:")[1]
    assert [m.text for m in shown][::2] == [*asked, "And returns?"]
    # Every turn still begins with the previous one as it was sent (the cache is reused).
    for request in model.requests[turns[0] :]:
        assert request.messages[1].text == model.requests[0].messages[1].text


async def test_an_answer_that_repeats_the_follow_up_note_is_not_shown(
    shop: Path, settings: Settings
) -> None:
    note = "Reply to this question, not the earlier one, in a full sentence with its figures"
    reply = json.dumps({"sources": [1], "answer": f"{note} and their units."})
    model = small_model("answer", answer=reply)
    turns = await two_turns(
        shop, settings, model, "How much is express delivery?", "And how fast is it?"
    )
    assert note.lower() in turns.turn2[0].messages[0].text.lower()  # the model was told it
    assert turns.turn2[-1].messages[-1].text.startswith("Step: answer again.")
    assert "not the earlier one" not in turns.answers[1].text


async def test_a_resumed_follow_up_is_sent_as_it_was_before_the_approval(
    shop: Path,
    settings: Settings,
) -> None:
    # The follow-up's note next to its question (copilot/follow_ups.py) is part of the
    # turn as sent: the run resumed after an approval sends the same turn, so its
    # request still begins with what the model's cache holds.
    model = small_model(
        "call:request_return",
        arguments='{"order_id": "SO-1002", "reason": "too big"}',
        answer='{"sources": [1], "answer": "Returns are free within 30 days."}',
    )
    copilot = await Copilot.open(shop, settings=settings, models=[model])
    try:
        one = await copilot.ask("Are returns free?")
        before = len(model.requests)
        two = await copilot.ask(
            "Return SO-1002 please, it is too big", conversation_id=one.conversation_id
        )
        assert two.status == "awaiting_approval"
        paused = model.requests[before:]
        resumed_at = len(model.requests)
        async for _ in copilot.resume(two.run_id, {c.call.id: Decision(True) for c in two.pending}):
            pass
        resumed = model.requests[resumed_at:]
    finally:
        await copilot.aclose()
    turn = next(m for m in paused[-1].messages if "Return SO-1002" in m.text)
    assert "This follows the earlier question" in turn.text
    assert resumed, "the resumed run asked the model"
    again = next(m for m in resumed[0].messages if "Return SO-1002" in m.text)
    # the same turn, without the arguments step the paused request ended it with
    assert again.text == turn.text.rsplit("\n\nStep: ", 1)[0]
