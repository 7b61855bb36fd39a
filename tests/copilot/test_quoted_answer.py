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
from dataclasses import replace
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot import Copilot, answer_opening, quoted_answer, step_replies
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
    # the passage's three units, the one naming the question's key term first
    assert first.startswith("Plan D1 delivers the next working day. [1] ")
    assert second.startswith("Plan D2 delivers within 4 working days. [1] ")
    assert {u.strip() + " [1]" for u in first.split(" [1]") if u.strip()} == units
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
    assert answer.text.startswith("Plan D1 delivers the next working day. [1] ")
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


async def test_units_are_ranked_by_key_terms_then_nearness_each_text_once() -> None:
    def cited(number: int, text: str) -> Citation:
        return Citation(number, "a.md", "A", None, (), text[:20], number, 0.5, text=text)

    citations = [
        cited(1, "Plan D1 is quick. Plans renew every month."),
        cited(2, "Plans renew every month. Plan D2 is slow."),
    ]
    quotes = await quoted_answer.ranked("Is plan D2 slow?", citations, HashingEmbedder())
    assert quotes[0] == (2, "Plan D2 is slow.")
    assert sorted(quotes) == [
        (1, "Plan D1 is quick."),
        (1, "Plans renew every month."),
        (2, "Plan D2 is slow."),
    ]
    assert quoted_answer.best(quotes[:2], [2]) == "Plan D2 is slow. [2]"
    assert quoted_answer.best(quotes, [2, 1]) == " ".join(f"{t} [{n}]" for n, t in quotes)
    assert quoted_answer.best(quotes, [7]) is None


def test_units_read_alone_a_table_row_with_its_header_an_item_without_its_bullet() -> None:
    passage = (
        "| Floor | Location | Printer |\n| --- | --- | --- |\n| 2 | Beside the IT Bar | HH-2 |\n"
        "| 5 | No printer on floor 5 | - |\n\n- **Windows:** open Printers and scanners.\n"
        "- OK.\n\nJobs are deleted after 24 hours. Colour costs 8p."
    )
    assert quoted_answer.readable_units(passage) == [
        "Floor: 2; Location: Beside the IT Bar; Printer: HH-2",
        "Floor: 5; Location: No printer on floor 5",
        "**Windows:** open Printers and scanners.",
        "Jobs are deleted after 24 hours.",
        "Colour costs 8p.",
    ]


def test_a_markdown_table_cut_from_its_header_gives_its_cells_unnamed() -> None:
    passage = "| 4 | East wing | HH-4 |\n| 5 | No printer on floor 5 | - |\n\nA | B\nx | y"
    assert quoted_answer.readable_units(passage) == [
        "4; East wing; HH-4",
        "5; No printer on floor 5",
        "A: x; B: y",
    ]


def test_the_0_5b_quotes_its_answers_and_the_1_5b_writes_them() -> None:
    assert profile_for("local:qwen2.5-coder-0.5b").quoted_answers is True
    assert profile_for("local:qwen2.5-coder-1.5b").quoted_answers is False
    assert profile_for("local:/models/other.gguf").quoted_answers is False
