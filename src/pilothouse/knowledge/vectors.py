"""Exact dense search over the knowledge base's unit vectors, in memory with numpy.

Chosen over sqlite-vec by measurement (benchmarks/README.md): at 100k chunks x 384
dimensions a numpy matrix-vector product answers in a few milliseconds, and
Python's bundled sqlite3 often cannot load extensions at all. The matrix is read
from SQLite once and re-read only when the index's generation changes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from pilothouse.knowledge.embeddings import FloatArray
from pilothouse.knowledge.store import KnowledgeStore

IdArray = np.ndarray[Any, np.dtype[np.int64]]


class DenseIndex:
    def __init__(self, store: KnowledgeStore):
        self.store = store
        self._ids: IdArray = np.zeros(0, dtype=np.int64)
        self._matrix: FloatArray = np.zeros((0, 0), dtype=np.float32)
        self._generation = -1
        self._lock = threading.Lock()

    def _current(self) -> tuple[IdArray, FloatArray]:
        with self._lock:
            if self.store.generation() != self._generation:
                self._ids, self._matrix, self._generation = self.store.vectors()
            return self._ids, self._matrix

    def __len__(self) -> int:
        return len(self._current()[0])

    def search(
        self, query: FloatArray, limit: int, allowed: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity), best first; only `allowed` ids when given."""
        ids, matrix = self._current()
        if len(ids) == 0 or limit <= 0:
            return []
        if allowed is not None:
            rows = self._rows(ids, allowed)
            if len(rows) == 0:
                return []
            ids, matrix = ids[rows], matrix[rows]
        scores = _dot(matrix, query)
        if limit < len(scores):
            top = np.argpartition(-scores, limit - 1)[:limit]
        else:
            top = np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(ids[i]), float(scores[i])) for i in top]

    def similarities(self, query: FloatArray, chunk_ids: Sequence[int]) -> dict[int, float]:
        """Cosine similarity of the query to each of `chunk_ids` that exists."""
        ids, matrix = self._current()
        rows = self._rows(ids, chunk_ids)
        if len(rows) == 0:  # an empty index's matrix is (0, 0): nothing to multiply
            return {}
        scores = _dot(matrix[rows], query)
        return {int(ids[r]): float(s) for r, s in zip(rows, scores, strict=True)}

    def vectors_of(self, chunk_ids: Sequence[int]) -> dict[int, FloatArray]:
        """The vectors of a few chunks. Before the matrix is in memory they are read
        from SQLite: a keyword search's near-duplicate test must not wait for the
        whole matrix (1.2 s at 100k chunks) on the first query of a process."""
        with self._lock:
            loaded = self.store.generation() == self._generation
        if not loaded:
            return self.store.vectors_of(chunk_ids)
        ids, matrix = self._current()
        rows = self._rows(ids, chunk_ids)
        return {int(ids[r]): matrix[r] for r in rows}

    @staticmethod
    def _rows(ids: IdArray, wanted: Sequence[int]) -> IdArray:
        if len(ids) == 0:
            return np.zeros(0, dtype=np.int64)
        want = np.asarray(list(wanted), dtype=np.int64)
        positions = np.searchsorted(ids, want)
        positions = np.clip(positions, 0, len(ids) - 1)
        found: IdArray = positions[ids[positions] == want]
        return found


def _dot(matrix: FloatArray, query: FloatArray) -> FloatArray:
    """Row-by-vector products on one thread. A matrix-vector product is bound by memory
    bandwidth, so BLAS threads add nothing but CPU time spent spinning: on the shared
    2-core machine `@` took 37 ms of CPU per query at 100k chunks, this about 11
    (benchmarks/README.md)."""
    scores: FloatArray = np.einsum("ij,j->i", matrix, query.reshape(-1).astype(np.float32))
    return scores
