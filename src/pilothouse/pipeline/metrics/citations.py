"""Citation quality, split the way the CLI shows sources: passages the model cited with
[n], and passages Pilothouse only matched to an answer that gave no [n]. Each applies
to cases that expect sources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pilothouse.copilot.events import Citation
from pilothouse.pipeline.metrics.base import CaseContext, Metric, Score
from pilothouse.pipeline.metrics.checks import SourceAmong, matching

if TYPE_CHECKING:
    from pilothouse.pipeline.execute import CaseOutcome


class CitationCited(SourceAmong):
    name = "citation_cited"
    description = "an expected source is among the passages the model itself cited with [n]"
    kind = "rate"

    def passages(self, outcome: CaseOutcome) -> Sequence[Citation]:
        return [c for c in outcome.citations if not c.inferred]

    def missed(self, passages: Sequence[Citation]) -> str:
        return f"{len(passages)} passage(s) cited with [n]"


class CitationMatched(SourceAmong):
    name = "citation_matched"
    description = (
        "the expected source was credited only by matching (the model gave no [n]): "
        "the share of answers that lean on Pilothouse to find their source"
    )
    kind = "rate"
    direction = "lower"

    def passages(self, outcome: CaseOutcome) -> Sequence[Citation]:
        return [c for c in outcome.citations if c.inferred]


class CitationPrecision(Metric):
    name = "citation_precision"
    description = "of the passages the answer cites, the share that are expected sources"
    kind = "score"

    async def score(self, context: CaseContext) -> Score | None:
        expected = context.case.expect.sources
        citations = context.outcome.citations
        if not expected or not citations:
            return None
        good = matching(citations, expected)
        wrong = [c.where for c in citations if c not in good]
        detail = f"not expected: {'; '.join(wrong)}" if wrong else ""
        return Score(len(good) / len(citations), detail)


class RetrievalHit(SourceAmong):
    name = "retrieval_hit"
    description = "retrieval put an expected source among the passages the model was given"
    kind = "rate"

    def passages(self, outcome: CaseOutcome) -> Sequence[Citation]:
        return outcome.retrieved

    def missed(self, passages: Sequence[Citation]) -> str:
        return f"retrieved: {'; '.join(c.where for c in passages) or 'nothing'}"


CITATION_CITED = CitationCited()
CITATION_MATCHED = CitationMatched()
CITATION_PRECISION = CitationPrecision()
RETRIEVAL_HIT = RetrievalHit()
