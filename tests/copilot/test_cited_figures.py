"""A source the model named that lacks the answer's figures is replaced by the passage
of the turn that holds them, as the runtime's citation (copilot/cited_figures.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot.cited_figures import checked_sources, figures
from pilothouse.copilot.events import Citation
from pilothouse.models import FunctionModel
from pilothouse.types import ModelRequest
from tests.copilot.test_stepped_turns import SMALL, ask, shop

__all__ = ["shop"]


def cite(number: int, text: str) -> Citation:
    return Citation(
        number, "kb.md", "KB", None, ("KB", str(number)), text[:20], number, 0.5, text=text
    )


PASSAGES = [
    cite(1, "Colour pages are charged at 8p per page (black and white: 1p)."),
    cite(2, "Prices are internal charges to the cost centre and exclude VAT."),
    cite(3, "Room 6.02 on floor 6 has the secure printer; opening 07:30 to 19:00."),
]


def test_the_figures_of_an_answer() -> None:
    assert figures("It costs 8p, from 07:30 in room 6.02 (port 443) or £6.") == {
        "8p",
        "07:30",
        "6.02",
        "443",
        "£6",
    }
    assert figures("Press the dial once.") == frozenset()


def test_a_named_source_without_the_figures_is_replaced_by_the_one_holding_them() -> None:
    assert checked_sources("A colour page costs 8p.", [2], PASSAGES) == ([1], {1})
    assert checked_sources("It is in room 6.02 from 07:30.", [1, 2], PASSAGES) == ([3], {3})


def test_nothing_changes_without_figures_or_when_a_named_source_holds_them() -> None:
    assert checked_sources("Ask the service desk.", [2], PASSAGES) == ([2], set())
    assert checked_sources("A colour page costs 8p.", [1], PASSAGES) == ([1], set())
    assert checked_sources("A colour page costs 8p.", [2, 1], PASSAGES) == ([2, 1], set())
    # No passage holds every figure: the model's sources stand.
    assert checked_sources("8p from 07:30.", [2], PASSAGES) == ([2], set())


def naming(heading: str, answer: str) -> FunctionModel:
    """A small model whose answer names the passage under `heading` (by its number in
    the prompt) as its source."""

    def reply(request: ModelRequest) -> str:
        step = request.messages[-1].text.rsplit("\n", 1)[-1]
        if step.startswith("Step: decide"):
            return json.dumps({"decision": "answer"})
        found = re.search(rf"^\[(\d+)\] \([^)]*> {heading}\)", request.messages[-1].text, re.M)
        assert found is not None, "both passages are given"
        return json.dumps({"sources": [int(found.group(1))], "answer": answer})

    return FunctionModel(reply, model_id="local:small", profile=SMALL)


QUESTION = "What do express delivery and returns cost?"


@pytest.mark.parametrize(
    ("answer", "heading", "by_runtime"),
    [
        # "6" is in the Express passage only: the runtime cites it, as matched.
        ("Express costs 6 pounds.", "Express", True),
        # The named passage holds "30": the model's own citation.
        ("Returns are free for 30 days.", "Returns", False),
    ],
)
async def test_the_answer_cites_the_passage_holding_its_figures(
    shop: Path, settings: Settings, answer: str, heading: str, by_runtime: bool
) -> None:
    events = await ask(shop, settings, naming("Returns", answer), QUESTION)
    shown = events[-1].answer  # type: ignore[attr-defined]
    [citation] = shown.citations
    assert citation.headings[-1] == heading
    assert shown.text == f"{answer} [{citation.number}]"
    assert citation.inferred is by_runtime
