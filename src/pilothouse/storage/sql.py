"""SQL that one store shares between its SQLite and PostgreSQL backends.

A store whose statements are the same on both databases (eval runs, promotions, stored
responses) writes them once, with `?` placeholders, against a `Session`: an SQLite
connection as it is, a PostgreSQL connection wrapped in `QmarkSession` (psycopg takes
`%s`). Only what differs is given by each backend: the types in its migrations, the
error a unique index raises, how rows that tie are ordered.

Portable forms used by those statements: `INSERT ... ON CONFLICT (...) DO NOTHING` or
`DO UPDATE SET col = excluded.col` (both databases), `prefix_match(column)` instead
of a range over `'\\uffff'` (PostgreSQL's collations do not order that way), and no
negative LIMIT (`NO_LIMIT` instead).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

NO_LIMIT = 2**62
"""A LIMIT that limits nothing (SQLite's -1 is an error in PostgreSQL)."""


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Session(Protocol):
    """A connection, inside the store's transaction or lock, taking `?` placeholders."""

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor: ...

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> Cursor: ...


class QmarkSession:
    """A psycopg connection that takes the `?` placeholders of the shared statements."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        cursor: Cursor = self.conn.execute(_pyformat(sql), parameters)
        return cursor

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> Cursor:
        cursor = self.conn.cursor()
        cursor.executemany(_pyformat(sql), list(seq_of_parameters))
        found: Cursor = cursor
        return found


def _pyformat(sql: str) -> str:
    """`?` placeholders as psycopg's `%s` (the shared statements hold no other `?` or
    `%`)."""
    return sql.replace("%", "%%").replace("?", "%s")


def prefix_match(column: str) -> str:
    """A condition true when `column` starts with the parameter given twice (an id
    typed by its first characters); the same on both databases and in any collation."""
    return f"substr({column}, 1, length(?)) = ?"


def prefix_params(prefix: str) -> Sequence[str]:
    return (prefix, prefix)
