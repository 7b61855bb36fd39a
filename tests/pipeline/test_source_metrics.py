"""The metrics that look for an expected source among passages: what the model cited
with [n], what Pilothouse only matched, what retrieval gave the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.copilot.events import Citation
from pilothouse.pipeline.execute import CaseOutcome
from pilothouse.pipeline.metrics.base import CaseContext, Metric, Score
from pilothouse.pipeline.metrics.checks import SOURCES
from pilothouse.pipeline.metrics.citations import (
    CITATION_CITED,
    CITATION_MATCHED,
    CITATION_PRECISION,
    RETRIEVAL_HIT,
)
from pilothouse.pipeline.suite import Case, Suite


def passage(source: str, number: int, *, inferred: bool = False) -> Citation:
    return Citation(number, source, source, None, (), "", number, 0.5, inferred=inferred)


def context(outcome: CaseOutcome, *, sources: bool = True) -> CaseContext:
    expect = {"sources": [{"file": "vpn.md"}]} if sources else {"answer_includes": ["vpn"]}
    case = Case.model_validate({"id": "vpn", "question": "How do I connect?", "expect": expect})
    return CaseContext(Suite(suite="s", cases=[case]), case, outcome, Path("."))


CITED = passage("docs/vpn.md", 1)
MATCHED = passage("docs/vpn.md", 2, inferred=True)
OTHER = passage("docs/printer.md", 3)


@pytest.mark.parametrize(
    ("metric", "outcome", "expected"),
    [
        (SOURCES, CaseOutcome("answered", citations=(MATCHED,)), Score(1.0)),
        (SOURCES, CaseOutcome("answered"), Score(0.0, "cited: nothing")),
        (
            SOURCES,
            CaseOutcome("answered", citations=(OTHER,)),
            Score(0.0, "cited: docs/printer.md"),
        ),
        (CITATION_CITED, CaseOutcome("answered", citations=(CITED, OTHER)), Score(1.0)),
        (
            CITATION_CITED,
            CaseOutcome("answered", citations=(MATCHED, OTHER)),
            Score(0.0, "1 passage(s) cited with [n]"),
        ),
        (CITATION_MATCHED, CaseOutcome("answered", citations=(MATCHED,)), Score(1.0)),
        (CITATION_MATCHED, CaseOutcome("answered", citations=(CITED,)), Score(0.0)),
        (RETRIEVAL_HIT, CaseOutcome("answered", retrieved=(OTHER, CITED)), Score(1.0)),
        (RETRIEVAL_HIT, CaseOutcome("answered"), Score(0.0, "retrieved: nothing")),
        (
            RETRIEVAL_HIT,
            CaseOutcome("answered", retrieved=(OTHER,)),
            Score(0.0, "retrieved: docs/printer.md"),
        ),
    ],
)
async def test_an_expected_source_among_the_passages(
    metric: Metric, outcome: CaseOutcome, expected: Score
) -> None:
    assert await metric.score(context(outcome)) == expected


async def test_citation_precision_is_the_share_of_expected_sources_among_the_cited() -> None:
    outcome = CaseOutcome("answered", citations=(CITED, OTHER))
    score = await CITATION_PRECISION.score(context(outcome))
    assert score == Score(0.5, "not expected: docs/printer.md")


@pytest.mark.parametrize(
    "metric", [SOURCES, CITATION_CITED, CITATION_MATCHED, RETRIEVAL_HIT, CITATION_PRECISION]
)
async def test_a_case_without_expected_sources_is_not_scored(metric: Metric) -> None:
    outcome = CaseOutcome("answered", citations=(CITED,), retrieved=(CITED,))
    assert await metric.score(context(outcome, sources=False)) is None
