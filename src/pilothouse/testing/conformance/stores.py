"""What a storage suite checks: a store that can be opened (and opened again on the
same storage, to check that changes persist), with its capabilities.

    subject = StoreSubject(lambda: ConversationStore(tmp_path / "db.sqlite3"))

Capabilities a store may declare: `persistent` (a store opened again sees what an
earlier one wrote), `threads` (safe to use from several threads at once), and each
suite's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

PERSISTENT = "persistent"
THREADS = "threads"


@dataclass
class StoreSubject(Generic[T]):
    """`open()` gives a store on the subject's storage (a new object each time)."""

    open: Callable[[], T]
    capabilities: frozenset[str] = frozenset({PERSISTENT, THREADS})

    @contextmanager
    def opened(self) -> Iterator[T]:
        store = self.open()
        try:
            yield store
        finally:
            close: Any = getattr(store, "close", None)
            if close is not None:
                close()
