"""One knowledge base in one SQLite file: documents, chunks (with their vectors), the
FTS5 index over them, index settings and the embedding cache.

Every change to a document happens in one transaction (its row, its chunks, their
full-text entries and vectors together), so an interrupted ingestion, even a kill -9,
leaves each document either wholly old or wholly new. A `generation` counter in
`kb_meta` goes up with every change so in-memory vector matrices know to reload.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pilothouse.knowledge.documents import Chunk, Document
from pilothouse.knowledge.embeddings import EmbeddingCache, FloatArray
from pilothouse.knowledge.errors import IndexMismatchError
from pilothouse.knowledge.query import Filters
from pilothouse.knowledge.rows import (
    DOCUMENT_COLUMNS,
    ChunkRow,
    DocumentRow,
    chunk_fields,
    chunk_row,
    document_row,
)
from pilothouse.knowledge.schema import COMPONENT, MIGRATIONS
from pilothouse.knowledge.search_indexes import KeywordSearch, VectorSearch
from pilothouse.storage.sqlite import connect, migrate, transaction


class KnowledgeStore:
    """Synchronous access to one knowledge base file; safe to share between threads
    (one lock around the connection)."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.RLock()
        self.conn = connect(path, check_same_thread=False)
        with self.lock:
            migrate(self.conn, COMPONENT, MIGRATIONS)
        self.cache = EmbeddingCache(self.conn, self.lock)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def search_indexes(self) -> tuple[VectorSearch, KeywordSearch]:
        """The dense and keyword indexes a `Retriever` searches this store with: vectors
        in memory with numpy, BM25 over FTS5 (another backend gives its own)."""
        from pilothouse.knowledge.keywords import KeywordIndex
        from pilothouse.knowledge.vectors import DenseIndex

        return DenseIndex(self), KeywordIndex(self)

    # --- index settings -------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        with self.lock:
            return dict(self.conn.execute("SELECT key, value FROM kb_meta").fetchall())

    def generation(self) -> int:
        return int(self.meta().get("generation", "0"))

    def settings(self) -> dict[str, Any] | None:
        raw = self.meta().get("settings")
        return json.loads(raw) if raw else None

    def ensure_settings(self, wanted: dict[str, Any], *, reindex_hint: str) -> None:
        """Record `wanted` on a fresh index; on an existing one, refuse any difference."""
        current = self.settings()
        if current is None:
            with self.lock, transaction(self.conn):
                self._set_meta("settings", json.dumps(wanted, sort_keys=True))
            return
        if current != wanted:
            changes = ", ".join(
                f"{key}: index has {current.get(key)!r}, asked for {wanted.get(key)!r}"
                for key in sorted(set(current) | set(wanted))
                if current.get(key) != wanted.get(key)
            )
            raise IndexMismatchError(
                f"{self.path}: this knowledge base was built with other settings ({changes}). "
                f"Vectors of different models or chunkings are never mixed: {reindex_hint}"
            )

    def reset(self) -> None:
        """Drop every document and chunk and the recorded settings (for a re-index).
        The embedding cache is kept: unchanged text is not embedded again."""
        with self.lock, transaction(self.conn):
            self.conn.execute("DELETE FROM chunks")
            self.conn.execute("DELETE FROM documents")
            self.conn.execute("DELETE FROM kb_meta WHERE key = 'settings'")
            self._bump()

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO kb_meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _bump(self) -> None:
        self.conn.execute(
            "INSERT INTO kb_meta (key, value) VALUES ('generation', '1') ON CONFLICT (key) "
            "DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
        )

    # --- documents --------------------------------------------------------------------

    def document(self, source: str) -> DocumentRow | None:
        with self.lock:
            row = self.conn.execute(
                f"SELECT {DOCUMENT_COLUMNS} FROM documents WHERE source = ?", (source,)
            ).fetchone()
        return document_row(row) if row else None

    def documents(self, filters: Filters | None = None) -> list[DocumentRow]:
        where, params = (filters or Filters()).sql("documents")
        with self.lock:
            rows = self.conn.execute(
                f"SELECT {DOCUMENT_COLUMNS} FROM documents WHERE {where} ORDER BY source", params
            ).fetchall()
        return [document_row(r) for r in rows]

    def replace_document(
        self, document: Document, tags: Sequence[str], chunks: Sequence[Chunk], vectors: FloatArray
    ) -> int:
        """Store `document` with its chunks and unit vectors, replacing any earlier
        version of the same source, all in one transaction. Returns the document id."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk is required")
        tag_json = json.dumps(sorted(set(tags)))
        with self.lock, transaction(self.conn):
            self.conn.execute(
                "DELETE FROM chunks WHERE document_id IN "
                "(SELECT id FROM documents WHERE source = ?)",
                (document.source,),
            )
            self.conn.execute("DELETE FROM documents WHERE source = ?", (document.source,))
            cursor = self.conn.execute(
                "INSERT INTO documents (source, title, kind, mtime, size, content_hash, tags, "
                "chunk_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    document.source,
                    document.title,
                    document.kind,
                    document.mtime,
                    document.size,
                    document.content_hash,
                    tag_json,
                    len(chunks),
                ),
            )
            document_id = int(cursor.lastrowid or 0)
            self.conn.executemany(
                "INSERT INTO chunks (document_id, ordinal, text, context, headings, page, "
                "start_char, end_char, tokens, text_hash, embedding) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        *chunk_fields(document, document_id, chunk),
                        np.asarray(vector, dtype=np.float32).tobytes(),
                    )
                    for chunk, vector in zip(chunks, vectors, strict=True)
                ],
            )
            self._bump()
        return document_id

    def touch_document(self, document_id: int, mtime: float, tags: Sequence[str]) -> None:
        """Same content, new modification time (or tags): no re-embedding."""
        with self.lock, transaction(self.conn):
            self.conn.execute(
                "UPDATE documents SET mtime = ?, tags = ? WHERE id = ?",
                (mtime, json.dumps(sorted(set(tags))), document_id),
            )
            self._bump()

    def remove_documents(self, ids: Iterable[int]) -> int:
        wanted = list(ids)
        if not wanted:
            return 0
        with self.lock, transaction(self.conn):
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                marks = ",".join("?" * len(part))
                self.conn.execute(f"DELETE FROM chunks WHERE document_id IN ({marks})", part)
                self.conn.execute(f"DELETE FROM documents WHERE id IN ({marks})", part)
            self._bump()
        return len(wanted)

    # --- search support -----------------------------------------------------------------

    def chunk_ids(self, filters: Filters) -> list[int]:
        where, params = filters.sql("d")
        with self.lock:
            rows = self.conn.execute(
                f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE {where}",
                params,
            ).fetchall()
        return [int(r[0]) for r in rows]

    def vectors(self) -> tuple[np.ndarray[Any, np.dtype[np.int64]], FloatArray, int]:
        """(chunk ids, matrix of unit vectors, generation) of the whole index."""
        with self.lock:
            generation = self.generation()
            rows = self.conn.execute("SELECT id, embedding FROM chunks ORDER BY id").fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        if not rows:
            return ids, np.zeros((0, 0), dtype=np.float32), generation
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
        return ids, matrix.reshape(len(rows), -1), generation

    def vectors_of(self, ids: Sequence[int]) -> dict[int, FloatArray]:
        if not ids:
            return {}
        marks = ",".join(str(int(i)) for i in ids)
        with self.lock:
            rows = self.conn.execute(
                f"SELECT id, embedding FROM chunks WHERE id IN ({marks})"
            ).fetchall()
        return {int(r[0]): np.frombuffer(r[1], dtype=np.float32) for r in rows}

    def document_chunk_ids(self, document_id: int) -> list[int]:
        """The chunk ids of one document, in the document's order."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT id FROM chunks WHERE document_id = ? ORDER BY ordinal", (document_id,)
            ).fetchall()
        return [int(r[0]) for r in rows]

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        if not ids:
            return {}
        marks = ",".join(str(int(i)) for i in ids)
        with self.lock:
            rows = self.conn.execute(
                "SELECT c.id, c.document_id, d.source, d.title, d.kind, d.tags, c.text, "
                "c.headings, c.page, c.start_char, c.end_char, c.text_hash "
                f"FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id IN ({marks})"
            ).fetchall()
        return {int(r[0]): chunk_row(r) for r in rows}

    def stats(self) -> dict[str, Any]:
        with self.lock:
            documents, chunks, tokens = self.conn.execute(
                "SELECT (SELECT COUNT(*) FROM documents), COUNT(*), COALESCE(SUM(tokens), 0) "
                "FROM chunks"
            ).fetchone()
            kinds = dict(
                self.conn.execute("SELECT kind, COUNT(*) FROM documents GROUP BY kind").fetchall()
            )
            cached = self.conn.execute("SELECT COUNT(*) FROM embedding_cache").fetchone()[0]
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        return {
            "path": str(self.path),
            "documents": documents,
            "chunks": chunks,
            "tokens": tokens,
            "kinds": kinds,
            "cached_embeddings": cached,
            "bytes": size,
            "settings": self.settings(),
        }

    def check(self) -> list[str]:
        """Consistency problems (empty when the index is whole): every document has the
        chunks it says, every chunk a full-text entry, every vector the same size."""
        problems: list[str] = []
        with self.lock:
            for source, expected, actual in self.conn.execute(
                "SELECT d.source, d.chunk_count, COUNT(c.id) FROM documents d "
                "LEFT JOIN chunks c ON c.document_id = d.id GROUP BY d.id "
                "HAVING d.chunk_count != COUNT(c.id)"
            ):
                problems.append(f"{source}: {actual} chunks stored, {expected} expected")
            try:
                self.conn.execute(
                    "INSERT INTO chunks_fts (chunks_fts, rank) VALUES ('integrity-check', 1)"
                )
            except sqlite3.DatabaseError as exc:
                problems.append(f"full-text index: {exc}")
            sizes = self.conn.execute("SELECT DISTINCT length(embedding) FROM chunks").fetchall()
            if len(sizes) > 1:
                problems.append(f"vectors of different sizes: {sorted(s[0] for s in sizes)}")
            integrity = self.conn.execute("PRAGMA integrity_check").fetchone()[0]
            if integrity != "ok":
                problems.append(f"integrity_check: {integrity}")
        return problems


def open_sqlite_store(path: Path, settings: object, base: Path) -> KnowledgeStore:
    """The sqlite backend's factory for `knowledge`: the knowledge base in the SQLite
    file `base` (storage/backends.py; `path` is the data directory's database)."""
    del path, settings
    return KnowledgeStore(base)
