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
from pilothouse.knowledge.keywords import DEFAULT_MAX_DF
from pilothouse.knowledge.query import Filters
from pilothouse.knowledge.rows import ChunkRow
from pilothouse.knowledge.store import KnowledgeStore

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
      the chunks (see keywords.py); 1.0 keeps every term (plain BM25). None: the
      mode's default, pruned (0.1) in hybrid, where it saves time at no loss, and
      plain in `bm25` mode, where the common terms matter (identifier lookups).
    """

    mode: Mode = "hybrid"
    k: int = 5
    min_score: float | None = None
    filters: Filters = field(default_factory=Filters)
    dedup_similarity: float | None = 0.95
    candidates: int = 50
    fusion: FusionSettings = field(default_factory=FusionSettings)
    keyword_max_df: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.k < 1:
            raise ValueError("k must be at least 1")
        if self.min_score is not None and not math.isfinite(self.min_score):
            raise ValueError("min_score must be a finite number")
        if self.keyword_max_df is not None and not 0.0 < self.keyword_max_df <= 1.0:
            raise ValueError("keyword_max_df must be in (0, 1]")
        if self.dedup_similarity is not None and not -1.0 <= self.dedup_similarity <= 1.0:
            raise ValueError("dedup_similarity must be between -1 and 1")

    @property
    def max_df(self) -> float:
        """The keyword pruning in effect (see `keyword_max_df`)."""
        if self.keyword_max_df is not None:
            return self.keyword_max_df
        return 1.0 if self.mode == "bm25" else DEFAULT_MAX_DF


# The most candidates one method brings when duplicates keep a search short of k.
MAX_POOL = 4096


class Retriever:
    def __init__(self, store: KnowledgeStore, embedder: Embedder):
        self.store = store
        self.embedder = embedder
        self.dense, self.keywords = store.search_indexes()

    def warm(self) -> None:
        """Load what the first search would otherwise wait for: the vector matrix and
        the keyword index's statistics."""
        len(self.dense)
        self.keywords.warm()

    async def search(self, query: str, options: SearchOptions | None = None) -> list[SearchResult]:
        options = options or SearchOptions()
        if not query.strip():
            return []
        pool = max(options.candidates, options.k * 4)
        # BM25 runs while the query is embedded and the vectors are scanned (SQLite,
        # onnxruntime and numpy release the GIL), so on two cores a hybrid search takes
        # about as long as its dense half.
        dense_part = None
        if options.mode in ("dense", "hybrid"):
            dense_part = asyncio.ensure_future(self._dense_part(query, options, pool))
        try:
            bm25: list[tuple[int, float]] = []
            if options.mode in ("bm25", "hybrid"):
                bm25 = await asyncio.to_thread(self._keywords, query, options, pool)
            vector, dense = await dense_part if dense_part is not None else (None, [])
        finally:
            if dense_part is not None and not dense_part.done():
                dense_part.cancel()
        if dense is None:
            return []  # the filters leave nothing to search
        return await asyncio.to_thread(self._finish, query, vector, bm25, dense, options, pool)

    def _finish(
        self,
        query: str,
        vector: FloatArray | None,
        bm25: list[tuple[int, float]],
        dense: list[tuple[int, float]],
        options: SearchOptions,
        pool: int,
    ) -> list[SearchResult]:
        """Fuse, drop near-duplicates, keep k. When duplicates leave fewer than k and a
        method had more to give, each brings a larger pool and the cut is made again:
        duplicates never cost results while distinct passages remain."""
        while True:
            results, dropped = self._combine(vector, dict(bm25), dict(dense), options)
            more = len(bm25) >= pool or len(dense) >= pool
            if len(results) >= options.k or not dropped or not more or pool >= MAX_POOL:
                return results
            pool = min(pool * 4, MAX_POOL)
            if options.mode != "dense":
                bm25 = self._keywords(query, options, pool)
            if vector is not None and options.mode != "bm25":
                dense = self._dense_search(vector, options, pool) or []

    def _keywords(self, query: str, options: SearchOptions, pool: int) -> list[tuple[int, float]]:
        return self.keywords.search(query, pool, options.filters, max_df=options.max_df)

    async def _dense_part(
        self, query: str, options: SearchOptions, pool: int
    ) -> tuple[FloatArray, list[tuple[int, float]] | None]:
        vector = normalize(await self.embedder.embed([query]))[0]
        return vector, await asyncio.to_thread(self._dense_search, vector, options, pool)

    def _dense_search(
        self, vector: FloatArray, options: SearchOptions, pool: int
    ) -> list[tuple[int, float]] | None:
        """Dense candidates; None when the filters match no chunk at all."""
        allowed = None
        if not options.filters.empty:
            allowed = self.store.chunk_ids(options.filters)
            if not allowed:
                return None
        return self.dense.search(vector, pool, allowed)

    def _combine(
        self,
        vector: FloatArray | None,
        bm25: dict[int, float],
        dense: dict[int, float],
        options: SearchOptions,
    ) -> tuple[list[SearchResult], int]:
        """(the best k results, how many near-duplicates were passed over)."""
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
        kept, rows, dropped = self._select(ranked, options)
        results = []
        for chunk_id in kept:
            parts = {"bm25": bm25.get(chunk_id), "dense": dense.get(chunk_id)}
            own = {name: value for name, value in parts.items() if value is not None}
            if options.mode == "hybrid":
                own["fused"] = scores[chunk_id]
            results.append(_result(rows[chunk_id], scores[chunk_id], own))
        return results, dropped

    def _select(
        self, ranked: list[int], options: SearchOptions
    ) -> tuple[list[int], dict[int, ChunkRow], int]:
        """The best `k`, skipping near-duplicates of better ones (same text, or vectors
        at least `dedup_similarity` alike): (kept ids, their rows, ids passed over).
        Candidates are looked at a window at a time: one row fetch and one small
        matrix product per window."""
        threshold = options.dedup_similarity
        rows: dict[int, ChunkRow] = {}
        kept: list[int] = []
        kept_vectors: list[FloatArray] = []
        seen_text: set[str] = set()
        dropped = 0
        step = max(options.k * 4, 20)
        for start in range(0, len(ranked), step):
            window = ranked[start : start + step]
            rows.update(self.store.chunks(window))
            vectors = self.dense.vectors_of(window) if threshold is not None else {}
            near = _Window(vectors, kept_vectors)
            for chunk_id in window:
                row = rows.get(chunk_id)
                if row is None:  # removed since it was scored
                    continue
                if threshold is not None:
                    if row.text_hash in seen_text or near.duplicate(chunk_id, threshold):
                        dropped += 1
                        continue
                    near.keep(chunk_id, kept_vectors)
                    seen_text.add(row.text_hash)
                kept.append(chunk_id)
                if len(kept) >= options.k:
                    return kept, rows, dropped
        return kept, rows, dropped


