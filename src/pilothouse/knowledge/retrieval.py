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
        # BM25 runs while the query is embedded and the vectors are scanned (SQLite,
        # onnxruntime and numpy release the GIL), so on two cores a hybrid search takes
        # about as long as its dense half.
        dense_part = None
        if options.mode in ("dense", "hybrid"):
            dense_part = asyncio.ensure_future(self._dense_part(query, options))
        try:
            bm25: dict[int, float] = {}
            if options.mode in ("bm25", "hybrid"):
                bm25 = dict(await asyncio.to_thread(self._keywords, query, options))
            vector, dense = await dense_part if dense_part is not None else (None, {})
        finally:
            if dense_part is not None and not dense_part.done():
                dense_part.cancel()
        if dense is None:
            return []  # the filters leave nothing to search
        return await asyncio.to_thread(self._combine, vector, bm25, dense, options)

    def search_with_vector(
        self, query: str, query_vector: FloatArray | None, options: SearchOptions
    ) -> list[SearchResult]:
        """The same search, synchronous, with the query already embedded."""
        bm25 = dict(self._keywords(query, options)) if options.mode != "dense" else {}
        dense: dict[int, float] | None = {}
        if query_vector is not None and options.mode != "bm25":
            dense = self._dense_search(query_vector, options)
        if dense is None:
            return []
        return self._combine(query_vector, bm25, dense, options)

    def _pool(self, options: SearchOptions) -> int:
        return max(options.candidates, options.k * 4)

    def _keywords(self, query: str, options: SearchOptions) -> list[tuple[int, float]]:
        return self.keywords.search(
            query, self._pool(options), options.filters, max_df=options.keyword_max_df
        )

    async def _dense_part(
        self, query: str, options: SearchOptions
    ) -> tuple[FloatArray, dict[int, float] | None]:
        vector = normalize(await self.embedder.embed([query]))[0]
        return vector, await asyncio.to_thread(self._dense_search, vector, options)

    def _dense_search(self, vector: FloatArray, options: SearchOptions) -> dict[int, float] | None:
        """Dense candidates; None when the filters match no chunk at all."""
        allowed = None
        if not options.filters.empty:
            allowed = self.store.chunk_ids(options.filters)
            if not allowed:
                return None
        return dict(self.dense.search(vector, self._pool(options), allowed))

    def _combine(
        self,
        vector: FloatArray | None,
        bm25: dict[int, float],
        dense: dict[int, float],
        options: SearchOptions,
    ) -> list[SearchResult]:
        if options.mode == "hybrid":
            assert vector is not None
            # Every keyword hit gets its exact cosine (cheap). A dense hit outside the
            # BM25 top `pool` counts 0 for BM25: scoring it exactly cost a second FTS5
            # query and measured no better (benchmarks/README.md).
            only_bm25 = [i for i in bm25 if i not in dense]
            dense = {**dense, **self.dense.similarities(vector, only_bm25)}
            scores = fuse(options.fusion, bm25, dense)
        else:
            scores = bm25 if options.mode == "bm25" else dense
        ranked = sorted(scores, key=lambda i: (-scores[i], i))
        if options.min_score is not None:
            ranked = [i for i in ranked if scores[i] >= options.min_score]
        kept, rows = self._select(ranked, options)
        results = []
        for chunk_id in kept:
            parts = {"bm25": bm25.get(chunk_id), "dense": dense.get(chunk_id)}
            own = {name: value for name, value in parts.items() if value is not None}
            if options.mode == "hybrid":
                own["fused"] = scores[chunk_id]
            results.append(_result(rows[chunk_id], scores[chunk_id], own))
        return results

    def _select(
        self, ranked: list[int], options: SearchOptions
    ) -> tuple[list[int], dict[int, ChunkRow]]:
        """The best `k`, skipping near-duplicates of better ones (same text, or vectors
        at least `dedup_similarity` alike); rows are fetched a slice at a time."""
        threshold = options.dedup_similarity
        rows: dict[int, ChunkRow] = {}
        kept: list[int] = []
        seen_text: set[str] = set()
        kept_vectors: list[FloatArray] = []
        step = max(options.k * 4, 20)
        for start in range(0, len(ranked), step):
            batch = ranked[start : start + step]
            rows.update(self.store.chunks(batch))
            vectors = self.dense.vectors_of(batch) if threshold is not None else {}
            for chunk_id in batch:
                row = rows.get(chunk_id)
                if row is None:  # removed since it was scored
                    continue
                if threshold is not None:
                    if row.text_hash in seen_text:
                        continue
                    vector = vectors.get(chunk_id)
                    if vector is not None:
                        if kept_vectors and float(np.max(np.stack(kept_vectors) @ vector)) >= (
                            threshold
                        ):
                            continue
                        kept_vectors.append(vector)
                    seen_text.add(row.text_hash)
                kept.append(chunk_id)
                if len(kept) >= options.k:
                    return kept, rows
        return kept, rows


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
