"""`pilothouse storage copy`: move a data directory's SQLite state into a PostgreSQL
database without losing anything, and prove it.

What is copied: from `pilothouse.db` the conversations and their messages, runs paused
for approval, runs and spans, server API keys, eval runs, promotions and stored
`/v1/responses` answers; from the data directory's `knowledge/` folder every knowledge
base file (documents, chunks with their vectors, index settings and generation) and
the embedding caches. The target tables are made by the PostgreSQL stores' own
migrations (each kind's store is opened once), and must
be empty: nothing is merged or overwritten.

Each table is copied with COPY in one transaction per table; at the end the rows of
every table are counted and checksummed on both sides (SHA-256 over every column of
every row, rows in primary-key order; vectors compared as their float32 bytes), and
any difference is reported. Eval runs are copied with their arms, cases and scores,
promotions with their timelines, samples and canary assignments. A table of
`pilothouse.db` that no PostgreSQL store keeps (one of a plugin, or of a newer
Pilothouse) stays in SQLite and is listed as not copied.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pilothouse.config import Settings
from pilothouse.errors import ConfigError, PilothouseError
from pilothouse.storage.backends import database_for, open_store
from pilothouse.storage.copy_tables import CACHE, MAIN, Table, knowledge_tables
from pilothouse.storage.postgres import PostgresDatabase, vector_literal

BATCH = 2000


@dataclass
class TableReport:
    name: str
    rows: int
    target_rows: int
    checksum: str
    target_checksum: str

    @property
    def ok(self) -> bool:
        return self.rows == self.target_rows and self.checksum == self.target_checksum


@dataclass
class CopyReport:
    tables: list[TableReport] = field(default_factory=list)
    not_copied: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)


def copy_data_directory(
    source: Path, target: Settings, *, progress: Callable[[str], None] | None = None
) -> CopyReport:
    """Copy the SQLite state of the data directory `source` into the PostgreSQL
    database of `target` (see the module docstring)."""
    say = progress or (lambda _: None)
    if target.storage_url is None:
        raise ConfigError("storage copy needs a PostgreSQL target (--to postgresql://...)")
    database = database_for(target)
    if not isinstance(database, PostgresDatabase):
        raise ConfigError(f"storage copy writes to PostgreSQL, not {type(database).__name__}")
    report = CopyReport()
    main = source / "pilothouse.db"
    if main.is_file():
        with _reader(main) as conn:
            present = _tables(conn)
            for kind, tables in MAIN:
                wanted = [t for t in tables if t.source in present]
                if not wanted:
                    continue
                open_store(target, kind)  # its migrations make the target tables
                for table in wanted:
                    say(f"{main}: {table.source}")
                    report.tables.append(_copy_table(conn, database, table, f"{kind}/"))
            if "api_keys" in present:
                with database.connection() as pg:
                    pg.execute("UPDATE api_keys_version SET version = version + 1")
            copied = {t.source for _, tables in MAIN for t in tables}
            for name in sorted(present - copied - {"schema_migrations"}):
                if not name.startswith("sqlite_"):
                    report.not_copied.append(f"{main}: {name} (no PostgreSQL store yet)")
    for base in sorted((source / "knowledge").rglob("*.sqlite3")):
        say(f"{base}: knowledge")
        report.tables += _copy_knowledge(base, source, target, database)
    return report


def _copy_knowledge(
    base: Path, home: Path, target: Settings, database: PostgresDatabase
) -> list[TableReport]:
    relative = base.relative_to(home / "knowledge")
    name = relative.with_suffix("").as_posix()
    store: Any = open_store(target, "knowledge", target.home / "knowledge" / relative)
    prefix = store.prefix
    reports: list[TableReport] = []
    with _reader(base) as conn:
        present = _tables(conn)
        for table in knowledge_tables(prefix):
            if table.source in present:
                reports.append(_copy_table(conn, database, table, f"knowledge/{name}/"))
        with database.transaction() as pg:
            for part in ("documents", "chunks"):
                pg.execute(
                    f"SELECT setval(pg_get_serial_sequence('{prefix}_{part}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {prefix}_{part}), 0) + 1, false)"
                )
            pg.execute(
                f"UPDATE {prefix}_chunks SET dl = (SELECT COALESCE(SUM(array_length(positions, "
                "1)), 0) FROM unnest(tsv))"
            )
        settings = store.settings()
        if settings is not None:
            store.build_vector_index(settings)
        if CACHE.source in present:
            reports.append(_copy_table(conn, database, CACHE, f"knowledge/{name}/", merge=True))
    return reports


def _copy_table(
    conn: sqlite3.Connection,
    database: PostgresDatabase,
    table: Table,
    label: str,
    *,
    merge: bool = False,
) -> TableReport:
    columns = ", ".join(table.columns)
    with database.transaction() as pg:
        if not merge:
            found = pg.execute(f"SELECT EXISTS (SELECT 1 FROM {table.target})").fetchone()
            if found and found[0]:
                raise PilothouseError(
                    f"{database.display}: table {table.target} already holds rows; storage copy "
                    "only fills empty tables (nothing is merged or overwritten)"
                )
        into = table.target if not merge else f"copy_{table.target}"
        if merge:
            pg.execute(
                f"CREATE TEMP TABLE {into} (LIKE {table.target} INCLUDING DEFAULTS) ON COMMIT DROP"
            )
        vector = table.columns.index(table.vector) if table.vector else -1
        with pg.cursor() as cursor, cursor.copy(f"COPY {into} ({columns}) FROM STDIN") as copy:
            for row in _rows(conn, table):
                if vector >= 0:
                    values = np.frombuffer(row[vector], dtype=np.float32)
                    row = (*row[:vector], vector_literal(values.tolist()), *row[vector + 1 :])
                copy.write_row(row)
        if merge:
            pg.execute(
                f"INSERT INTO {table.target} ({columns}) SELECT {columns} FROM {into} "
                "ON CONFLICT DO NOTHING"
            )
        if table.identity:
            pg.execute(
                f"SELECT setval(pg_get_serial_sequence('{table.target}', '{table.identity}'), "
                f"COALESCE((SELECT MAX({table.identity}) FROM {table.target}), 0) + 1, false)"
            )
    rows, checksum = _summary(_rows(conn, table), table)
    target_rows, target_checksum = _target_summary(database, table, conn if merge else None)
    return TableReport(label + table.source, rows, target_rows, checksum, target_checksum)


def _target_summary(
    database: PostgresDatabase, table: Table, keys_from: sqlite3.Connection | None
) -> tuple[int, str]:
    """Rows and checksum of the target table; for a merged table (the embedding
    cache), of the rows with the source's keys only."""
    select = ", ".join(f"{c}::real[]" if c == table.vector else c for c in table.columns)
    if keys_from is not None:
        return _summary(_merged_rows(database, table, keys_from, select), table, lists=True)
    with database.transaction() as pg:
        cursor = pg.cursor(name="checksum")
        cursor.execute(f"SELECT {select} FROM {table.target} ORDER BY {table.order}")
        result = _summary((tuple(r) for r in cursor), table, lists=True)
        cursor.close()
    return result


