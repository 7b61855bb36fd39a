"""Embeddings behind one small interface, and the pieces around it: batching, a
cache keyed by (model, text hash), and an adapter for any object with an async
`embed(texts)` method (the model layer's OpenAI-compatible, Azure, Gemini and Ollama
adapters have one; the copilot runtime wires them in, knowledge never imports them)."""

from __future__ import annotations

import hashlib
import math
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from pilothouse.knowledge.errors import EmbeddingError
from pilothouse.storage.sqlite import transaction

Vector = list[float]
FloatArray = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors of `dimensions` floats, one per text, in order."""

    @property
    def model_id(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> list[Vector]: ...


class EmbeddingClient(Protocol):
    """Anything with an async `embed(texts)` (structural: no import of the model layer)."""

    def embed(self, texts: list[str]) -> Awaitable[list[Vector]]: ...


class ClientEmbedder:
    """An `Embedder` over any `EmbeddingClient`, e.g. a model-layer adapter.

    `model_id` should name provider and model (`openai:text-embedding-3-small`) so the
    index records exactly which vectors it holds. Texts go out in batches of
    `batch_size`; every answer is checked for count and dimensions.
    """

    def __init__(
        self, client: EmbeddingClient, *, model_id: str, dimensions: int, batch_size: int = 64
    ):
        if dimensions <= 0 or batch_size <= 0:
            raise ValueError("dimensions and batch_size must be positive")
        self.client = client
        self._model_id = model_id
        self._dimensions = dimensions
        self.batch_size = batch_size

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        vectors: list[Vector] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            answer = await self.client.embed(batch)
            if len(answer) != len(batch):
                raise EmbeddingError(
                    f"{self.model_id}: asked for {len(batch)} embeddings, got {len(answer)}"
                )
            for vector in answer:
                if len(vector) != self.dimensions:
                    raise EmbeddingError(
                        f"{self.model_id}: an embedding has {len(vector)} dimensions, "
                        f"expected {self.dimensions}; set the right dimensions for this model"
                    )
            vectors.extend([float(x) for x in v] for v in answer)
        return vectors


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalize(vectors: Sequence[Vector] | FloatArray) -> FloatArray:
    """Rows scaled to unit length (cosine similarity becomes a dot product)."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        array = array.reshape(len(array), -1)
    if not np.all(np.isfinite(array)):
        raise EmbeddingError("an embedding contains NaN or infinite values")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.asarray(array / np.clip(norms, 1e-12, None), dtype=np.float32)


class EmbeddingCache:
    """Vectors by (model, sha256 of text) in the knowledge database, so unchanged text
    is never embedded twice (re-ingestion, re-chunking, another document)."""

    def __init__(self, conn: sqlite3.Connection, lock: AbstractContextManager[object]):
        self.conn = conn
        self.lock = lock

    def get(self, model: str, hashes: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        with self.lock:
            for start in range(0, len(hashes), 500):
                part = list(hashes[start : start + 500])
                marks = ",".join("?" * len(part))
                rows = self.conn.execute(
                    f"SELECT text_hash, vector FROM embedding_cache "
                    f"WHERE model = ? AND text_hash IN ({marks})",
                    [model, *part],
                ).fetchall()
                found.update({h: v for h, v in rows})
        return found

    def put(self, model: str, items: Sequence[tuple[str, bytes]]) -> None:
        with self.lock, transaction(self.conn):
            self.conn.executemany(
                "INSERT OR IGNORE INTO embedding_cache (model, text_hash, vector) VALUES (?, ?, ?)",
                [(model, h, v) for h, v in items],
            )


async def embed_cached(
    embedder: Embedder,
    texts: Sequence[str],
    cache: EmbeddingCache | None,
    batch_size: int = 32,
    *,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[FloatArray, int]:
    """(unit vectors for `texts`, rows in order; how many texts had to be embedded).
    Takes what the cache has, embeds the rest in batches, and caches the new ones;
    `on_batch(n)` is told after each batch of n embedded texts."""
    dims = embedder.dimensions
    result = np.zeros((len(texts), dims), dtype=np.float32)
    hashes = [text_hash(t) for t in texts]
    cached = cache.get(embedder.model_id, hashes) if cache is not None else {}
    missing: dict[str, list[int]] = {}
    for index, digest in enumerate(hashes):
        blob = cached.get(digest)
        if blob is not None and len(blob) == dims * 4:
            result[index] = np.frombuffer(blob, dtype=np.float32)
        else:
            missing.setdefault(digest, []).append(index)
    order = list(missing)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        vectors = await embedder.embed([texts[missing[h][0]] for h in batch])
        if len(vectors) != len(batch):
            raise EmbeddingError(
                f"{embedder.model_id}: asked for {len(batch)} embeddings, got {len(vectors)}"
            )
        if any(len(v) != dims for v in vectors):
            raise EmbeddingError(
                f"{embedder.model_id}: embeddings do not have the declared {dims} dimensions"
            )
        unit = normalize(vectors)
        for digest, row in zip(batch, unit, strict=True):
            for index in missing[digest]:
                result[index] = row
        if cache is not None:
            cache.put(
                embedder.model_id, [(h, r.tobytes()) for h, r in zip(batch, unit, strict=True)]
            )
        if on_batch is not None:
            on_batch(len(batch))
    return result, len(order)


def cosine(a: Vector, b: Vector) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0
