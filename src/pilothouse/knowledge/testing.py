"""A deterministic embedder for tests: no weights, no network, and still meaningful
(texts that share words get similar vectors)."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence

from pilothouse.knowledge.embeddings import Vector

_WORDS = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Bag of words hashed into `dimensions` buckets, unit length. `calls` records
    every batch asked for, so tests can assert what was (not) re-embedded."""

    def __init__(self, dimensions: int = 64, model_id: str = "test:hashing"):
        self._dimensions = dimensions
        self._model_id = model_id
        self.calls: list[list[str]] = []

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def embedded_texts(self) -> list[str]:
        return [t for batch in self.calls for t in batch]

    def vector(self, text: str) -> Vector:
        vector = [0.0] * self._dimensions
        for word in _WORDS.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self._dimensions
            vector[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(x * x for x in vector))
        if norm == 0:
            vector[0] = 1.0
            return vector
        return [x / norm for x in vector]

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        self.calls.append(list(texts))
        return [self.vector(t) for t in texts]