class _Window:
    """Near-duplicate tests for one window of candidates: one product against the
    passages kept before the window, and a Gram matrix within it."""

    def __init__(self, vectors: dict[int, FloatArray], kept: list[FloatArray]):
        self.position = {chunk_id: n for n, chunk_id in enumerate(vectors)}
        self.rows_kept: list[int] = []
        self.matrix: FloatArray = np.zeros((0, 0), dtype=np.float32)
        self.before: FloatArray = np.zeros(0, dtype=np.float32)
        self.gram: FloatArray = np.zeros((0, 0), dtype=np.float32)
        if vectors:
            # einsum, not `@`: BLAS spreads even a 40 x 40 product over threads, and
            # waking them cost 30 ms a query on the busy 2-core machine (0.1 ms here).
            self.matrix = np.stack(list(vectors.values()))
            self.gram = np.einsum("ij,kj->ik", self.matrix, self.matrix)
            self.before = (
                np.max(np.einsum("ij,kj->ik", self.matrix, np.stack(kept)), axis=1)
                if kept
                else np.full(len(vectors), -np.inf, dtype=np.float32)
            )

    def duplicate(self, chunk_id: int, threshold: float) -> bool:
        row = self.position.get(chunk_id)
        if row is None:
            return False
        if float(self.before[row]) >= threshold:
            return True
        return any(float(self.gram[row, other]) >= threshold for other in self.rows_kept)

    def keep(self, chunk_id: int, kept: list[FloatArray]) -> None:
        row = self.position.get(chunk_id)
        if row is not None:
            self.rows_kept.append(row)
            kept.append(self.matrix[row])


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
