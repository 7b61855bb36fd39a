"""The shared SQLite helper: connection settings, transactions, forward-only migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pilothouse.errors import ConfigError
from pilothouse.storage.sqlite import connect, current_version, migrate, transaction

V1 = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"
V2 = """
CREATE TABLE tags (note_id INTEGER NOT NULL REFERENCES notes(id) ON DELETE CASCADE, tag TEXT);
CREATE INDEX tags_by_note ON tags(note_id)
"""


def test_connect_sets_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    conn = connect(tmp_path / "sub" / "db.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert (tmp_path / "sub" / "db.sqlite3").exists()


def test_connect_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(ConfigError, match=r"junk\.db"):
        connect(path)


def test_migrations_apply_in_order_once_per_component(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite3")
    assert migrate(conn, "notes", [V1]) == 1
    conn.execute("INSERT INTO notes (body) VALUES ('kept')")
    # Re-running with one more migration applies only the new one; data survives.
    assert migrate(conn, "notes", [V1, V2]) == 2
    assert migrate(conn, "notes", [V1, V2]) == 2
    assert conn.execute("SELECT body FROM notes").fetchall() == [("kept",)]
    # Another component has its own numbering in the same table.
    assert migrate(conn, "other", ["CREATE TABLE other_t (x)"]) == 1
    rows = conn.execute(
        "SELECT component, version FROM schema_migrations ORDER BY component, version"
    ).fetchall()
    assert rows == [("notes", 1), ("notes", 2), ("other", 1)]


def test_a_failing_migration_leaves_the_previous_version_whole(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite3")
    migrate(conn, "notes", [V1])
    broken = "CREATE TABLE half (x); INSERT INTO no_such_table VALUES (1)"
    with pytest.raises(ConfigError, match="migration 2 of notes failed"):
        migrate(conn, "notes", [V1, broken])
    assert current_version(conn, "notes") == 1
    # The first statement of the failed migration was rolled back too.
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half" not in names
    assert not conn.in_transaction


def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite3")
    migrate(conn, "notes", [V1, V2])
    with pytest.raises(ConfigError, match="newer"):
        migrate(conn, "notes", [V1])


def test_transaction_commits_or_rolls_back_as_a_whole(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite3")
    migrate(conn, "notes", [V1, V2])
    with transaction(conn):
        conn.execute("INSERT INTO notes (id, body) VALUES (1, 'a')")
        conn.execute("INSERT INTO tags VALUES (1, 't')")
    with pytest.raises(sqlite3.IntegrityError), transaction(conn):
        conn.execute("INSERT INTO notes (id, body) VALUES (2, 'b')")
        conn.execute("INSERT INTO tags VALUES (99, 'dangling')")  # foreign key violation
    assert conn.execute("SELECT id FROM notes").fetchall() == [(1,)]
    # Foreign keys cascade.
    conn.execute("DELETE FROM notes WHERE id = 1")
    assert conn.execute("SELECT COUNT(*) FROM tags").fetchone()[0] == 0


def test_a_second_connection_sees_committed_writes_only(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    writer, reader = connect(path), connect(path)
    migrate(writer, "notes", [V1])
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO notes (body) VALUES ('pending')")
    assert reader.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == 0
    writer.execute("COMMIT")
    assert reader.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == 1


def test_connections_opening_a_new_database_at_once_migrate_it_once(tmp_path: Path) -> None:
    """Stores opened on one file at the same moment (a server starting its routes, two
    processes) for a component it does not have yet: all read version 0; those that
    waited for the first one's write lock must then find the migration applied, not
    fail on 'table already exists'."""
    import threading

    migrations = [
        "CREATE TABLE runs (id INTEGER PRIMARY KEY); "
        "INSERT INTO runs (id) SELECT value FROM generate_series(1, 20000)",
        "ALTER TABLE runs ADD COLUMN status TEXT",
    ]
    try:
        sqlite3.connect(":memory:").execute("SELECT * FROM generate_series(1, 2)")
    except sqlite3.OperationalError:  # no series extension: a recursive CTE instead
        migrations[0] = (
            "CREATE TABLE runs (id INTEGER PRIMARY KEY); "
            "WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 20000) "
            "INSERT INTO runs (id) SELECT v FROM n"
        )
    for attempt in range(10):
        path = tmp_path / f"race-{attempt}.sqlite3"
        first = connect(path)  # another component's tables are there already
        migrate(first, "other", ["CREATE TABLE other (id INTEGER PRIMARY KEY)"])
        first.close()
        start = threading.Barrier(4)
        outcomes: list[object] = []

        def open_and_migrate(
            path: Path = path, start: threading.Barrier = start, outcomes: list[object] = outcomes
        ) -> None:
            conn = connect(path)
            start.wait()
            try:
                outcomes.append(migrate(conn, "race", migrations))
            except ConfigError as exc:
                outcomes.append(exc)
            finally:
                conn.close()

        threads = [threading.Thread(target=open_and_migrate) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert outcomes == [2, 2, 2, 2], outcomes
        check = connect(path)
        assert current_version(check, "race") == 2
        assert check.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 20000
        check.close()
