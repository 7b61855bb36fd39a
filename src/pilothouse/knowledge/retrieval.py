"""Search: BM25, dense, or both fused; filters, near-duplicate removal, a minimum
score, top-k. Every result says which scores it got, so a threshold or a fusion
weight can be checked, not just trusted."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from pilothouse.knowledge.documents import SearchResult
from pilothouse.knowledge.embeddings import Embedder, FloatArray, normalize
from pilothouse.knowledge.fusion import FusionSettings, fuse
from pilothouse.knowledge.keywords import DEFAULT_MAX_DF, KeywordIndex
from pilothouse.knowledge.query import Filters
from pilothouse.knowledge.store import ChunkRow, KnowledgeStore
from pilothouse.knowledge.vectors import DenseIndex

Mode = Literal["hybrid", "bm25", "dense"]
MODES: tuple[Mode, ...] = ("hybrid", "bm25", "dense")


@dataclass(frozen=True, slots=True)
class SearchOptions:
    """How to search.

    - `mode`: `hybrid` (default), `bm25` or `dense`.
    - `min_score`: results scoring below it are dropped. The score is the mode's own:
      BM25 score (unbounded), cosine similarity (-1..1), or the fused score.
    - `dedup_similarity`: a result whose vector has at least this cosine similarity
      with a better-ranked result (or the same text) is dropped; None keeps all.
    - `candidates`: how many each method contributes before fusion.
    - `keyword_max_df`: BM25 leaves out query terms found in more than this share of
      the chunks (see keywords.py); 1.0 keeps every term.
    """

    mode: Mode = "hybrid"
    k: int = 5
    min_score: float | None = None
    filters: Filters = field(default_factory=Filters)
    dedup_similarity: float | None = 0.95
    candidates: int = 50
    fusion: FusionSettings = field(default_factory=FusionSettings)
    keyword_max_df: float = DEFAULT_MAX_DF

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.k < 1:
            raise ValueError("k must be at least 1")
        if self.min_score is not None and not math.isfinite(self.min_score):
            raise ValueError("min_score must be a finite number")
        if not 0.0 < self.keyword_max_df <= 1.0:
            raise ValueError("keyword_max_df must be in (0, 1]")


class Retriever:
    def __init__(self, store: KnowledgeStore, embedder: Embedder):
        self.store = store
        self.embedder = embedder
        self.dense = DenseIndex(store)
        self.keywords = KeywordIndex(store)

    async def search(self, query: str, options: SearchOptions | None = None) -> list[SearchResult]:
        options = options or SearchOptions()
        if not query.strip():
            return []
        # The query is embedded while BM25 runs (both release the GIL), then the rest
        # (quick SQLite and numpy work) runs in one trip to a worker thread.
        embedding = None
        if options.mode in ("dense", "hybrid"):
            embedding = asyncio.ensure_future(self.embedder.embed([query]))
        bm25: dict[int, float] = {}
        try:
            if options.mode in ("bm25", "hybrid"):
                bm25 = dict(await asyncio.to_thread(self._keywords, query, options))
            query_vector = normalize(await embedding)[0] if embedding is not None else None
        finally:
            if embedding is not None and not embedding.done():
                embedding.cancel()
        return await asyncio.to_thread(self.search_with_vector, query, query_vector, options, bm25)

    def _keywords(self, query: str, options: SearchOptions) -> list[tuple[int, float]]:
        pool = max(options.candidates, options.k * 4)
        return self.keywords.search(query, pool, options.filters, max_df=options.keyword_max_df)

    def search_with_vector(
        self,
        query: str,
        query_vector: FloatArray | None,
        options: SearchOptions,
        bm25: dict[int, float] | None = None,
    ) -> list[SearchResult]:
        """The search once the query is embedded and, if given, BM25 has run
        (synchronous)."""
        pool = max(options.candidates, options.k * 4)
        allowed = None
        if not options.filters.empty:
            allowed = self.store.chunk_ids(options.filters)
            if not allowed:
                return []
        dense: dict[int, float] = {}
        if bm25 is None:
            bm25 = dict(self._keywords(query, options)) if options.mode != "dense" else {}
        else:
            bm25 = dict(bm25)
        if query_vector is not None and options.mode in ("dense", "hybrid"):
            dense = dict(self.dense.search(query_vector, pool, allowed))
        if options.mode == "hybrid":
            assert query_vector is not None
            # Every keyword hit gets its exact cosine (cheap). A dense hit outside the
            # BM25 top `pool` counts 0 for BM25: scoring it exactly cost a second FTS5
            # query and measured no better (benchmarks/README.md).
            only_bm25 = [i for i in bm25 if i not in dense]
            dense.update(self.dense.similarities(query_vector, only_bm25))
            scores = fuse(options.fusion, bm25, dense)
        else:
            scores = bm25 if options.mode == "bm25" else dense
        ranked = sorted(scores, key=lambda i: (-scores[i], i))
        if options.min_score is not None:
            ranked = [i for i in ranked if scores[i] >= options.min_score]
        rows = self.store.chunks(ranked[: pool * 2])
        ranked = [i for i in ranked if i in rows]
        if options.dedup_similarity is not None:
            ranked = self._deduplicate(ranked, rows, options.dedup_similarity, options.k)
        results = []
        for chunk_id in ranked[: options.k]:
            row = rows[chunk_id]
            parts = {"bm25": bm25.get(chunk_id), "dense": dense.get(chunk_id)}
            own = {name: value for name, value in parts.items() if value is not None}
            if options.mode == "hybrid":
                own["fused"] = scores[chunk_id]
            results.append(_result(row, scores[chunk_id], own))
        return results

    def _deduplicate(
        self, ranked: list[int], rows: dict[int, ChunkRow], threshold: float, k: int
    ) -> list[int]:
        vectors = self.dense.vectors_of(ranked[: k * 4])
        kept: list[int] = []
        seen_text: set[str] = set()
        kept_vectors: list[FloatArray] = []
        for chunk_id in ranked:
            row = rows[chunk_id]
            if row.text_hash in seen_text:
                continue
            vector = vectors.get(chunk_id)
            if (
                vector is not None
                and kept_vectors
                and float(np.max(np.stack(kept_vectors) @ vector)) >= threshold
            ):
                continue
            kept.append(chunk_id)
            seen_text.add(row.text_hash)
            if vector is not None:
                kept_vectors.append(vector)
            if len(kept) >= k:
                break
        return kept


def _result(row: ChunkRow, score: float, scores: dict[str, float]) -> SearchResult:
    return SearchResult(
        chunk_id=row.id,
        document_id=row.document_id,
        source=row.source,
        title=row.title,
        kind=row.kind,
        text=row.text,
        start=row.start,
        end=row.end,
        page=row.page,
        headings=row.headings,
        score=score,
        scores=scores,
        tags=row.tags,
    )
