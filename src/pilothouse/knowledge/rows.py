"""A knowledge base's rows as every store backend gives them (`DocumentRow`,
`ChunkRow`) and the columns they are read from and written to, shared by the SQLite
store (store.py) and the PostgreSQL one (store_postgres.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pilothouse.knowledge.chunking import embedding_text
from pilothouse.knowledge.documents import Chunk, Document
from pilothouse.knowledge.embeddings import text_hash


@dataclass(frozen=True, slots=True)
class DocumentRow:
    id: int
    source: str
    title: str
    kind: str
    mtime: float
    size: int
    content_hash: str
    tags: tuple[str, ...]
    chunk_count: int
    ingested_at: str


@dataclass(frozen=True, slots=True)
class ChunkRow:
    id: int
    document_id: int
    source: str
    title: str
    kind: str
    tags: tuple[str, ...]
    text: str
    headings: tuple[str, ...]
    page: int | None
    start: int
    end: int
    text_hash: str


DOCUMENT_COLUMNS = (
    "id, source, title, kind, mtime, size, content_hash, tags, chunk_count, ingested_at"
)
"""The documents table's columns as `document_row` reads them (SQLite and PostgreSQL)."""


def chunk_fields(document: Document, document_id: int, chunk: Chunk) -> tuple[Any, ...]:
    """A chunk's stored columns but its vector: `document_id, ordinal, text, context,
    headings, page, start_char, end_char, tokens, text_hash`."""
    return (
        document_id,
        chunk.ordinal,
        chunk.text,
        embedding_text(document.title, chunk.headings, "").strip(),
        json.dumps(list(chunk.headings), ensure_ascii=False),
        chunk.page,
        chunk.start,
        chunk.end,
        chunk.tokens,
        text_hash(chunk.text),
    )


def chunk_row(r: Sequence[Any]) -> ChunkRow:
    """A ChunkRow from `id, document_id, source, title, kind, tags, text, headings, page,
    start_char, end_char, text_hash`."""
    return ChunkRow(
        id=int(r[0]),
        document_id=int(r[1]),
        source=r[2],
        title=r[3],
        kind=r[4],
        tags=tuple(json.loads(r[5])),
        text=r[6],
        headings=tuple(json.loads(r[7])),
        page=r[8],
        start=int(r[9]),
        end=int(r[10]),
        text_hash=r[11],
    )


def document_row(row: Sequence[Any]) -> DocumentRow:
    """A DocumentRow from `DOCUMENT_COLUMNS`."""
    return DocumentRow(
        id=int(row[0]),
        source=row[1],
        title=row[2],
        kind=row[3],
        mtime=float(row[4]),
        size=int(row[5]),
        content_hash=row[6],
        tags=tuple(json.loads(row[7])),
        chunk_count=int(row[8]),
        ingested_at=row[9],
    )
