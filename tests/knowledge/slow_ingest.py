"""Run as a script by test_ingestion's kill test: ingests a folder with an embedder
that is slow on purpose, so the test can kill -9 it half-way."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pilothouse.knowledge import KnowledgeBase
from pilothouse.knowledge.embeddings import Vector
from pilothouse.knowledge.testing import HashingEmbedder


class SlowEmbedder(HashingEmbedder):
    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        time.sleep(0.05)  # noqa: ASYNC251 - blocks like a CPU-bound model would
        return await super().embed(texts)


def main() -> None:
    database, folder = sys.argv[1], sys.argv[2]
    base = KnowledgeBase(Path(database), SlowEmbedder())
    print("started", flush=True)
    asyncio.run(base.add([folder]))
    base.close()
    print("finished", flush=True)


if __name__ == "__main__":
    main()
