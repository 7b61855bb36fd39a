"""Storage backends: the `storage` plugin family (entry points `pilothouse.storage`).

Every kind of state Pilothouse keeps has one small interface with a conformance suite
(`pilothouse.testing.conformance`): the knowledge index, conversations, paused runs,
traces and runs, API keys and their rate-limit counters, eval runs, promotions, stored
`/v1/responses` answers, copilot folders published for other replicas. A backend gives
an implementation of each:

- `sqlite` (the default): files in the data directory, exactly as before;
- `postgresql`: one PostgreSQL database shared by every server replica (pgvector for
  the vectors, its full-text search for keywords; docs/deployment.md).

A backend is a `StorageBackend`: its URL schemes, how to open its database handle, and
for each kind of state the `module:attribute` of the factory that opens that store on
the handle. The factories live beside the interface they implement (conversations in
the copilot layer, keys in the server layer, ...), so they are named here and imported
only when asked for, the way entry points name plugins. Which backend serves a process
follows from `Settings.storage_url` (`[storage] url` or PILOTHOUSE_DATABASE_URL): none
is SQLite, `postgresql://...` PostgreSQL.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pilothouse.config import Settings
from pilothouse.errors import ConfigError
from pilothouse.plugins import Registry

T = TypeVar("T")

KINDS = (
    "knowledge",
    "conversations",
    "paused_runs",
    "traces",
    "keys",
    "rate_limits",
    "evals",
    "copilot_folders",
    "promotions",
    "responses",
)
"""The kinds of state a backend stores (see the module docstring)."""


@dataclass(frozen=True)
class StorageBackend:
    """One storage backend: a plugin of the `storage` family."""

    name: str
    schemes: tuple[str, ...]
    """URL schemes it serves (`postgresql`, `postgres`); empty for the default."""
    description: str
    open: Callable[[Settings], Any]
    """The backend's handle for these settings (a connection pool, a folder), shared
    by the stores of one `Settings` (see `database_for`)."""
    stores: Mapping[str, str] = field(default_factory=dict)
    """kind -> `module:attribute` of `factory(handle, settings, *args) -> store`."""

    def factory(self, kind: str) -> Callable[..., Any]:
        target = self.stores.get(kind)
        if target is None:
            raise ConfigError(
                f"the {self.name} storage backend keeps no {kind.replace('_', ' ')}; "
                f"it keeps: {', '.join(sorted(self.stores)) or 'nothing'}"
            )
        module, _, attribute = target.partition(":")
        found: Callable[..., Any] = getattr(importlib.import_module(module), attribute)
        return found


def _as_backend(name: str, obj: object) -> StorageBackend:
    if not isinstance(obj, StorageBackend):
        raise TypeError(f"expected a StorageBackend, got {type(obj).__name__}")
    unknown = set(obj.stores) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds of state {sorted(unknown)}; known: {', '.join(KINDS)}")
    return obj


STORAGE: Registry[StorageBackend] = Registry("storage", check=_as_backend, kind="storage backend")
DEFAULT_BACKEND = "sqlite"


def backend_for(settings: Settings) -> StorageBackend:
    """The backend of `settings`: SQLite without a storage URL, else the backend that
    serves the URL's scheme (a clear error naming the installed ones)."""
    url = settings.storage_url
    if url is None:
        return STORAGE.get(DEFAULT_BACKEND)
    scheme = urlsplit(url).scheme.lower().split("+", 1)[0]
    for _, backend in STORAGE.items():
        if scheme in backend.schemes:
            return backend
    schemes = sorted({s for _, b in STORAGE.items() for s in b.schemes})
    raise ConfigError(
        f"[storage] url: no storage backend serves {scheme or 'a URL without a scheme'}:// "
        f"(installed: {', '.join(f'{s}://' for s in schemes) or 'none'}); write "
        "postgresql://user@host:5432/database, or leave it empty for SQLite"
    )


def database_for(settings: Settings) -> Any:
    """The backend handle of `settings`, opened once and shared by every store made
    from them (one connection pool per process and settings)."""
    handle = settings._database
    if handle is None:
        handle = backend_for(settings).open(settings)
        settings._database = handle
    return handle


def open_store(settings: Settings, kind: str, *args: Any) -> Any:
    """The store of `kind` on the backend of `settings` (`args` go to its factory: the
    knowledge base's name for `knowledge`)."""
    backend = backend_for(settings)
    return backend.factory(kind)(database_for(settings), settings, *args)


def close_database(settings: Settings) -> None:
    """Close the backend handle of `settings` (its connection pool), if one is open."""
    handle = settings._database
    settings._database = None
    close = getattr(handle, "close", None)
    if close is not None:
        close()


def shared(settings: Settings) -> bool:
    """Whether the state of `settings` is in a database other processes share with
    other machines (not the data directory's SQLite files)."""
    return settings.storage_url is not None


def call_wait_s(settings: Settings) -> float | None:
    """How long a request handler waits for one call to the stores of `settings` before
    it answers 503: None when they are local files (called on the event loop), else the
    backend handle's `call_wait_s` (the call then runs in a worker thread; ten seconds
    for a handle that does not say)."""
    if not shared(settings):
        return None
    wait = getattr(database_for(settings), "call_wait_s", 10.0)
    return float(wait)
