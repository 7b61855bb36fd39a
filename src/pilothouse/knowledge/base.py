"""A knowledge base: the one object the copilot runtime, the CLI and the server use.
It ties a store (one SQLite file), an embedder and the chunking settings together,
and refuses to mix vectors of different models or chunkings in one index."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pilothouse.config import Settings
from pilothouse.knowledge.chunking import Chunker, ChunkingSettings
from pilothouse.knowledge.documents import Document, SearchResult
from pilothouse.knowledge.embeddings import Embedder
from pilothouse.knowledge.ingestion import IngestOptions, Ingestor, IngestReport, Progress
from pilothouse.knowledge.locations import open_knowledge_store
from pilothouse.knowledge.query import Filters
from pilothouse.knowledge.recent_embeddings import RecentEmbeddings
from pilothouse.knowledge.rerank import RelevanceJudge, RerankSettings, rerank
from pilothouse.knowledge.retrieval import Retriever, SearchOptions
from pilothouse.knowledge.rows import DocumentRow
from pilothouse.knowledge.store import KnowledgeStore
from pilothouse.knowledge.tokens import ApproximateCounter, TokenCounter

REINDEX_HINT = "run `pilothouse knowledge add --reindex PATH...` to rebuild it with the new ones"


class KnowledgeBase:
    def __init__(
        self,
        path: Path,
        embedder: Embedder,
        *,
        chunking: ChunkingSettings | None = None,
        counter: TokenCounter | None = None,
        store: KnowledgeStore | None = None,
    ):
        self.path = path
        self.embedder = embedder
        self.counter = counter or ApproximateCounter()
        self.chunking = chunking or ChunkingSettings(tokenizer=self.counter.name)
        if self.chunking.tokenizer != self.counter.name:
            raise ValueError("chunking.tokenizer must name the token counter in use")
        self.store = store if store is not None else KnowledgeStore(path)
        self.recent = RecentEmbeddings(embedder)
        """The embedder for questions and what is cut from passages: the vectors of
        the last texts kept in memory (a follow-up's passages are mostly the same)."""
        self.retriever = Retriever(self.store, self.recent)
        self.ingestor = Ingestor(self.store, embedder, Chunker(self.chunking, self.counter))

    @classmethod
    def open_local(
        cls,
        path: Path,
        *,
        chunking: ChunkingSettings | None = None,
        settings: Settings | None = None,
    ) -> KnowledgeBase:
        """With the local default embedding model (the process's shared one) and its
        tokenizer for chunking. With `settings`, the knowledge base is kept by their
        storage backend (the SQLite file `path`, or its tables in the shared PostgreSQL
        database)."""
        from pilothouse.knowledge.local_embedder import minilm_token_counter, shared_minilm

        counter = minilm_token_counter()
        chunks = chunking or ChunkingSettings(tokenizer=counter.name)
        store = open_knowledge_store(settings, path) if settings is not None else None
        return cls(path, shared_minilm(), chunking=chunks, counter=counter, store=store)

    @property
    def wanted_settings(self) -> dict[str, Any]:
        return {
            "embedding_model": self.embedder.model_id,
            "dimensions": self.embedder.dimensions,
            "chunking": self.chunking.as_dict(),
        }

    def check_settings(self) -> None:
        """Raise `IndexMismatchError` if the index was built with other settings."""
        current = self.store.settings()
        if current is not None:
            self.store.ensure_settings(self.wanted_settings, reindex_hint=REINDEX_HINT)

    async def add(
        self,
        paths: Sequence[str],
        *,
        options: IngestOptions | None = None,
        progress: Progress | None = None,
        reindex: bool = False,
        cwd: Path | None = None,
    ) -> IngestReport:
        """Ingest files, folders and globs incrementally (see ingestion.py).
        `reindex` first empties the index (keeping the embedding cache) and records the
        current settings, for a model or chunking change."""
        if reindex:
            await asyncio.to_thread(self.store.reset)
        await asyncio.to_thread(
            self.store.ensure_settings, self.wanted_settings, reindex_hint=REINDEX_HINT
        )
        return await self.ingestor.ingest(paths, options, progress, cwd)

    async def add_document(self, document: Document, tags: Sequence[str] = ()) -> int:
        await asyncio.to_thread(
            self.store.ensure_settings, self.wanted_settings, reindex_hint=REINDEX_HINT
        )
        return await self.ingestor.add_document(document, tags)

    async def search(
        self,
        query: str,
        options: SearchOptions | None = None,
        *,
        judge: RelevanceJudge | None = None,
        rerank_settings: RerankSettings | None = None,
    ) -> list[SearchResult]:
        """Ranked passages; with a `judge`, the top candidates are reranked by it and
        those it finds irrelevant are dropped."""
        options = options or SearchOptions()
        if self.store.settings() is None:
            return []  # nothing indexed yet
        self.check_settings()
        if judge is None:
            return await self.retriever.search(query, options)
        settings = rerank_settings or RerankSettings()
        wide = dataclasses.replace(options, k=max(options.k, settings.top_n))
        candidates = await self.retriever.search(query, wide)
        return (await rerank(query, candidates, judge, settings))[: options.k]

    def warm(self) -> None:
        """Read the vectors and keyword statistics now rather than on the first
        search (about a second at 100k chunks); a server calls it at start-up."""
        if self.store.settings() is not None:
            self.retriever.warm()

    def documents(self, filters: Filters | None = None) -> list[DocumentRow]:
        return self.store.documents(filters)

    def remove(self, filters: Filters) -> list[str]:
        """Remove the documents matching `filters`; returns their sources."""
        if filters.empty:
            raise ValueError("give at least one source pattern, kind or tag to remove")
        rows = self.store.documents(filters)
        self.store.remove_documents(r.id for r in rows)
        return [r.source for r in rows]

    def stats(self) -> dict[str, Any]:
        return self.store.stats()

    def close(self) -> None:
        self.store.close()
