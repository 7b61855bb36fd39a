"""Citations: [n] markers map to passages; without markers the supporting passage is
inferred, and an unsupported answer gets none."""

from __future__ import annotations

from pathlib import Path

from pilothouse.copilot.events import Citation
from pilothouse.copilot.grounding import _relative, cited, user_turn


def passage(number: int, text: str, source: str = "faq.md") -> Citation:
    return Citation(number, source, "FAQ", None, ("FAQ",), text[:40], number, 1.0, text=text)


PASSAGES = [
    passage(1, "Standard delivery takes 2 to 4 working days."),
    passage(2, "The batteries last about one year; a battery icon shows when they are low."),
    passage(3, "Every T2 has a 2-year warranty from the date of delivery."),
]


def test_markers_pick_passages_in_order_of_first_mention() -> None:
    assert [c.number for c in cited("See [3] and [1], again [3].", PASSAGES)] == [3, 1]
    assert all(not c.inferred for c in cited("See [2].", PASSAGES))


def test_unknown_markers_cite_nothing_and_infer_nothing() -> None:
    assert cited("See [9].", PASSAGES) == []


def test_without_markers_the_supporting_passage_is_inferred() -> None:
    [citation] = cited("They last about one year.", PASSAGES)
    assert citation.number == 2 and citation.inferred


def test_an_answer_no_passage_supports_gets_no_citation() -> None:
    assert cited("The moon is made of cheese.", PASSAGES) == []
    assert cited("", PASSAGES) == []


def test_sources_are_shown_relative_to_the_copilot(tmp_path: Path) -> None:
    inside = tmp_path / "knowledge" / "vpn.md"
    assert _relative(str(inside), tmp_path) == "knowledge/vpn.md"
    assert _relative("/elsewhere/x.md", tmp_path) == "/elsewhere/x.md"
    assert _relative("https://intranet.example/page", tmp_path) == "https://intranet.example/page"


def test_the_user_turn_mentions_tools_only_when_there_are_some() -> None:
    assert "call a tool" in user_turn("q", "[1] (a)\ntext", strict=True, tools=True)
    assert "tool" not in user_turn("q", "[1] (a)\ntext", strict=True, tools=False)
    assert "does not cover" in user_turn("q", None, strict=True)
    assert user_turn("q", None, strict=False) == "q"
