"""The embedding interface: any client with an async `embed` plugs in; batches, the
cache, and answers of the wrong shape are caught."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from pilothouse.knowledge import ClientEmbedder, Embedder, EmbeddingError
from pilothouse.knowledge.embeddings import EmbeddingCache, embed_cached
from pilothouse.knowledge.schema import COMPONENT, MIGRATIONS
from pilothouse.knowledge.testing import HashingEmbedder
from pilothouse.storage.sqlite import connect, migrate


class FakeProviderClient:
    """Shaped like the model layer's adapters: `async embed(texts, *, model=None)`."""

    def __init__(self, dims: int = 3, drop: bool = False, wrong_dims: bool = False):
        self.dims = dims
        self.drop = drop
        self.wrong_dims = wrong_dims
        self.batches: list[list[str]] = []

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> list[list[float]]:
        self.batches.append(list(texts))
        size = self.dims + (1 if self.wrong_dims else 0)
        vectors = [[float(len(t)), 1.0] + [0.0] * (size - 2) for t in texts]
        return vectors[:-1] if self.drop else vectors


async def test_client_embedder_batches_and_checks_the_answer() -> None:
    client = FakeProviderClient()
    embedder = ClientEmbedder(
        client, model_id="openai:text-embedding-3-small", dimensions=3, batch_size=2
    )
    assert isinstance(embedder, Embedder)
    vectors = await embedder.embed(["a", "bb", "ccc", "dddd", "e"])
    assert [len(b) for b in client.batches] == [2, 2, 1]
    assert vectors[2] == [3.0, 1.0, 0.0]
    with pytest.raises(EmbeddingError, match="asked for 2 embeddings, got 1"):
        await ClientEmbedder(FakeProviderClient(drop=True), model_id="x:y", dimensions=3).embed(
            ["a", "b"]
        )
    with pytest.raises(EmbeddingError, match="4 dimensions, expected 3"):
        await ClientEmbedder(
            FakeProviderClient(wrong_dims=True), model_id="x:y", dimensions=3
        ).embed(["a"])


async def test_cache_by_model_and_text_hash(tmp_path: Path) -> None:
    conn = connect(tmp_path / "c.sqlite3")
    migrate(conn, COMPONENT, MIGRATIONS)
    cache = EmbeddingCache(conn, threading.Lock())
    embedder = HashingEmbedder(dimensions=16)
    first, embedded = await embed_cached(embedder, ["one", "two", "one"], cache, batch_size=1)
    assert embedded == 2 and embedder.embedded_texts == ["one", "two"]  # duplicates embedded once
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0)
    embedder.calls.clear()
    again, embedded = await embed_cached(embedder, ["two", "three", "one"], cache)
    assert embedded == 1 and embedder.embedded_texts == ["three"]
    assert np.allclose(again[0], first[1]) and np.allclose(again[2], first[0])
    # Another model id does not reuse these vectors.
    other = HashingEmbedder(dimensions=16, model_id="test:other")
    _, embedded = await embed_cached(other, ["one"], cache)
    assert embedded == 1


async def test_bad_vectors_from_an_embedder_are_refused() -> None:
    class Liar(HashingEmbedder):
        async def embed(self, texts: Sequence[str]) -> list[list[float]]:
            return [[float("nan")] * self.dimensions for _ in texts]

    with pytest.raises(EmbeddingError, match="NaN"):
        await embed_cached(Liar(dimensions=4), ["x"], None)
