"""A small model's answer from passages is quoted from them (profile `quoted_answers`):
after the sources step, the answer is the units of the named passages nearest the
question (its key terms first, then by embedding), each with its marker. Only that text
could be decoded there, so the runtime gives it instead of asking the model for it: no
answer request, shown and cited as a decoded one, traced as given, and kept in the
conversation as the whole JSON reply. A follow-up quotes a passage given above (its text
is not printed again); a profile without the field, and the 1.5B's, keeps the free
answer."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot import Copilot, answer_opening, quote_units, quoted_answer, step_replies
from pilothouse.copilot.events import Citation
from pilothouse.knowledge.testing import HashingEmbedder
from pilothouse.models import FunctionModel
from pilothouse.models.profiles import profile_for
from pilothouse.storage.traces import TraceStore
from pilothouse.tracing import attributes as A
from pilothouse.types import Message, ModelRequest, TextDelta
from tests.copilot.test_follow_up_prompts import two_turns, wire
from tests.copilot.test_scripts_used import in_latin
from tests.copilot.test_stepped_turns import SMALL, shop

__all__ = ["shop"]

QUOTING = replace(SMALL, grammar=True, quoted_answers=True)

PLANS = (
    "# Shipping\n\n## Delivery plans\n\nPlan D1 delivers the next working day. Plan D2 "
    "delivers within 4 working days. Plans renew every month.\n\n## Returns\n\n"
    "Returns are free within 30 days of delivery.\n"
)


@pytest.fixture
def plans(shop: Path) -> Path:
    (shop / "knowledge/shipping.md").write_text(PLANS)
    return shop


def quoting_model() -> FunctionModel:
    """A model with assistant prefill that names passage 1 and, asked for an answer,
    writes its own words (a quoted answer is never asked of it)."""

    def reply(request: ModelRequest) -> str:
        last = request.messages[-1]
        assert last.role == "assistant" and request.grammar is not None
        if last.text == answer_opening.SOURCES_START:
            return "1"
        assert request.grammar == in_latin(answer_opening.ANSWER_GRAMMAR)
        return 'In my own words."}'

    return FunctionModel(reply, model_id="local:small", profile=QUOTING, continues=True)


def answer_requests(model: FunctionModel) -> list[ModelRequest]:
    return [r for r in model.requests if r.messages[-1].text.endswith('"answer": "')]


async def test_a_follow_up_quotes_the_unit_nearest_it_from_a_passage_given_above(
    plans: Path, settings: Settings
) -> None:
    model = quoting_model()
    turns = await two_turns(plans, settings, model, "How fast is plan D1?", "And plan D2?")
    first, second = (a.text for a in turns.answers)
    units = {
        "Plan D1 delivers the next working day. [1]",
        "Plan D2 delivers within 4 working days. [1]",
        "Plans renew every month. [1]",
    }
    # the unit naming the question's key term first, then only units as near as it
    assert first.startswith("Plan D1 delivers the next working day. [1]")
    assert second.startswith("Plan D2 delivers within 4 working days. [1]")
    said = {u.strip() + " [1]" for u in first.split(" [1]") if u.strip()}
    again = {u.strip() + " [1]" for u in second.split(" [1]") if u.strip()}
    assert said <= units and again <= units
    # what the first answer quoted is not quoted again after the follow-up's own unit
    assert not (again - {"Plan D2 delivers within 4 working days. [1]"}) & said
    # the follow-up's passage was given above: its text is not printed next to the question
    assert "Plan D2 delivers" not in turns.turn2[-1].messages[-2].text
    assert [(c.number, c.inferred) for c in turns.answers[1].citations] == [(1, False)]
    # the conversation keeps the whole JSON reply, as the model would have written it
    assert turns.turn2[0].messages[2].text == f'{{"sources": [1], "answer": "{first}"}}'


async def test_a_quoted_answer_is_given_not_decoded(plans: Path, settings: Settings) -> None:
    model = quoting_model()
    copilot = await Copilot.open(plans, settings=settings, models=[model])
    try:
        events = [e async for e in copilot.stream("How fast is plan D1?")]
        asked = len(model.requests)
        conversation = events[-1].answer.conversation_id  # type: ignore[attr-defined]
        await copilot.ask("And plan D2?", conversation_id=conversation)
    finally:
        await copilot.aclose()
    answer = events[-1].answer  # type: ignore[attr-defined]
    first, follow_up = model.requests[asked - 1], model.requests[asked]
    # no answer request: the model was asked for the passage numbers only
    assert not answer_requests(model)
    assert first.messages[-1].text == answer_opening.SOURCES_START
    assert answer.text.startswith("Plan D1 delivers the next working day. [1]")
    assert [(c.number, c.inferred) for c in answer.citations] == [(1, False)]
    # streamed as a decoded answer is: the text deltas are the answer
    shown = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert shown.strip() == answer.text
    # traced as given, with the reply the conversation keeps
    whole = f'{{"sources": [1], "answer": "{answer.text}"}}'
    store = TraceStore(settings.database_path)
    run = store.get_run(answer.run_id)
    store.close()
    [given] = [s for s in run.spans if s.name == "answer_given"]
    assert given.attributes[A.ANSWER_GIVEN] == whole
    assert run.spans[0].attributes[A.CITATIONS_MODEL] == [1]
    # the follow-up begins with the sources request and the given reply, as sent
    before = [*first.messages[:-1], Message.assistant(whole)]
    assert wire(follow_up.messages[: len(before)]) == wire(before)


def test_a_given_reply_is_the_whole_json_its_quote_escaped() -> None:
    quote = 'Print to "FollowMe" at \\\\print01. [2]'
    given = quoted_answer.reply([2, 1], quote)
    assert given.startswith(answer_opening.opening([2, 1]))
    assert json.loads(given) == {"sources": [2, 1], "answer": quote}
    assert step_replies.parse_answer(given) == (quote, [2, 1])


async def test_a_profile_without_quoted_answers_writes_its_own(
    plans: Path, settings: Settings
) -> None:
    free = replace(QUOTING, quoted_answers=False)
    model = quoting_model()
    model.profile = free
    turns = await two_turns(plans, settings, model, "How fast is plan D1?", "And plan D2?")
    assert len(answer_requests(model)) == 2
    assert [a.text for a in turns.answers] == ["In my own words. [1]"] * 2


def cited(number: int, text: str, source: str = "a.md") -> Citation:
    return Citation(number, source, "A", None, (), text[:20], number, 0.5, text=text)


async def test_units_are_ranked_by_key_terms_then_nearness_each_text_once() -> None:
    citations = [
        cited(1, "Plan D1 is quick. Plans renew every month."),
        cited(2, "Plans renew every month. Plan D2 is slow."),
    ]
    quotes = await quoted_answer.ranked("Is plan D2 slow?", citations, HashingEmbedder())
    assert (quotes[0].number, quotes[0].text) == (2, "Plan D2 is slow.")
    assert sorted((q.number, q.text) for q in quotes) == [
        (1, "Plan D1 is quick."),
        (1, "Plans renew every month."),
        (2, "Plan D2 is slow."),
    ]
    assert quoted_answer.best(quotes[:2], [2]) == "Plan D2 is slow. [2]"
    assert quoted_answer.best(quotes, [7]) is None


async def test_a_number_in_the_question_names_its_row() -> None:
    table = (
        "| Floor | Location |\n| --- | --- |\n| 3 | In the kitchen area |\n"
        "| 5 | No printer on floor 5; use floor 4 |\n"
    )
    quotes = await quoted_answer.ranked("And on floor 3?", [cited(1, table)], HashingEmbedder())
    assert quotes[0].text == "Floor 3: In the kitchen area."


def quote(text: str, terms: int, near: float, said: bool = False) -> quoted_answer.Quote:
    return quoted_answer.Quote(1, text, terms, near, said)


def test_one_unit_when_it_clearly_answers_more_only_when_as_near() -> None:
    margin = quoted_answer.MARGIN
    clear = [quote("A b c.", 1, 0.8), quote("D e f.", 1, 0.8 - margin - 0.01)]
    assert quoted_answer.best(clear, [1]) == "A b c. [1]"
    close = [quote("A b c.", 1, 0.8), quote("D e f.", 1, 0.8 - margin / 2)]
    assert quoted_answer.best(close, [1]) == "A b c. [1] D e f. [1]"
    # a unit naming fewer of the question's key terms is not as good, however near
    fewer = [quote("P2 is high.", 1, 0.6), quote("Priorities are set.", 0, 0.6)]
    assert quoted_answer.best(fewer, [1]) == "P2 is high. [1]"
    many = [quote(f"Unit {n} here.", 0, 0.5) for n in range(5)]
    assert quoted_answer.best(many, [1]).count("[1]") == quoted_answer.QUOTES  # type: ignore[union-attr]


async def test_a_unit_the_previous_answer_quoted_is_not_quoted_again_after_the_best() -> None:
    passage = "Standard delivery is free over 50 pounds. Express delivery costs 6 pounds."
    previous = '{"sources": [1], "answer": "Standard delivery is free over 50 pounds. [1]"}'
    quotes = await quoted_answer.ranked(
        "And express?", [cited(1, passage)], HashingEmbedder(), previous=previous
    )
    assert {q.text: q.said for q in quotes} == {
        "Standard delivery is free over 50 pounds.": True,
        "Express delivery costs 6 pounds.": False,
    }
    said_first = sorted(quotes, key=lambda q: not q.said)
    close = [q._replace(near=0.5) for q in said_first]
    # the best unit stays first even when said before; units said before never follow it
    assert quoted_answer.best(close, [1]) == "Standard delivery is free over 50 pounds. [1] " + (
        "Express delivery costs 6 pounds. [1]"
    )
    assert quoted_answer.best(close[::-1], [1]) == "Express delivery costs 6 pounds. [1]"


def test_units_read_alone_a_table_row_as_a_line_an_item_without_its_bullet() -> None:
    passage = (
        "| Floor | Location | Printer |\n| --- | --- | --- |\n| 2 | Beside the IT Bar | HH-2 |\n"
        "| 5 | No printer on floor 5 | - |\n\n- **Windows:** open Printers and scanners.\n"
        "- OK.\n\nJobs are deleted after 24 hours. Colour costs 8p."
    )
    assert quote_units.readable_units(passage) == [
        "Floor 2: location beside the IT Bar, printer HH-2.",
        "Floor 5: location no printer on floor 5.",
        "Windows: open Printers and scanners.",
        "Jobs are deleted after 24 hours.",
        "Colour costs 8p.",
    ]


def test_a_row_reads_as_a_line_about_its_first_cell() -> None:
    hours = "Day | Phone and portal | IT Bar (walk-in)\nSaturday | 09:00 to 13:00 | Closed"
    settings = "| Setting | Value |\n| --- | --- |\n| Port | 443 |\n| VPN type | SSL-VPN |"
    makers = "Floor | Model\n1 | Canon imageRUNNER C5860i"
    assert quote_units.readable_units(hours) == [
        "Saturday: phone and portal 09:00 to 13:00, IT Bar (walk-in) closed."
    ]
    # a row is never a lone heading, however short (followups-fresh: "Which port does it
    # use?" lost "Port: 443." as too short)
    assert quote_units.readable_units(settings) == ["Port: 443.", "VPN type: SSL-VPN."]
    assert quote_units.readable_units(makers) == ["Floor 1: Canon imageRUNNER C5860i."]


def test_markdown_emphasis_and_code_marks_are_not_quoted() -> None:
    passage = (
        "Press and hold the dial for **10 seconds** until the screen shows *Reset?*, then "
        "press once. Enter `\\\\print01\\FollowMe` under __Add device__. Rows * 2 * 3 stay."
    )
    assert quote_units.readable_units(passage) == [
        "Press and hold the dial for 10 seconds until the screen shows Reset?, then press once.",
        "Enter \\\\print01\\FollowMe under Add device.",
        "Rows * 2 * 3 stay.",
    ]


def test_a_link_is_quoted_as_its_words_and_a_cells_own_marks_stay() -> None:
    passage = (
        "Book a slot on [the IT portal](https://it.example/book) first.\n\n"
        "| Impact | Priority |\n| --- | --- |\n| > 50 users | P1 |"
    )
    assert quote_units.readable_units(passage) == [
        "Book a slot on the IT portal first.",
        "> 50 users: P1.",
    ]


def test_a_table_cut_from_its_header_borrows_one_from_its_place_else_goes_unnamed() -> None:
    whole = "| Floor | Location | Printer |\n| --- | --- | --- |\n| 1 | Opposite the lifts | HH-1 |"
    cut = "| 4 | East wing | HH-4 |\n| 5 | No printer on floor 5 | - |"
    headers = quote_units.table_headers([whole, cut])
    assert quote_units.readable_units(cut, headers) == [
        "Floor 4: location east wing, printer HH-4.",
        "Floor 5: location no printer on floor 5.",
    ]
    assert quote_units.readable_units(cut) == ["4: East wing, HH-4.", "5: No printer on floor 5."]
    assert quote_units.readable_units("A | B\nx | y z w") == ["x: y z w."]


async def test_a_cut_table_in_a_turn_borrows_the_header_of_its_place_only() -> None:
    whole = "| Floor | Location | Printer |\n| --- | --- | --- |\n| 1 | Opposite the lifts | HH-1 |"
    cut = "| 4 | East wing outside | HH-4 |"
    other = "| 9 | Somewhere else entirely | X-9 |"
    citations = [cited(1, whole), cited(2, cut), cited(3, other, "b.md")]
    texts = {q.text for q in await quoted_answer.ranked("Floor 4?", citations, HashingEmbedder())}
    assert "Floor 4: location east wing outside, printer HH-4." in texts
    assert "9: Somewhere else entirely, X-9." in texts


def test_the_0_5b_quotes_its_answers_and_the_1_5b_writes_them() -> None:
    assert profile_for("local:qwen2.5-coder-0.5b").quoted_answers is True
    assert profile_for("local:qwen2.5-coder-1.5b").quoted_answers is False
    assert profile_for("local:/models/other.gguf").quoted_answers is False


async def test_a_named_passage_the_quote_does_not_use_gets_no_marker_and_is_not_cited(
    plans: Path, settings: Settings
) -> None:
    def reply(request: ModelRequest) -> str:
        numbers = re.findall(r"^\[(\d+)\]", request.messages[-2].text, re.M)
        return ", ".join(sorted(set(numbers)))  # the sources step: every passage named

    (plans / "knowledge/plan_d1.md").write_text(
        "# Fast plans\n\nHow fast a plan delivers depends on the courier and the weather.\n"
    )
    model = FunctionModel(reply, model_id="local:small", profile=QUOTING, continues=True)
    copilot = await Copilot.open(plans, settings=settings, models=[model])
    try:
        answer = await copilot.ask("How fast is plan D1?")
    finally:
        await copilot.aclose()
    [sources] = [r for r in model.requests if r.messages[-1].text == answer_opening.SOURCES_START]
    assert len(re.findall(r"^\[\d+\]", sources.messages[-2].text, re.M)) > 1  # two named
    quoted = [int(n) for n in re.findall(r"\[(\d+)\]", answer.text)]
    assert answer.text.startswith("Plan D1 delivers the next working day. [")
    # only the markers of the units quoted, each after its unit, none bare at the end
    assert re.fullmatch(r"(?:[^\[\]]+ \[\d+\] ?)+", answer.text)
    assert [c.number for c in answer.citations] == list(dict.fromkeys(quoted))


def test_pdf_page_lines_are_not_quoted_and_a_sentence_across_pages_reads_whole() -> None:
    # the helpdesk example's PDFs as pypdf reads them: each page ends "Page N of 6"
    passage = (
        "Collect your laptop from the IT Bar\nPage 2 of 6\non floor 2. Bring photo ID.\n\n"
        "- Bookmarked the help site.\nPage 6 of 6\n\nLost devices are reported\n"
        "within 1 hour\n- 3 -\n\nPage 4\n\nStep 2 of 5 is to restart the laptop."
    )
    assert quote_units.readable_units(passage) == [
        "Collect your laptop from the IT Bar on floor 2.",
        "Bring photo ID.",
        "Bookmarked the help site.",
        "Lost devices are reported within 1 hour",
        "Step 2 of 5 is to restart the laptop.",
    ]


def looking_up_model() -> FunctionModel:
    """A quoting model that looks the order up for the first question and, for any
    answer it is asked to write, writes its own words."""

    def reply(request: ModelRequest) -> str:
        last = request.messages[-1]
        if last.role == "assistant" and last.text == answer_opening.SOURCES_START:
            return "1"
        if last.role == "assistant":
            return 'In my own words."}'
        if "Step: decide" in last.text:
            looked_up = any(m.tool_results for m in request.messages)
            return '{"decision": "answer"}' if looked_up else '{"decision": "call:order_status"}'
        return '{"order_id": "SO-1002"}'

    return FunctionModel(reply, model_id="local:small", profile=QUOTING, continues=True)


async def test_a_question_about_the_thing_just_looked_up_is_not_quoted_from_a_passage(
    shop: Path, settings: Settings
) -> None:
    model = looking_up_model()
    turns = await two_turns(
        shop, settings, model, "Where is my order SO-1002?", "Will it arrive the next working day?"
    )
    follow_up = turns.answers[1].text
    # the model's own words, with the lookup's result above the question, not the
    # express delivery sentence given in place of it ("arrives the next working day")
    assert follow_up.startswith("In my own words."), follow_up
    [asked] = [r for r in turns.turn2 if r.messages[-1].text.endswith('"answer": "')]
    assert "shipped" in wire(asked.messages)


async def test_a_question_after_a_lookup_about_something_else_is_still_quoted(
    shop: Path, settings: Settings
) -> None:
    model = looking_up_model()
    turns = await two_turns(
        shop, settings, model, "Where is my order SO-1002?", "How many days do I have to return it?"
    )
    assert turns.answers[1].text.startswith("Returns are free within 30 days of delivery. [")
