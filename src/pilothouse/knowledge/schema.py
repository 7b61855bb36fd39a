"""The knowledge tables, as forward-only migrations of the component "knowledge".
Never edit a released migration; append a new one."""

from __future__ import annotations

COMPONENT = "knowledge"
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"

MIGRATIONS: tuple[str, ...] = (
    # 1: documents, chunks with provenance and vectors, FTS5 over chunks, meta, cache.
    """
    CREATE TABLE kb_meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE documents (
        id           INTEGER PRIMARY KEY,
        source       TEXT    NOT NULL UNIQUE,
        title        TEXT    NOT NULL,
        kind         TEXT    NOT NULL,
        mtime        REAL    NOT NULL,
        size         INTEGER NOT NULL,
        content_hash TEXT    NOT NULL,
        tags         TEXT    NOT NULL DEFAULT '[]',
        chunk_count  INTEGER NOT NULL,
        ingested_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
    );
    CREATE TABLE chunks (
        id          INTEGER PRIMARY KEY,
        document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        ordinal     INTEGER NOT NULL,
        text        TEXT    NOT NULL,
        context     TEXT    NOT NULL,
        headings    TEXT    NOT NULL,
        page        INTEGER,
        start_char  INTEGER NOT NULL,
        end_char    INTEGER NOT NULL,
        tokens      INTEGER NOT NULL,
        text_hash   TEXT    NOT NULL,
        embedding   BLOB    NOT NULL,
        UNIQUE (document_id, ordinal)
    );
    CREATE VIRTUAL TABLE chunks_fts USING fts5(
        text, context,
        content = 'chunks', content_rowid = 'id',
        tokenize = 'porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts (rowid, text, context) VALUES (new.id, new.text, new.context);
    END;
    CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_fts (chunks_fts, rowid, text, context)
        VALUES ('delete', old.id, old.text, old.context);
    END;
    CREATE TABLE embedding_cache (
        model     TEXT NOT NULL,
        text_hash TEXT NOT NULL,
        vector    BLOB NOT NULL,
        PRIMARY KEY (model, text_hash)
    ) WITHOUT ROWID
    """,
)
