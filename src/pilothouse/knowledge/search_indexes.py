"""The two searches a knowledge store gives a `Retriever` (`KnowledgeStore.search_indexes`):
dense search over the chunk vectors and BM25 over the chunks' words. Each backend has
its own: numpy and FTS5 for SQLite (vectors.py, keywords.py), pgvector and full-text
search for PostgreSQL (search_postgres.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pilothouse.knowledge.embeddings import FloatArray
from pilothouse.knowledge.query import Filters


class VectorSearch(Protocol):
    """Dense search over a store's chunk vectors (vectors.py, search_postgres.py)."""

    def __len__(self) -> int: ...

    def search(
        self, query: FloatArray, limit: int, allowed: Sequence[int] | None = None
    ) -> list[tuple[int, float]]: ...

    def similarities(self, query: FloatArray, chunk_ids: Sequence[int]) -> dict[int, float]: ...

    def vectors_of(self, chunk_ids: Sequence[int]) -> dict[int, FloatArray]: ...


class KeywordSearch(Protocol):
    """BM25 search over a store's chunks (keywords.py, search_postgres.py)."""

    def warm(self) -> None: ...

    def search(
        self, query: str, limit: int, filters: Filters | None = None, *, max_df: float = ...
    ) -> list[tuple[int, float]]: ...
