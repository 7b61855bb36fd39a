"""Incremental ingestion: add what is new, re-embed what changed, remove what was
deleted, and report every file's outcome (with a reason when it failed).

Per file: an unchanged size and modification time skip it without reading; an
unchanged content hash skips parsing and embedding; otherwise the file is parsed,
chunked and embedded (the cache spares unchanged chunks), then written in one
transaction. Nothing is written for a file that fails, so a bad file never leaves
half a document, and a killed run leaves every document whole: the next run finishes
the rest.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pilothouse.knowledge.chunking import Chunker, embedding_text
from pilothouse.knowledge.discovery import Scope, discover
from pilothouse.knowledge.documents import Document
from pilothouse.knowledge.embeddings import Embedder, embed_cached
from pilothouse.knowledge.errors import LoadError
from pilothouse.knowledge.loaders import (
    DEFAULT_MAX_FILE_BYTES,
    content_hash,
    describe_os_error,
    load_file,
    read_file,
)
from pilothouse.knowledge.store import KnowledgeStore

Status = Literal["added", "updated", "unchanged", "removed", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class FileOutcome:
    source: str
    status: Status
    reason: str = ""
    chunks: int = 0


@dataclass(slots=True)
class IngestReport:
    outcomes: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0
    embedded_chunks: int = 0

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failures(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def chunks(self) -> int:
        return sum(o.chunks for o in self.outcomes if o.status in ("added", "updated"))


Progress = Callable[[int, int, FileOutcome | None], None]
"""Called as (files done, files in total, outcome of the file just done or None)."""


@dataclass(frozen=True, slots=True)
class IngestOptions:
    tags: tuple[str, ...] = ()
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    remove_missing: bool = True
    embed_batch_size: int = 32


class Ingestor:
    def __init__(self, store: KnowledgeStore, embedder: Embedder, chunker: Chunker):
        self.store = store
        self.embedder = embedder
        self.chunker = chunker

    async def ingest(
        self,
        specs: Sequence[str],
        options: IngestOptions | None = None,
        progress: Progress | None = None,
        cwd: Path | None = None,
    ) -> IngestReport:
        options = options or IngestOptions()
        started = time.monotonic()
        report = IngestReport()
        found = await asyncio.to_thread(discover, list(specs), cwd=cwd)
        total = len(found.files)
        if progress:
            progress(0, total, None)
        report.outcomes.extend(FileOutcome(s, "failed", r) for s, r in found.problems)
        report.outcomes.extend(FileOutcome(s, "skipped", r) for s, r in found.skipped)
        for done, source in enumerate(found.files, start=1):
            outcome = await self._one(source, options, report)
            report.outcomes.append(outcome)
            if progress:
                progress(done, total, outcome)
        # A file or folder that failed (unreadable, a loop) keeps what is indexed
        # under it: it is not known to be gone.
        seen = set(found.files)
        protected = [Scope(p) for p, _ in found.problems]
        protected += [Scope(p, folder=True) for p, _ in found.problems]
        if options.remove_missing:
            removed = await asyncio.to_thread(self._remove_missing, found.scopes, seen, protected)
            report.outcomes.extend(FileOutcome(s, "removed") for s in removed)
        for path in found.missing:
            gone: list[str] = []
            if options.remove_missing:
                scopes = [Scope(path), Scope(path, folder=True)]
                gone = await asyncio.to_thread(self._remove_missing, scopes, set(), [])
                report.outcomes.extend(FileOutcome(s, "removed") for s in gone)
            if not gone:
                report.outcomes.append(FileOutcome(path, "failed", "not found"))
        report.seconds = time.monotonic() - started
        return report

    async def add_document(self, document: Document, tags: Sequence[str] = ()) -> int:
        """Index an already loaded document (e.g. an upload or a fetched URL); returns
        its number of chunks."""
        count, _ = await self._index(document, tags)
        return count

    async def _index(self, document: Document, tags: Sequence[str]) -> tuple[int, int]:
        """(chunks stored, chunks that had to be embedded)."""
        chunks = await asyncio.to_thread(self.chunker.chunk, document)
        texts = [embedding_text(document.title, c.headings, c.text) for c in chunks]
        vectors, embedded = await embed_cached(self.embedder, texts, self.store.cache)
        await asyncio.to_thread(self.store.replace_document, document, tags, chunks, vectors)
        return len(chunks), embedded

    async def _one(self, source: str, options: IngestOptions, report: IngestReport) -> FileOutcome:
        path = Path(source)
        existing = await asyncio.to_thread(self.store.document, source)
        tags = tuple(sorted(set(options.tags)))
        try:
            info = await asyncio.to_thread(os.stat, path)
            if (
                existing is not None
                and existing.mtime == info.st_mtime
                and existing.size == info.st_size
                and existing.tags == tags
            ):
                return FileOutcome(source, "unchanged", chunks=existing.chunk_count)
            data, mtime = await asyncio.to_thread(
                read_file, path, source=source, max_bytes=options.max_file_bytes
            )
            digest = await asyncio.to_thread(content_hash, data)
            if existing is not None and existing.content_hash == digest:
                await asyncio.to_thread(self.store.touch_document, existing.id, mtime, tags)
                return FileOutcome(source, "unchanged", chunks=existing.chunk_count)
            document = await asyncio.to_thread(
                load_file, path, source=source, data=data, mtime=mtime
            )
        except LoadError as exc:
            return FileOutcome(source, "failed", exc.reason)
        except OSError as exc:
            return FileOutcome(source, "failed", describe_os_error(exc))
        count, embedded = await self._index(document, tags)
        report.embedded_chunks += embedded
        return FileOutcome(source, "updated" if existing else "added", chunks=count)

    def _remove_missing(
        self, scopes: Sequence[Scope], seen: set[str], protected: Sequence[Scope]
    ) -> list[str]:
        if not scopes:
            return []
        gone = [
            doc
            for doc in self.store.documents()
            if doc.source not in seen
            and any(scope.covers(doc.source) for scope in scopes)
            and not any(scope.covers(doc.source) for scope in protected)
        ]
        self.store.remove_documents(d.id for d in gone)
        return [d.source for d in gone]
