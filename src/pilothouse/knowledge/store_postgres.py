"""One knowledge base in PostgreSQL, shared by every server replica: the knowledge
store's interface (`KnowledgeStore`) over tables of its own, with pgvector for the
vectors and PostgreSQL's full-text search for keywords (search_postgres.py).

Each knowledge base (the default one, one per copilot) has its own tables, named after
a digest of its name (`kb_<digest>_documents`, `..._chunks`, `..._meta`), created by
forward-only migrations of the component `knowledge/<name>` (schema_postgres.py); the
embedding cache is one table for all (`knowledge_embedding_cache`, keyed by model and
text hash).
Chunks keep their vector in an untyped `vector` column; when an index's settings are
first recorded an HNSW index (inner product: vectors are unit length) is built on
`embedding::vector(<dimensions>)`, and dropped on a reset. The full-text vector is a
generated column (text weighted A, heading context B) under a GIN index; `dl` keeps
each chunk's token count for BM25.

Every change to a document is one transaction, under a per-knowledge-base advisory
lock (writers queue; readers never wait), and moves the `generation` in `..._meta`,
as in SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pilothouse.config import Settings
from pilothouse.knowledge.documents import Chunk, Document
from pilothouse.knowledge.embeddings import EmbeddingCache, FloatArray
from pilothouse.knowledge.filters_postgres import filter_sql
from pilothouse.knowledge.locations import knowledge_dir
from pilothouse.knowledge.query import Filters
from pilothouse.knowledge.rows import (
    DOCUMENT_COLUMNS,
    ChunkRow,
    DocumentRow,
    chunk_fields,
    chunk_row,
    document_row,
)
from pilothouse.knowledge.schema_postgres import (
    BASE_MIGRATIONS,
    SHARED_COMPONENT,
    SHARED_MIGRATIONS,
)
from pilothouse.knowledge.search_indexes import KeywordSearch, VectorSearch
from pilothouse.knowledge.store import KnowledgeStore
from pilothouse.storage.postgres import PostgresDatabase, knowledge_prefix, vector_literal

if TYPE_CHECKING:
    import psycopg


def base_name(settings: Settings, path: Path) -> str:
    """The name of the knowledge base whose SQLite file would be `path`: its path under
    the data directory's knowledge folder without the suffix (`default`,
    `copilots/helpdesk-1a2b3c4d5e6f`), else the path itself."""
    where = path.parent.resolve() / path.name  # the file itself may be a link
    try:
        relative = where.relative_to(knowledge_dir(settings).resolve())
    except ValueError:
        return str(where.with_suffix(""))
    return relative.with_suffix("").as_posix()


class PostgresEmbeddingCache(EmbeddingCache):
    """The embedding cache in one table shared by every knowledge base."""

    def __init__(self, database: PostgresDatabase) -> None:
        self.database = database

    def get(self, model: str, hashes: Sequence[str]) -> dict[str, bytes]:
        if not hashes:
            return {}
        with self.database.connection() as conn:
            rows = conn.execute(
                "SELECT text_hash, vector FROM knowledge_embedding_cache "
                "WHERE model = %s AND text_hash = ANY(%s)",
                (model, list(hashes)),
            ).fetchall()
        return {str(h): bytes(v) for h, v in rows}

    def put(self, model: str, items: Sequence[tuple[str, bytes]]) -> None:
        if not items:
            return
        with self.database.transaction() as conn, conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO knowledge_embedding_cache (model, text_hash, vector) "
                "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                [(model, h, v) for h, v in items],
            )


class PostgresKnowledgeStore(KnowledgeStore):
    """One knowledge base in PostgreSQL (see the module docstring)."""

    def __init__(self, database: PostgresDatabase, name: str) -> None:
        self.database = database
        self.name = name
        self.path = Path(name)
        self.prefix = knowledge_prefix(name)
        p = self.prefix
        self.t_meta, self.t_docs, self.t_chunks = f"{p}_meta", f"{p}_documents", f"{p}_chunks"
        database.migrate(SHARED_COMPONENT, SHARED_MIGRATIONS)
        database.migrate(f"knowledge/{name}", [m.format(p=p) for m in BASE_MIGRATIONS])
        with database.connection() as conn:
            conn.execute(
                "INSERT INTO knowledge_bases (name, prefix) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (name, p),
            )
        self.cache = PostgresEmbeddingCache(database)

    def __repr__(self) -> str:
        return f"PostgresKnowledgeStore({self.name!r} in {self.database.display})"

    def close(self) -> None:
        """Nothing to close: the connection pool belongs to the settings."""

    def search_indexes(self) -> tuple[VectorSearch, KeywordSearch]:
        from pilothouse.knowledge.search_postgres import PostgresDenseIndex, PostgresKeywordIndex

        return PostgresDenseIndex(self), PostgresKeywordIndex(self)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.database.connection() as conn:
            return [tuple(r) for r in conn.execute(sql, params).fetchall()]

    def _write_lock(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.prefix,))

    # --- index settings -------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._rows(f"SELECT key, value FROM {self.t_meta}")}

    def ensure_settings(self, wanted: dict[str, Any], *, reindex_hint: str) -> None:
        if self.settings() is None:
            with self.database.transaction() as conn:
                self._write_lock(conn)
                self._put_meta(conn, "settings", json.dumps(wanted, sort_keys=True))
            self.build_vector_index(wanted)
            return
        super().ensure_settings(wanted, reindex_hint=reindex_hint)

    def build_vector_index(self, settings: dict[str, Any]) -> None:
        """The HNSW index for the vectors of `settings["dimensions"]` (made once; pgvector
        indexes up to 2,000 dimensions, beyond that searches scan)."""
        dimensions = settings.get("dimensions")
        if isinstance(dimensions, int) and 0 < dimensions <= 2000:
            with self.database.transaction() as conn:
                self._write_lock(conn)  # replicas starting together build it once
                conn.execute("SET LOCAL maintenance_work_mem = '256MB'")  # the graph in memory
                conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {self.prefix}_chunks_hnsw ON {self.t_chunks} "
                    f"USING hnsw ((embedding::vector({dimensions})) vector_ip_ops)"
                )

    def reset(self) -> None:
        with self.database.transaction() as conn:
            self._write_lock(conn)
            conn.execute(f"DROP INDEX IF EXISTS {self.prefix}_chunks_hnsw")
            conn.execute(f"DELETE FROM {self.t_chunks}")
            conn.execute(f"DELETE FROM {self.t_docs}")
            conn.execute(f"DELETE FROM {self.t_meta} WHERE key = 'settings'")
            self._next_generation(conn)

    def _put_meta(self, conn: psycopg.Connection[Any], key: str, value: str) -> None:
        conn.execute(
            f"INSERT INTO {self.t_meta} (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            (key, value),
        )

    def _next_generation(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(
            f"INSERT INTO {self.t_meta} (key, value) VALUES ('generation', '1') ON CONFLICT (key) "
            f"DO UPDATE SET value = ({self.t_meta}.value::bigint + 1)::text"
        )

    # --- documents --------------------------------------------------------------------

    def document(self, source: str) -> DocumentRow | None:
        rows = self._rows(
            f"SELECT {DOCUMENT_COLUMNS} FROM {self.t_docs} WHERE source = %s", (source,)
        )
        return document_row(rows[0]) if rows else None

    def documents(self, filters: Filters | None = None) -> list[DocumentRow]:
        where, params = filter_sql(filters or Filters(), self.t_docs)
        rows = self._rows(
            f"SELECT {DOCUMENT_COLUMNS} FROM {self.t_docs} WHERE {where} ORDER BY source", params
        )
        return [document_row(r) for r in rows]

    def replace_document(
        self, document: Document, tags: Sequence[str], chunks: Sequence[Chunk], vectors: FloatArray
    ) -> int:
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk is required")
        with self.database.transaction() as conn:
            self._write_lock(conn)
            conn.execute(f"DELETE FROM {self.t_docs} WHERE source = %s", (document.source,))
            row = conn.execute(
                f"INSERT INTO {self.t_docs} (source, title, kind, mtime, size, content_hash, "
                "tags, chunk_count) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    document.source,
                    document.title,
                    document.kind,
                    document.mtime,
                    document.size,
                    document.content_hash,
                    json.dumps(sorted(set(tags))),
                    len(chunks),
                ),
            ).fetchone()
            assert row is not None
            document_id = int(row[0])
            self._insert_chunks(conn, document, document_id, chunks, vectors)
            self._next_generation(conn)
        return document_id

    def _insert_chunks(
        self,
        conn: psycopg.Connection[Any],
        document: Document,
        document_id: int,
        chunks: Sequence[Chunk],
        vectors: FloatArray,
    ) -> None:
        rows = [
            (*chunk_fields(document, document_id, chunk), pg_vector(vector))
            for chunk, vector in zip(chunks, vectors, strict=True)
        ]
        with conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {self.t_chunks} (document_id, ordinal, text, context, headings, "
                "page, start_char, end_char, tokens, text_hash, embedding) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::vector)",
                rows,
            )
        conn.execute(
            f"UPDATE {self.t_chunks} SET dl = (SELECT COALESCE(SUM(array_length(positions, 1)), 0) "
            "FROM unnest(tsv)) WHERE document_id = %s",
            (document_id,),
        )

    def touch_document(self, document_id: int, mtime: float, tags: Sequence[str]) -> None:
        with self.database.transaction() as conn:
            self._write_lock(conn)
            conn.execute(
                f"UPDATE {self.t_docs} SET mtime = %s, tags = %s WHERE id = %s",
                (mtime, json.dumps(sorted(set(tags))), document_id),
            )
            self._next_generation(conn)

    def remove_documents(self, ids: Iterable[int]) -> int:
        wanted = [int(i) for i in ids]
        if not wanted:
            return 0
        with self.database.transaction() as conn:
            self._write_lock(conn)
            conn.execute(f"DELETE FROM {self.t_docs} WHERE id = ANY(%s)", (wanted,))
            self._next_generation(conn)
        return len(wanted)

    # --- search support -----------------------------------------------------------------

    def chunk_ids(self, filters: Filters) -> list[int]:
        where, params = filter_sql(filters, "d")
        rows = self._rows(
            f"SELECT c.id FROM {self.t_chunks} c JOIN {self.t_docs} d ON d.id = c.document_id "
            f"WHERE {where}",
            params,
        )
        return [int(r[0]) for r in rows]

    def vectors(self) -> tuple[np.ndarray[Any, np.dtype[np.int64]], FloatArray, int]:
        with self.database.transaction() as conn:
            generation = int(dict(self._meta_in(conn)).get("generation", "0"))
            rows = conn.execute(
                f"SELECT id, vector_send(embedding) FROM {self.t_chunks} ORDER BY id"
            ).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        if not rows:
            return ids, np.zeros((0, 0), dtype=np.float32), generation
        return ids, np.stack([from_vector_send(r[1]) for r in rows]), generation

    def _meta_in(self, conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in conn.execute(f"SELECT key, value FROM {self.t_meta}")]

    def vectors_of(self, ids: Sequence[int]) -> dict[int, FloatArray]:
        if not ids:
            return {}
        rows = self._rows(
            f"SELECT id, vector_send(embedding) FROM {self.t_chunks} WHERE id = ANY(%s)",
            ([int(i) for i in ids],),
        )
        return {int(r[0]): from_vector_send(r[1]) for r in rows}

    def document_chunk_ids(self, document_id: int) -> list[int]:
        rows = self._rows(
            f"SELECT id FROM {self.t_chunks} WHERE document_id = %s ORDER BY ordinal",
            (document_id,),
        )
        return [int(r[0]) for r in rows]

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        if not ids:
            return {}
        rows = self._rows(
            "SELECT c.id, c.document_id, d.source, d.title, d.kind, d.tags, c.text, "
            "c.headings, c.page, c.start_char, c.end_char, c.text_hash "
            f"FROM {self.t_chunks} c JOIN {self.t_docs} d ON d.id = c.document_id "
            "WHERE c.id = ANY(%s)",
            ([int(i) for i in ids],),
        )
        return {int(r[0]): chunk_row(r) for r in rows}

    def stats(self) -> dict[str, Any]:
        with self.database.transaction() as conn:
            documents, chunks, tokens = conn.execute(
                f"SELECT (SELECT COUNT(*) FROM {self.t_docs}), COUNT(*), "
                f"COALESCE(SUM(tokens), 0) FROM {self.t_chunks}"
            ).fetchone() or (0, 0, 0)
            kinds = dict(
                conn.execute(f"SELECT kind, COUNT(*) FROM {self.t_docs} GROUP BY kind").fetchall()
            )
            size = conn.execute(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "WHERE c.relname = ANY(%s) AND c.relkind = 'r'",
                ([self.t_meta, self.t_docs, self.t_chunks],),
            ).fetchone()
        return {
            "path": f"{self.database.display} {self.name}",
            "documents": int(documents),
            "chunks": int(chunks),
            "tokens": int(tokens),
            "kinds": {str(k): int(v) for k, v in kinds.items()},
            "cached_embeddings": None,
            "bytes": int(size[0]) if size else 0,
            "settings": self.settings(),
        }

    def check(self) -> list[str]:
        problems: list[str] = []
        for source, expected, actual in self._rows(
            f"SELECT d.source, d.chunk_count, COUNT(c.id) FROM {self.t_docs} d "
            f"LEFT JOIN {self.t_chunks} c ON c.document_id = d.id GROUP BY d.id "
            "HAVING d.chunk_count != COUNT(c.id)"
        ):
            problems.append(f"{source}: {actual} chunks stored, {expected} expected")
        sizes = self._rows(f"SELECT DISTINCT vector_dims(embedding) FROM {self.t_chunks}")
        if len(sizes) > 1:
            problems.append(f"vectors of different sizes: {sorted(s[0] for s in sizes)}")
        return problems


def from_vector_send(data: bytes) -> FloatArray:
    """A vector from pgvector's binary form (`vector_send`): two 16-bit words (the
    dimensions, unused), then the values as big-endian float32."""
    values: FloatArray = np.frombuffer(bytes(data), dtype=">f4", offset=4).astype(np.float32)
    return values


def pg_vector(vector: FloatArray | Sequence[float]) -> str:
    """A vector as pgvector's exact text form (float32 values)."""
    return vector_literal(np.asarray(vector, dtype=np.float32).reshape(-1).tolist())


def open_store(
    database: PostgresDatabase, settings: Settings, path: Path
) -> PostgresKnowledgeStore:
    """The postgresql backend's factory for `knowledge`: the knowledge base whose
    SQLite file would be `path` (storage/backends.py)."""
    return PostgresKnowledgeStore(database, base_name(settings, path))
