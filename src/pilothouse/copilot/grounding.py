"""Grounding: passages retrieved for a question, as numbered context for the model,
and the citations an answer's [n] markers point to.

The context goes in the last user turn, after everything that stays the same between
requests (instructions, history), so a local model reuses its cached prompt prefix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pilothouse.copilot.events import Citation
from pilothouse.knowledge.documents import SearchResult

_MARKER = re.compile(r"\[(\d{1,3})\]")
NOTHING_FOUND = (
    "No passage in the knowledge base matches this question. Do not answer factual "
    "questions from memory: say that the knowledge base does not cover it."
)


def citations_from(results: Sequence[SearchResult], snippet_chars: int = 240) -> list[Citation]:
    """Number the passages 1..n in rank order."""
    citations = []
    for number, result in enumerate(results, start=1):
        snippet = " ".join(result.text.split())
        if len(snippet) > snippet_chars:
            snippet = snippet[: snippet_chars - 1].rstrip() + "…"
        citations.append(
            Citation(
                number=number,
                source=result.source,
                title=result.title,
                page=result.page,
                headings=tuple(result.headings),
                snippet=snippet,
                chunk_id=result.chunk_id,
                score=result.score,
            )
        )
    return citations


def context_block(results: Sequence[SearchResult], citations: Sequence[Citation]) -> str:
    """The passages as the model sees them: `[n] (where)` then the text."""
    blocks = []
    for result, citation in zip(results, citations, strict=True):
        blocks.append(f"[{citation.number}] ({citation.where})\n{result.text.strip()}")
    return "\n\n".join(blocks)


def user_turn(question: str, context: str | None, *, strict: bool) -> str:
    """The final user message: context (if any), then the question."""
    if context:
        return (
            "Passages from the knowledge base:\n\n"
            f"{context}\n\n"
            "Answer from these passages and cite them as [n].\n\n"
            f"Question: {question}"
        )
    if strict:
        return f"{NOTHING_FOUND}\n\nQuestion: {question}"
    return question


def cited(answer: str, citations: Sequence[Citation]) -> list[Citation]:
    """The citations an answer refers to with [n], in the order first cited."""
    by_number = {c.number: c for c in citations}
    seen: list[Citation] = []
    for match in _MARKER.finditer(answer):
        citation = by_number.get(int(match.group(1)))
        if citation is not None and citation not in seen:
            seen.append(citation)
    return seen
