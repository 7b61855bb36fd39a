"""Search over a PostgreSQL knowledge base: dense candidates from pgvector's HNSW index,
keyword candidates from full-text search scored with BM25, fused by the retriever
exactly as for SQLite (retrieval.py, fusion.py).

Dense: `ORDER BY embedding::vector(d) <#> query` (negative inner product: vectors are
unit length, so it ranks by cosine) uses the HNSW index built for the index's
dimensions; `hnsw.ef_search` is raised to the number of candidates wanted, since the
index returns at most that many. With filters the allowed chunks are scanned exactly.

Keywords: PostgreSQL's `ts_rank` has no inverse document frequency, and the fusion
scales BM25 scores (`bm25_half`), so the score here is BM25 as FTS5 computes it
(k1 = 1.2, b = 0.75, text weighted 1 and heading context 0.5, document length in
tokens): candidates come from the GIN index (`tsv @@ query`), each query term's
document frequency is counted once per index generation, and the same common-term
pruning applies (keywords.py).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pilothouse.knowledge.embeddings import FloatArray
from pilothouse.knowledge.filters_postgres import filter_sql
from pilothouse.knowledge.keywords import DEFAULT_MAX_DF, prune_common
from pilothouse.knowledge.query import Filters, query_words
from pilothouse.knowledge.schema_postgres import TS_CONFIG
from pilothouse.knowledge.store_postgres import pg_vector

if TYPE_CHECKING:
    from pilothouse.knowledge.store_postgres import PostgresKnowledgeStore

K1, B = 1.2, 0.75
CONTEXT_WEIGHT = 0.5


class PostgresDenseIndex:
    """Dense search through pgvector (see the module docstring)."""

    def __init__(self, store: PostgresKnowledgeStore) -> None:
        self.store = store

    def __len__(self) -> int:
        rows = self.store._rows(f"SELECT COUNT(*) FROM {self.store.t_chunks}")
        return int(rows[0][0])

    def search(
        self, query: FloatArray, limit: int, allowed: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        if limit <= 0:
            return []
        vector = np.asarray(query, dtype=np.float32).reshape(-1)
        dims = len(vector)
        distance = f"embedding::vector({dims}) <#> %(q)s::vector({dims})"
        params: dict[str, Any] = {"q": pg_vector(vector), "limit": limit}
        if allowed is not None:
            params["allowed"] = [int(i) for i in allowed]
            sql = (
                f"SELECT id, -({distance}) FROM {self.store.t_chunks} "
                f"WHERE id = ANY(%(allowed)s) ORDER BY ({distance}) + 0, id LIMIT %(limit)s"
            )
        else:
            sql = (  # the ORDER BY is the HNSW index's expression (store_postgres.py)
                f"SELECT id, -({distance}) FROM {self.store.t_chunks} "
                f"ORDER BY {distance} LIMIT %(limit)s"
            )
        with self.store.database.transaction() as conn:
            conn.execute(f"SET LOCAL hnsw.ef_search = {max(40, min(1000, limit * 2))}")
            rows = conn.execute(sql, params).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def similarities(self, query: FloatArray, chunk_ids: Sequence[int]) -> dict[int, float]:
        if not chunk_ids:
            return {}
        vector = np.asarray(query, dtype=np.float32).reshape(-1)
        dims = len(vector)
        rows = self.store._rows(
            f"SELECT id, -(embedding::vector({dims}) <#> %s::vector({dims})) "
            f"FROM {self.store.t_chunks} WHERE id = ANY(%s)",
            (pg_vector(vector), [int(i) for i in chunk_ids]),
        )
        return {int(r[0]): float(r[1]) for r in rows}

    def vectors_of(self, chunk_ids: Sequence[int]) -> dict[int, FloatArray]:
        return self.store.vectors_of(chunk_ids)


class PostgresKeywordIndex:
    """BM25 over PostgreSQL full-text search (see the module docstring)."""

    def __init__(self, store: PostgresKnowledgeStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._generation = -1
        self._total = 0
        self._avgdl = 1.0
        self._frequency: dict[str, int] = {}

    def warm(self) -> None:
        self.searchable_words("warm", max_df=0.5)

    def _terms(self, words: list[str]) -> tuple[dict[int, list[str]], dict[str, int], int, float]:
        """(lexemes of each word by position, document frequency of each lexeme, chunk
        count, mean chunk length), the figures cached per index generation."""
        store = self.store
        rows = store._rows(
            f"SELECT n, tsvector_to_array(to_tsvector('{TS_CONFIG}', w)) "
            "FROM unnest(%s::text[]) WITH ORDINALITY AS u(w, n)",
            (words,),
        )
        stems = {int(n) - 1: list(lexemes) for n, lexemes in rows}
        with self._lock:
            generation = store.generation()
            if generation != self._generation:
                self._frequency.clear()
                count, avgdl = store._rows(
                    f"SELECT COUNT(*), COALESCE(AVG(dl), 1) FROM {store.t_chunks}"
                )[0]
                self._total, self._avgdl = int(count), float(avgdl) or 1.0
                self._generation = generation
            missing = sorted({t for ts in stems.values() for t in ts} - set(self._frequency))
        for term in missing:
            found = store._rows(
                f"SELECT COUNT(*) FROM {store.t_chunks} WHERE tsv @@ %s::tsquery",
                (_quoted(term),),
            )
            with self._lock:
                self._frequency[term] = int(found[0][0])
        with self._lock:
            frequency = {t: self._frequency.get(t, 0) for ts in stems.values() for t in ts}
            return stems, frequency, self._total, self._avgdl

    def searchable_words(self, query: str, max_df: float = DEFAULT_MAX_DF) -> list[str]:
        words = query_words(query)
        if not words or max_df >= 1.0:
            return words
        stems, frequency, total, _ = self._terms(words)
        return prune_common(words, stems, frequency, max_df * total)

    def search(
        self,
        query: str,
        limit: int,
        filters: Filters | None = None,
        *,
        max_df: float = DEFAULT_MAX_DF,
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score, higher is better), best first."""
        words = self.searchable_words(query, max_df)
        if not words or limit <= 0:
            return []
        stems, frequency, total, avgdl = self._terms(words)
        lexemes = sorted({t for ts in stems.values() for t in ts})
        if not lexemes:
            return []
        idf = [
            max(1e-6, math.log((total - frequency[t] + 0.5) / (frequency[t] + 0.5)))
            for t in lexemes
        ]
        store = self.store
        filtered = filters is not None and not filters.empty
        where, filter_params = filter_sql(filters or Filters(), "d")
        join = f" JOIN {store.t_docs} d ON d.id = c.document_id" if filtered else ""
        condition = f" AND {where}" if filtered else ""
        sql = (
            "WITH q(lexeme, idf) AS (SELECT * FROM unnest(%s::text[], %s::float8[])) "
            f"SELECT c.id, SUM(q.idf * (t.tf * {K1 + 1}) / "
            f"(t.tf + {K1} * ({1 - B} + {B} * c.dl / %s))) AS score "
            f"FROM {store.t_chunks} c{join} "
            "CROSS JOIN LATERAL (SELECT u.lexeme, cardinality(array_positions(u.weights, 'A')) "
            f"+ {CONTEXT_WEIGHT} * cardinality(array_positions(u.weights, 'B')) AS tf "
            "FROM unnest(c.tsv) u WHERE u.lexeme = ANY(%s)) t "
            "JOIN q ON q.lexeme = t.lexeme "
            f"WHERE c.tsv @@ %s::tsquery{condition} "
            "GROUP BY c.id ORDER BY score DESC, c.id LIMIT %s"
        )
        params = [
            lexemes,
            idf,
            avgdl,
            lexemes,
            " | ".join(_quoted(t) for t in lexemes),
            *(filter_params if filtered else []),
            limit,
        ]
        return [(int(r[0]), float(r[1])) for r in store._rows(sql, params)]


def _quoted(lexeme: str) -> str:
    """A lexeme as a tsquery operand (taken as written: no stemming again)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"
