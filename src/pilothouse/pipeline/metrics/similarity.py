"""Semantic similarity of the answer to the reference answer: the cosine of their
embeddings from the knowledge layer's embedder (the copilot's, else the local
MiniLM), clipped at 0."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from pilothouse.pipeline.metrics.base import CaseContext, Metric, Score

_MARKERS = re.compile(r"\s*\[\d{1,3}\]")


def without_markers(text: str) -> str:
    """The text without its [n] citation markers."""
    return _MARKERS.sub("", text).strip()


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """The cosine of two vectors, clipped at 0."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return max(0.0, dot / norms) if norms else 0.0


class Similarity(Metric):
    name = "similarity"
    description = "cosine similarity of the answer's and the reference's embeddings (0..1)"
    kind = "score"

    async def score(self, context: CaseContext) -> Score | None:
        reference = context.case.reference
        embedder = context.services.embedder
        if reference is None or embedder is None:
            return None
        answer = without_markers(context.outcome.text)
        if not answer:
            return Score(0.0, "empty answer")
        a, b = await embedder.embed([answer, reference])
        return Score(cosine(a, b))


SIMILARITY = Similarity()
