"""A small model's answer from passages is quoted from them (profile `quoted_answers`):
after the sources step, the answer's grammar allows only the unit of the named passages
nearest the question (its key terms first, then by embedding), with its marker. A
follow-up quotes a passage given above (its text is not printed again); a profile
without the field, and the 1.5B's, keeps the free answer."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot import answer_opening, quoted_answer
from pilothouse.copilot.events import Citation
from pilothouse.knowledge.testing import HashingEmbedder
from pilothouse.models import FunctionModel
from pilothouse.models.profiles import profile_for
from pilothouse.types import ModelRequest
from tests.copilot.test_follow_up_prompts import two_turns
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


def allowed(grammar: str) -> str:
    """The answer a quoted answer's grammar allows, as the JSON string holds it."""
    literal = re.match(r'root ::= "((?:[^"\\]|\\.)*)" "\\"}"\n\Z', grammar)
    assert literal is not None, grammar
    return str(json.loads('"' + re.sub(r"\\(.)", r"\1", literal.group(1)) + '"'))


def quoting_model() -> FunctionModel:
    """A model with assistant prefill that names passage 1 and writes what the answer's
    grammar allows (its own words where any JSON string is)."""

    def reply(request: ModelRequest) -> str:
        last = request.messages[-1]
        assert last.role == "assistant" and request.grammar is not None
        if last.text == answer_opening.SOURCES_START:
            return "1"
        if request.grammar == answer_opening.ANSWER_GRAMMAR:
            return 'In my own words."}'
        return allowed(request.grammar) + '"}'

    return FunctionModel(reply, model_id="local:small", profile=QUOTING, continues=True)


async def test_a_follow_up_quotes_the_unit_nearest_it_from_a_passage_given_above(
    plans: Path, settings: Settings
) -> None:
    model = quoting_model()
    turns = await two_turns(plans, settings, model, "How fast is plan D1?", "And plan D2?")
    grammars = [r.grammar for r in model.requests if r.messages[-1].text.endswith('"answer": "')]
    first, second = (allowed(g or "") for g in grammars)
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
    assert turns.answers[1].text == second
    assert [(c.number, c.inferred) for c in turns.answers[1].citations] == [(1, False)]
    # the conversation keeps the whole JSON reply, as the model's cache holds it
    assert turns.turn2[0].messages[2].text == f'{{"sources": [1], "answer": "{first}"}}'


async def test_a_profile_without_quoted_answers_writes_its_own(
    plans: Path, settings: Settings
) -> None:
    free = replace(QUOTING, quoted_answers=False)
    model = quoting_model()
    model.profile = free
    await two_turns(plans, settings, model, "How fast is plan D1?", "And plan D2?")
    answers = [r for r in model.requests if r.messages[-1].text.endswith('"answer": "')]
    assert answers and all(r.grammar == answer_opening.ANSWER_GRAMMAR for r in answers)


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


def test_the_grammar_allows_the_quote_as_json_string_characters() -> None:
    quote = 'Print to "FollowMe" at \\\\print01. [2]'
    assert allowed(quoted_answer.grammar(quote)) == quote


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
