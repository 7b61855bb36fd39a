"""Grounding: passages retrieved for a question, as numbered context for the model,
and the citations an answer's [n] markers point to.

The context goes in the last user turn, after everything that stays the same between
requests (instructions, history), so a local model reuses its cached prompt prefix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pilothouse.copilot import follow_up_passages
from pilothouse.copilot.definition_sections import RetrievalSettings
from pilothouse.copilot.events import Citation
from pilothouse.copilot.follow_ups import earlier_questions
from pilothouse.copilot.passage_budget import fit_passages
from pilothouse.knowledge.base import KnowledgeBase
from pilothouse.knowledge.documents import SearchResult
from pilothouse.knowledge.fusion import FusionSettings
from pilothouse.knowledge.keywords import DEFAULT_MAX_DF
from pilothouse.knowledge.rerank import RelevanceJudge, RerankSettings
from pilothouse.knowledge.retrieval import SearchOptions
from pilothouse.tracing import Tracer
from pilothouse.tracing import attributes as A
from pilothouse.types import Message

_MARKER = re.compile(r"\[(\d{1,3})\]")
NOTHING_FOUND = (
    "No passage in the knowledge base matches this question. Do not answer factual "
    "questions from memory: say that the knowledge base does not cover it."
)


def citations_from(
    results: Sequence[SearchResult], base: Path | None = None, snippet_chars: int = 240
) -> list[Citation]:
    """Number the passages 1..n in rank order; sources inside `base` are shown
    relative to it (shorter for the model, clearer for people)."""
    citations = []
    for number, result in enumerate(results, start=1):
        snippet = result.snippet(snippet_chars)
        citations.append(
            Citation(
                number=number,
                source=_relative(result.source, base),
                title=result.title,
                page=result.page,
                headings=tuple(result.headings),
                snippet=snippet,
                chunk_id=result.chunk_id,
                score=result.score,
                text=result.text,
            )
        )
    return citations


def _relative(source: str, base: Path | None) -> str:
    if base is None or "://" in source:
        return source
    try:
        return Path(source).resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return source


def context_block(citations: Sequence[Citation], texts: Sequence[str]) -> str:
    """The passages as the model sees them: `[n] (where)` then the text."""
    blocks = []
    for citation, text in zip(citations, texts, strict=True):
        blocks.append(f"[{citation.number}] ({citation.where})\n{text.strip()}")
    return "\n\n".join(blocks)


PASSAGES = "Passages from the knowledge base:"
"""What a user turn with passages begins with (the emulated steps' turn too)."""


def user_turn(question: str, context: str | None, *, strict: bool, tools: bool = False) -> str:
    """The final user message: context (if any), then the question."""
    if context:
        how = "Answer from these passages and cite them as [n]."
        if tools:
            how = (
                "If the question is about these passages, answer from them and cite them "
                "as [n]. If it asks about a record (an order, a ticket, an account) or asks "
                "you to do something, call a tool instead."
            )
        return f"{PASSAGES}\n\n{context}\n\n{how}\n\nQuestion: {question}"
    if strict:
        note = NOTHING_FOUND + (" You may still use a tool if one fits." if tools else "")
        return f"{note}\n\nQuestion: {question}"
    return question


def markers(text: str) -> list[int]:
    """The [n] numbers in `text`, in order."""
    return [int(m.group(1)) for m in _MARKER.finditer(text)]


def cited(answer: str, citations: Sequence[Citation]) -> list[Citation]:
    """The citations an answer refers to with [n], in the order first cited. When it
    has no [n] at all (small models often leave them out), the passage that contains
    most of the answer's words is cited instead, marked `inferred`."""
    by_number = {c.number: c for c in citations}
    seen: list[Citation] = []
    for match in _MARKER.finditer(answer):
        citation = by_number.get(int(match.group(1)))
        if citation is not None and citation not in seen:
            seen.append(citation)
    if seen or _MARKER.search(answer):
        return seen
    support = best_support(answer, citations)
    return [replace(support, inferred=True)] if support is not None else []


_WORD = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)*")
_STOP = frozenset(
    (
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "this",
        "to",
        "us",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "will",
        "with",
        "you",
        "your",
    )
)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def best_support(
    answer: str, citations: Sequence[Citation], threshold: float = 0.6
) -> Citation | None:
    """The best-ranked passage holding at least `threshold` of the answer's content
    words, or None (an answer that no passage supports gets no citation)."""
    words = _words(answer)
    if not words:
        return None
    best: tuple[float, Citation] | None = None
    for citation in citations:
        passage = _words(citation.text or citation.snippet)
        passage |= {part for word in passage for part in re.split(r"[.-]", word)}
        share = len(words & passage) / len(words)
        if share >= threshold and (best is None or share > best[0]):
            best = (share, citation)
    return best[1] if best else None


def search_options(settings: RetrievalSettings) -> SearchOptions:
    """copilot.yaml's retrieval settings as the knowledge layer's search options."""
    return SearchOptions(
        mode=settings.mode,
        k=settings.top_k,
        min_score=settings.min_score,
        fusion=FusionSettings(method=settings.fusion),
        keyword_max_df=None
        if settings.plain_bm25 is None
        else (1.0 if settings.plain_bm25 else DEFAULT_MAX_DF),
    )


