"""`RecentEmbeddings`: an `Embedder` that remembers the vectors of the texts it embedded
last, in memory, so a text asked for again is not embedded again.

A copilot's question path embeds the same texts over and over: the question for the
search and again for the passage cut (copilot/passage_budget.py), and the cut embeds
every sentence, item and row of the passages found, which on a follow-up are mostly
the same chunks as the turn before. Vectors depend only on the text and the model, so
the last `size` of them are kept (least recently used out first), exactly as the
embedder gave them (float64 rows).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from pilothouse.knowledge.embeddings import Embedder, Vector


class RecentEmbeddings:
    """`inner`, with the vectors of its last `size` texts kept (see the module doc)."""

    def __init__(self, inner: Embedder, size: int = 2048):
        if size <= 0:
            raise ValueError("size must be positive")
        self.inner = inner
        self.size = size
        self._kept: OrderedDict[str, npt.NDArray[np.float64]] = OrderedDict()
        self.embedded = 0
        """Texts this wrapper had to embed (not found among the kept ones)."""

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        missing = list(dict.fromkeys(t for t in texts if t not in self._kept))
        if missing:
            vectors = await self.inner.embed(missing)
            self.embedded += len(missing)
            for text, vector in zip(missing, vectors, strict=True):
                self._kept[text] = np.asarray(vector, dtype=np.float64)
        found = [self._kept[t] for t in texts]
        for text in texts:
            self._kept.move_to_end(text)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)
        return [row.tolist() for row in found]

    def clear(self) -> None:
        """Forget every kept vector (a benchmark's fresh start)."""
        self._kept.clear()
