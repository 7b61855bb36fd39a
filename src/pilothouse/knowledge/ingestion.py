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
    DEFAULT_LOADER_LIMITS,
    DEFAULT_MAX_FILE_BYTES,
    LoaderLimits,
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


@dataclass(frozen=True, slots=True)
class IngestProgress:
    """Where an ingestion stands, sent when a file starts, after each embedded batch
    and when a file is done. `current` is the file being worked on (None between
    files); `outcome` the file just finished (with `phase == "done"`). Bytes let a
    caller estimate the time left before the number of chunks is known."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    chunks_embedded: int
    seconds: float
    phase: Literal["start", "reading", "embedding", "done"] = "start"
    current: str | None = None
    file_chunks: int = 0
    file_embedded: int = 0
    outcome: FileOutcome | None = None

    @property
    def chunks_per_second(self) -> float:
        return self.chunks_embedded / self.seconds if self.seconds > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        """Estimated from the bytes still to read at the pace so far; None until
        something has been read."""
        if self.bytes_done <= 0 or self.seconds <= 0:
            return None
        return self.seconds * (self.bytes_total - self.bytes_done) / self.bytes_done


Progress = Callable[[IngestProgress], None]


@dataclass(frozen=True, slots=True)
class IngestOptions:
    tags: tuple[str, ...] = ()
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    loader_limits: LoaderLimits = DEFAULT_LOADER_LIMITS
    """The per-file processing budget: time, text, ZIP members (loaders/limits.py)."""
    confine_to: tuple[str, ...] = ()
    """When set, only files whose real path (links resolved) lies under one of these
    folders are read; any other fails with a reason (a copilot's own folder)."""
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
        found = await asyncio.to_thread(discover, list(specs), cwd=cwd, confine=options.confine_to)
        sizes = await asyncio.to_thread(_sizes, found.files)
        tracker = _Tracker(progress, report, len(found.files), sum(sizes.values()), started)
        tracker.send("start")
        report.outcomes.extend(FileOutcome(s, "failed", r) for s, r in found.problems)
        report.outcomes.extend(FileOutcome(s, "failed", r) for s, r in found.refused)
        report.outcomes.extend(FileOutcome(s, "skipped", r) for s, r in found.skipped)
        for source in found.files:
            tracker.begin(source)
            outcome = await self._one(source, options, report, tracker)
            report.outcomes.append(outcome)
            tracker.finish(outcome, sizes.get(source, 0))
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

    async def _index(
        self,
        document: Document,
        tags: Sequence[str],
        tracker: _Tracker | None = None,
        batch_size: int = 32,
    ) -> tuple[int, int]:
        """(chunks stored, chunks that had to be embedded)."""
        chunks = await asyncio.to_thread(self.chunker.chunk, document)
        texts = [embedding_text(document.title, c.headings, c.text) for c in chunks]
        on_batch = tracker.embedded if tracker is not None else None
        if tracker is not None:
            tracker.chunks_of_file(len(chunks))
        vectors, embedded = await embed_cached(
            self.embedder, texts, self.store.cache, batch_size, on_batch=on_batch
        )
        await asyncio.to_thread(self.store.replace_document, document, tags, chunks, vectors)
        return len(chunks), embedded

    async def _one(
        self, source: str, options: IngestOptions, report: IngestReport, tracker: _Tracker
    ) -> FileOutcome:
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
                load_file,
                path,
                source=source,
                data=data,
                mtime=mtime,
                limits=options.loader_limits,
            )
        except LoadError as exc:
            return FileOutcome(source, "failed", exc.reason)
        except OSError as exc:
            return FileOutcome(source, "failed", describe_os_error(exc))
        count, _ = await self._index(document, tags, tracker, options.embed_batch_size)
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


def _sizes(files: Sequence[str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for source in files:
        try:
            sizes[source] = os.stat(source).st_size
        except OSError:
            sizes[source] = 0
    return sizes


class _Tracker:
    """Counts what an ingestion has done and tells the caller's progress callback.
    Files found unchanged leave the byte count, so the time left is estimated from
    the pace of files actually read and embedded."""

    def __init__(
        self,
        callback: Progress | None,
        report: IngestReport,
        files: int,
        total_bytes: int,
        started: float,
    ):
        self.callback = callback
        self.report = report
        self.files_total = files
        self.files_done = 0
        self.bytes_total = total_bytes
        self.bytes_done = 0
        self.started = started
        self.current: str | None = None
        self.file_chunks = 0
        self.file_embedded = 0

    def send(
        self,
        phase: Literal["start", "reading", "embedding", "done"],
        outcome: FileOutcome | None = None,
    ) -> None:
        if self.callback is None:
            return
        self.callback(
            IngestProgress(
                files_done=self.files_done,
                files_total=self.files_total,
                bytes_done=self.bytes_done,
                bytes_total=self.bytes_total,
                chunks_embedded=self.report.embedded_chunks,
                seconds=time.monotonic() - self.started,
                phase=phase,
                current=self.current,
                file_chunks=self.file_chunks,
                file_embedded=self.file_embedded,
                outcome=outcome,
            )
        )

    def begin(self, source: str) -> None:
        self.current, self.file_chunks, self.file_embedded = source, 0, 0
        self.send("reading")

    def chunks_of_file(self, count: int) -> None:
        self.file_chunks = count
        self.send("embedding")

    def embedded(self, count: int) -> None:
        self.file_embedded += count
        self.report.embedded_chunks += count
        self.send("embedding")

    def finish(self, outcome: FileOutcome, size: int) -> None:
        self.files_done += 1
        if outcome.status in ("added", "updated"):
            self.bytes_done += size
        else:  # skipped quickly: leave it out of the pace
            self.bytes_total -= size
        self.current = None
        self.send("done", outcome)