@dataclass(frozen=True, slots=True)
class Retrieval:
    """What a search gave a run: the citations and context block (none when nothing
    qualifies), and, under a relevance floor, whether the best passage fell below it
    (the question is then not covered by the knowledge)."""

    citations: list[Citation]
    context: str | None
    best_score: float | None = None
    below_floor: bool = False
    texts: tuple[str, ...] = ()
    """Each citation's passage as the context holds it (cut to a budget, if any)."""


CONTEXT_TURNS = 2
"""How many of the user's earlier questions a follow-up is searched with."""


def follow_up_query(question: str, history: Sequence[Message]) -> str | None:
    """The question with the user's last `CONTEXT_TURNS` earlier questions before it,
    oldest first, for a follow-up ("And on floor 3?" says nothing of printers alone);
    None at a conversation's start. Two, not one: a third turn's topic is often two
    turns back ("Will the T2 fit my heating system?", "How long does installing it
    take?", "And what should I switch off before I start?": with the previous turn
    alone no passage reached the relevance floor, 0.29; with both, 0.53)."""
    earlier = earlier_questions(history, CONTEXT_TURNS)
    return "\n".join([*earlier, question]) if earlier else None


async def retrieve(
    knowledge: KnowledgeBase,
    settings: RetrievalSettings,
    question: str,
    *,
    base: Path,
    tracer: Tracer,
    source_id: str,
    judge: RelevanceJudge | None = None,
    passage_budget: int | None = None,
    context_query: str | None = None,
    floor: float | None = None,
) -> Retrieval:
    """Search the knowledge base (traced, with every hit's score). With
    `context_query` (a follow-up with its previous turn), both queries are searched
    and each passage keeps its better score, so a follow-up finds the passages of its
    topic; the question's own best passage is always among them (last, if need be,
    where more than one is asked for), so a new topic still finds its own (issue 20,
    followups-fresh5: a found USB stick after a printing question had only printing
    passages). A follow-up's candidates are more, ranked by their nearest unit too
    (copilot/follow_up_passages.py). With `floor`, passages below it are dropped (a
    follow-up's passage naming one of its key terms is not), and `below_floor` says
    that none was left. With `judge` (the copilot's
    `retrieval.rerank`), the best `rerank_top_n` passages are judged. With
    `passage_budget` (tokens), the passages are cut to fit it (passage_budget.py)."""
    options = search_options(settings)
    if context_query:
        options = replace(options, k=settings.top_k * follow_up_passages.POOL)
    rerank_settings = RerankSettings(top_n=settings.rerank_top_n) if judge else None
    with tracer.span("retrieval", kind="retrieval") as span:
        queries = [question] + ([context_query] if context_query else [])
        found: dict[int, SearchResult] = {}
        own: SearchResult | None = None  # the question's own best passage
        for query in queries:
            results = await knowledge.search(
                query, options, judge=judge, rerank_settings=rerank_settings
            )
            if query is question and results:
                own = results[0]
            for result in results:
                kept = found.get(result.chunk_id)
                if kept is None or result.score > kept.score:
                    found[result.chunk_id] = result
        ranked = sorted(found.values(), key=lambda r: (-r.score, r.chunk_id))
        if context_query:
            ranked = await follow_up_passages.by_units(
                ranked[: options.k], question, context_query, knowledge.recent
            )
        ranked = ranked[: settings.top_k]
        if (
            own is not None
            and settings.top_k > 1
            and all(r.chunk_id != own.chunk_id for r in ranked)
        ):
            # A new topic keeps its own best passage: the earlier question's passages
            # can all score higher with it than this one does alone (see `retrieve`).
            ranked[-1] = own
        best = max((r.score for r in ranked), default=None)
        # A passage the relevance judge found relevant stays whatever its score, and so
        # does a follow-up's passage naming one of its identifiers.
        results = [
            r
            for r in ranked
            if floor is None
            or r.score >= floor
            or r.scores.get("rerank", 0) > 0
            or (context_query and follow_up_passages.names_key_term(question, r.text))
        ]
        citations = citations_from(results, base)
        span.update(
            {
                A.DATA_SOURCE_ID: source_id,
                A.RETRIEVAL_QUERY: question,
                A.REQUEST_TOP_K: settings.top_k,
                "pilothouse.retrieval.mode": settings.mode,
                "pilothouse.retrieval.min_score": settings.min_score,
                "pilothouse.retrieval.fusion": settings.fusion,
                "pilothouse.retrieval.rerank_top_n": settings.rerank_top_n if judge else 0,
                A.RETRIEVAL_CONTEXT_QUERY: context_query,
                A.RETRIEVAL_MIN_RELEVANCE: floor,
                A.RETRIEVAL_BEST_SCORE: best,
                A.RETRIEVAL_HITS: [
                    {
                        "chunk_id": c.chunk_id,
                        "source": c.source,
                        "page": c.page,
                        "heading": " > ".join(c.headings),
                        "score": c.score,
                        **({"rerank": r.scores["rerank"]} if "rerank" in r.scores else {}),
                    }
                    for c, r in zip(citations, results, strict=True)
                ],
            }
        )
    below = floor is not None and not results
    if not results:
        return Retrieval([], None, best, below)
    texts = [r.text for r in results]
    if passage_budget is not None:
        texts = await fit_passages(
            question, texts, passage_budget, knowledge.recent, knowledge.counter
        )
    return Retrieval(citations, context_block(citations, texts), best, below, tuple(texts))
