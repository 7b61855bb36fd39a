"""The relevance floor of strict grounding: below it, a passage is not about the
question, and a question with no passage left is not covered.

The floor is a score of the retrieval mode in use, so its default is calibrated per
mode (benchmarks/grounded/calibrate.py: the best passage's score for questions the
knowledge answers against questions it does not, on the retrieval benchmark's corpus
and on the example copilots' eval suites; figures in docs/knowledge.md). Modes
without a calibrated floor (BM25's unbounded scores, reciprocal rank fusion) get
none unless `knowledge.min_relevance` sets one.
"""

from __future__ import annotations

from pilothouse.copilot.definition_sections import KnowledgeSettings

CALIBRATED: dict[tuple[str, str], float] = {
    ("hybrid", "weighted"): 0.3,
    ("dense", "weighted"): 0.3,
    ("dense", "rrf"): 0.3,
}
"""(mode, fusion) -> the default floor."""


def floor_for(settings: KnowledgeSettings) -> float | None:
    """The floor strict grounding applies: `min_relevance` when set, the calibrated
    default of the retrieval mode otherwise, None with `off` or without a default."""
    if settings.min_relevance == "off":
        return None
    if settings.min_relevance is not None:
        return float(settings.min_relevance)
    retrieval = settings.retrieval
    return CALIBRATED.get((retrieval.mode, retrieval.fusion))
