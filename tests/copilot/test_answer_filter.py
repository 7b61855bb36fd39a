"""Nothing internal reaches the user: runtime notes, instructions, parameter
descriptions, function names and call syntax are dropped from answers as they stream;
markers to no passage are removed; ordinary text streams word by word."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.copilot.answer_filter import AnswerFilter, InternalTexts
from pilothouse.copilot.run_endings import STEP_LIMIT_NOTE
from pilothouse.models import ScriptedModel, tool_call
from pilothouse.storage.traces import TraceStore
from pilothouse.tracing import attributes as A
from pilothouse.types import TextDelta
from tests.copilot.test_grounded_args import SHOP, make_shop

INTERNAL = InternalTexts.of(
    [STEP_LIMIT_NOTE, "Answer from these passages and cite them as [n]."],
    ["order_status", "search"],
)


def stream(answer: AnswerFilter, text: str, size: int = 3) -> list[str]:
    pieces = [answer.feed(text[i : i + size]) for i in range(0, len(text), size)]
    return [*pieces, answer.finish()]


def test_ordinary_text_streams_word_by_word_and_markers_are_never_cut() -> None:
    answer = AnswerFilter(INTERNAL, frozenset({1, 2}))
    pieces = stream(answer, "The T2 works with 2.4 GHz Wi-Fi only [1]. It cannot join 5 GHz [2].")
    assert answer.text == "The T2 works with 2.4 GHz Wi-Fi only [1]. It cannot join 5 GHz [2]."
    released = [p for p in pieces if p]
    assert len(released) > 4  # not one piece at the end
    assert all(p.count("[") == p.count("]") for p in released)


def test_an_instruction_as_the_answer_is_dropped() -> None:
    # (The runtime's notes are replaced by a plain sentence: tests/copilot/test_runtime_notes.py.)
    answer = AnswerFilter(INTERNAL)
    stream(answer, "Answer from these passages and cite them as [n].")
    assert answer.emptied and answer.dropped[0][1] == "instructions"
    answer = AnswerFilter(INTERNAL, frozenset({1}))
    stream(answer, "Answer from these passages and cite them as [n]. Returns take 30 days [1].")
    assert answer.text == "Returns take 30 days [1]."


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"tool_calls": [{"name": "order_status"}]}', "call_syntax"),
        ('Sure. order_status(order_id="SO-1001")', "function_name"),
        ("I will call:order_status now.", "call_syntax"),
        ("<tool_result name=x>done</tool_result>", "call_syntax"),
    ],
)
def test_function_names_and_call_syntax_are_dropped(text: str, reason: str) -> None:
    answer = AnswerFilter(INTERNAL)
    stream(answer, text)
    assert answer.dropped[-1][1] == reason
    assert "order_status" not in answer.text and "{" not in answer.text


def test_a_tool_named_like_a_word_is_left_alone_and_bad_markers_are_counted() -> None:
    answer = AnswerFilter(INTERNAL, frozenset({1}))
    stream(answer, "You can search the catalogue [1] or the archive [4].")
    assert answer.text == "You can search the catalogue [1] or the archive."
    assert answer.invalid_markers == [4]


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return make_shop(
        tmp_path, SHOP.format(extra="").replace("max_tool_steps: 3", "max_tool_steps: 0")
    )


async def test_the_step_limit_note_never_becomes_the_answer(shop: Path, settings: Settings) -> None:
    # The model wants a tool past the limit, then repeats the runtime's note: the user is
    # told plainly what happened instead.
    model = ScriptedModel([tool_call("add_note", {"summary": "late parcel"}), STEP_LIMIT_NOTE])
    copilot = await Copilot.open(shop, settings=settings, models=[model])
    try:
        events = [e async for e in copilot.stream("Note that my parcel is late")]
    finally:
        await copilot.aclose()
    shown = "".join(e.text for e in events if isinstance(e, TextDelta))
    answer = events[-1].answer  # type: ignore[attr-defined]
    assert answer.status == "step_limit"
    said = "I could not finish this: it needed more steps than I may take for one question."
    assert answer.text == said and shown == said
    store = TraceStore(settings.database_path)
    [guard] = [s for s in store.get_run(answer.run_id).spans if s.kind == "guard"]
    store.close()
    assert guard.attributes[A.GUARD_REASONS] == ["runtime_note", "runtime_note"]


def test_punctuation_alone_is_no_answer_but_punctuation_after_words_is_kept() -> None:
    answer = AnswerFilter(INTERNAL)
    stream(answer, "...")
    assert answer.emptied and answer.dropped == [("...", "no_words")]
    answer = AnswerFilter(INTERNAL)
    stream(answer, "Yes. ... Really!")
    assert answer.text == "Yes. ... Really!" and not answer.dropped
