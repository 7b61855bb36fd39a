"""Citation quality, split the way the CLI shows sources: passages the model cited with
[n], and passages Pilothouse only matched to an answer that gave no [n]. Each applies
to cases that expect sources."""

from __future__ import annotations

from pilothouse.pipeline.metrics.base import CaseContext, Metric, Score
from pilothouse.pipeline.metrics.checks import matching


class CitationCited(Metric):
    name = "citation_cited"
    description = "an expected source is among the passages the model itself cited with [n]"
    kind = "rate"

    async def score(self, context: CaseContext) -> Score | None:
        expected = context.case.expect.sources
        if not expected:
            return None
        cited = [c for c in context.outcome.citations if not c.inferred]
        ok = bool(matching(cited, expected))
        return Score(1.0 if ok else 0.0, "" if ok else f"{len(cited)} passage(s) cited with [n]")


class CitationMatched(Metric):
    name = "citation_matched"
    description = (
        "the expected source was credited only by matching (the model gave no [n]): "
        "the share of answers that lean on Pilothouse to find their source"
    )
    kind = "rate"
    direction = "lower"

    async def score(self, context: CaseContext) -> Score | None:
        expected = context.case.expect.sources
        if not expected:
            return None
        matched = [c for c in context.outcome.citations if c.inferred]
        hit = bool(matching(matched, expected))
        return Score(1.0 if hit else 0.0)


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


class RetrievalHit(Metric):
    name = "retrieval_hit"
    description = "retrieval put an expected source among the passages the model was given"
    kind = "rate"

    async def score(self, context: CaseContext) -> Score | None:
        expected = context.case.expect.sources
        if not expected:
            return None
        ok = bool(matching(context.outcome.retrieved, expected))
        shown = "; ".join(c.where for c in context.outcome.retrieved) or "nothing"
        return Score(1.0 if ok else 0.0, "" if ok else f"retrieved: {shown}")


CITATION_CITED = CitationCited()
CITATION_MATCHED = CitationMatched()
CITATION_PRECISION = CitationPrecision()
RETRIEVAL_HIT = RetrievalHit()