def _merged_rows(
    database: PostgresDatabase, table: Table, conn: sqlite3.Connection, select: str
) -> Iterator[tuple[Any, ...]]:
    """The embedding cache's target rows for the source's (model, text_hash) keys, in
    key order."""
    keys = conn.execute(f"SELECT {table.order} FROM {table.source} ORDER BY {table.order}")
    while batch := keys.fetchmany(BATCH):
        by_model: dict[str, list[str]] = {}
        for model, digest in batch:
            by_model.setdefault(model, []).append(digest)
        found: list[tuple[Any, ...]] = []
        with database.connection() as pg:
            for model, digests in by_model.items():
                found += [
                    tuple(r)
                    for r in pg.execute(
                        f"SELECT {select} FROM {table.target} "
                        "WHERE model = %s AND text_hash = ANY(%s)",
                        (model, digests),
                    )
                ]
        yield from sorted(found, key=lambda r: (r[0], r[1]))


def _rows(conn: sqlite3.Connection, table: Table) -> Iterator[tuple[Any, ...]]:
    cursor = conn.execute(
        f"SELECT {', '.join(table.columns)} FROM {table.source} ORDER BY {table.order}"
    )
    while batch := cursor.fetchmany(BATCH):
        yield from batch


def _summary(
    rows: Iterator[tuple[Any, ...]] | Sequence[tuple[Any, ...]],
    table: Table,
    *,
    lists: bool = False,
) -> tuple[int, str]:
    """(rows, SHA-256 over every value of every row); `lists`: vectors come as lists
    of floats (from PostgreSQL), else as float32 bytes (SQLite BLOBs)."""
    digest = hashlib.sha256()
    count = 0
    vector = table.columns.index(table.vector) if table.vector else -1
    for row in rows:
        count += 1
        for index, value in enumerate(row):
            if index == vector:
                array = np.asarray(value, dtype=np.float32) if lists else None
                data = array.tobytes() if array is not None else bytes(value)
                digest.update(data)
            else:
                digest.update(_canonical(value))
            digest.update(b"\x1f")
        digest.update(b"\x1e")
    return count, digest.hexdigest()


def _canonical(value: Any) -> bytes:
    if value is None:
        return b"\x00"
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, float):
        return repr(value).encode()
    if isinstance(value, bytes | memoryview):
        return bytes(value)
    return str(value).encode("utf-8")


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


class _reader:
    """A read-only connection to a SQLite file (WAL contents included)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()
