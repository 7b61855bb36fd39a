"""`RecentEmbeddings` embeds a text once while it is among the last ones asked for,
giving the inner embedder's vectors exactly, and forgets the least recently used."""

from __future__ import annotations

import pytest

from pilothouse.knowledge.recent_embeddings import RecentEmbeddings
from pilothouse.knowledge.testing import HashingEmbedder


async def test_a_text_asked_again_is_not_embedded_again() -> None:
    inner = HashingEmbedder()
    recent = RecentEmbeddings(inner, size=3)
    first = await recent.embed(["a b", "c", "a b"])
    assert inner.calls == [["a b", "c"]]  # each text once
    again = await recent.embed(["c", "d", "a b"])
    assert inner.calls[1:] == [["d"]]
    assert first == [inner.vector("a b"), inner.vector("c"), inner.vector("a b")]
    assert again == [inner.vector("c"), inner.vector("d"), inner.vector("a b")]
    assert recent.embedded == 3
    assert (recent.model_id, recent.dimensions) == (inner.model_id, inner.dimensions)


async def test_the_least_recently_used_text_is_forgotten() -> None:
    inner = HashingEmbedder()
    recent = RecentEmbeddings(inner, size=2)
    await recent.embed(["a", "b"])
    await recent.embed(["a", "c"])  # b is the oldest now: out
    await recent.embed(["a", "b"])
    assert inner.calls == [["a", "b"], ["c"], ["b"]]
    with pytest.raises(ValueError, match="size"):
        RecentEmbeddings(inner, size=0)


async def test_clear_forgets_every_vector() -> None:
    inner = HashingEmbedder()
    recent = RecentEmbeddings(inner)
    await recent.embed(["a"])
    recent.clear()
    await recent.embed(["a"])
    assert inner.calls == [["a"], ["a"]]
