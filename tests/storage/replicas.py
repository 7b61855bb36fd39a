"""Stores opened as server replicas open them: each on settings of its own (so each
PostgreSQL store has a connection pool of its own), on one shared database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from pilothouse.config import DATABASE_URL_ENV, Settings
from pilothouse.storage.backends import close_database

T = TypeVar("T")


@contextmanager
def replica_stores(
    url: str, home: Path, open_store: Callable[[Settings], T]
) -> Iterator[Callable[[], T]]:
    """`open()` for a store subject: each call a replica of its own; every pool closed
    at the end."""
    opened: list[Settings] = []

    def replica() -> T:
        settings = Settings.from_sources(
            home=home / f"replica{len(opened)}", environ={DATABASE_URL_ENV: url}
        )
        opened.append(settings)
        return open_store(settings)

    try:
        yield replica
    finally:
        for settings in opened:
            close_database(settings)
