"""Free text keeps to the scripts of the conversation (issue 20, ninth round): the 0.5B
wrote a stray "我" into an English ticket summary. The answer grammars leave out the
scripts nothing in the run is written in; a free-text argument has their characters
taken out. Grammar-level tests, then scripted small models on the shop copilot."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot import answer_opening
from pilothouse.copilot.scripts_used import absent, confined, without_absent_scripts
from pilothouse.models import FunctionModel
from pilothouse.types import ModelRequest
from tests.copilot.test_grounded_args import shop_state
from tests.copilot.test_stepped_turns import SMALL, ask, shop, small_model

__all__ = ["shop"]  # the fixture


def in_latin(grammar: str) -> str:
    """`grammar` as a run in Latin script only confines it."""
    return confined(grammar, absent(["Express costs 6 pounds, £6 – “next day”."]))


def _class(grammar: str, rule: str) -> str:
    return grammar.split(f"{rule} ::= ", 1)[1].split("\n", 1)[0]


def test_a_latin_run_leaves_han_and_the_other_scripts_out_of_the_answer_grammar() -> None:
    grammar = in_latin(answer_opening.ANSWER_GRAMMAR)
    char = _class(grammar, "char")
    assert char.startswith('[^"\\\\\\x7F\\x00-\\x1F')  # the JSON string's own exclusions
    for excluded in ("\\u4E00-\\u9FFF", "\\u3040-\\u30FF", "\\uAC00-\\uD7AF", "\\u0400-\\u052F"):
        assert excluded in char
    assert '"u" "00" [0-9a-fA-F]{2}' in char  # no escape writes "\\u6211" either
    assert grammar.startswith(answer_opening.ANSWER_GRAMMAR.split("\n", 1)[0])


def test_the_first_character_of_a_worded_answer_is_confined_too() -> None:
    first = _class(in_latin(answer_opening.WORDED_ANSWER_GRAMMAR), "first")
    assert first.startswith("[\\u0030-\\u0039\\u0041-\\u005A\\u0061-\\u007A\\u00C0-")
    assert "\\u4E00" not in first and "\\u3190-\\u319F" in first  # Han's blocks cut out
    assert "\\u9FFF" not in first.replace("\\uA000", "")


@pytest.mark.parametrize(
    ("texts", "kept"),
    [
        (["Mein Bildschirm flackert. Bitte öffne ein Ticket."], []),
        (["我的显示器一直在闪烁"], ["Han"]),
        (["Монитор мигает", "My monitor flickers"], ["Cyrillic"]),
    ],
)
def test_the_scripts_used_are_kept(texts: list[str], kept: list[str]) -> None:
    from pilothouse.copilot.scripts_used import SCRIPTS

    ranges = absent(texts)
    for name, spans in SCRIPTS.items():
        assert all(span in ranges for span in spans) is (name not in kept), name
    assert (
        confined(
            answer_opening.ANSWER_GRAMMAR,
            absent(["".join(chr(lo) for spans in SCRIPTS.values() for lo, _ in spans)]),
        )
        == answer_opening.ANSWER_GRAMMAR
    )


def test_a_stray_character_is_taken_out_of_free_text() -> None:
    ranges = absent(["My monitor flickers"])
    assert without_absent_scripts("Monitor 我 flickers, screen 闪 .", ranges) == (
        "Monitor flickers, screen."
    )
    assert without_absent_scripts("Monitor flickers", ranges) == "Monitor flickers"
    # tidied as an identifier's removal from free text is (util/spacing.py)
    assert without_absent_scripts("It only affects one (the left 我)", ranges) == (
        "It only affects one (the left)"
    )


async def test_a_free_text_argument_keeps_to_the_scripts_of_the_run(
    shop: Path, settings: Settings
) -> None:
    model = small_model(
        "call:add_note", arguments='{"summary": "Parcel 我 is late"}', answer='{"answer": "Noted."}'
    )
    await ask(shop, settings, model, "Please add a note: my parcel is late.")
    assert shop_state(shop)["notes"] == ["Parcel is late"]


async def test_the_answer_is_decoded_under_the_confined_grammar(
    shop: Path, settings: Settings
) -> None:
    grammars: list[str | None] = []

    def reply(request: ModelRequest) -> str:
        grammars.append(request.grammar)
        if request.messages[-1].text == answer_opening.SOURCES_START:
            return "1"
        return 'Express costs 6 pounds."}'

    model = FunctionModel(
        reply, model_id="local:small", profile=replace(SMALL, grammar=True), continues=True
    )
    await ask(shop, settings, model, "How much is express delivery?")
    assert grammars[-1] == in_latin(answer_opening.ANSWER_GRAMMAR)
    assert "\\u4E00-\\u9FFF" in (grammars[-1] or "")
