"""Which passages a follow-up gets: a larger pool, ranked by each passage's best unit too.

A follow-up asks for one detail ("Can I have it connected on my laptop and my desktop at
the same time?", "Where do I get it if my Windows laptop doesn't have it?"), and a
passage's embedding is of all its text: on issue 20's follow-up sets the passage holding
the answering sentence ranked 4th to 6th by the fused score, behind passages of the same
topic that say more about it as a whole (docs/local-model.md, "Follow-ups (tenth
round)"). So a follow-up's searches bring `POOL` times `top_k` candidates, and each is
ranked by its fused score plus `UNIT_WEIGHT` times the nearness of its nearest unit
(sentence, list item, table row) to the question, half-weighted with the question and
its earlier ones, as a quoted answer ranks units (copilot/quoted_answer.py). As many
passages are kept as before (`top_k`), cut to the same budget: the prompt does not grow.

Under strict grounding a short follow-up that names an identifier ("What does P3
actually mean?", "What about a P4?") scores low by embedding whatever the passages say
(0.22-0.27 against the 0.3 floor for the priority table that names it); a passage naming
one of the follow-up's key terms (passage_budget's: P3, F9, HD-1006, 4357) passes the
floor.
"""

from __future__ import annotations

from collections.abc import Sequence

from pilothouse.copilot.passage_budget import key_terms
from pilothouse.copilot.quote_units import readable_units
from pilothouse.knowledge.documents import SearchResult
from pilothouse.knowledge.embeddings import Embedder, cosine

POOL = 2
"""A follow-up's searches bring this many times `top_k` candidates."""
UNIT_WEIGHT = 0.5
"""How much a passage's nearest unit counts beside its fused score."""
CONTEXT_WEIGHT = 0.5
"""How much the question with its earlier ones counts in a unit's nearness."""


async def by_units(
    results: Sequence[SearchResult], question: str, context_query: str, embedder: Embedder
) -> list[SearchResult]:
    """`results`, best first by their fused score plus `UNIT_WEIGHT` times the nearness
    of their nearest unit to the follow-up (see the module doc)."""
    if not results:
        return []
    units = [readable_units(r.text) or [r.text] for r in results]
    flat = [u for passage in units for u in passage]
    vectors = await embedder.embed([question, context_query, *flat])
    asked, context = vectors[0], vectors[1]
    scores: dict[int, float] = {}
    at = 2
    for result, passage in zip(results, units, strict=True):
        nearest = max(
            (cosine(asked, v) + CONTEXT_WEIGHT * cosine(context, v)) / (1 + CONTEXT_WEIGHT)
            for v in vectors[at : at + len(passage)]
        )
        at += len(passage)
        scores[result.chunk_id] = result.score + UNIT_WEIGHT * nearest
    return sorted(results, key=lambda r: (-scores[r.chunk_id], r.chunk_id))


def names_key_term(question: str, passage: str) -> bool:
    """Whether `passage` names one of `question`'s key terms (an identifier)."""
    wanted = key_terms(question)
    return bool(wanted) and bool(wanted & key_terms(passage))
