"""Both key stores and rate limiters (SQLite and this process's buckets; PostgreSQL on a
throwaway server, shared by replicas) pass the key-store and rate-limiter suites."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilothouse.config import Settings
from pilothouse.server.auth import RateLimiter
from pilothouse.server.keys import KeyStore
from pilothouse.storage.backends import open_store
from pilothouse.testing.conformance import (
    KEY_STORES,
    RATE_LIMITERS,
    Check,
    StoreSubject,
    run_check,
)

KEYS = frozenset({"persistent"})
MEMORY_LIMITER: frozenset[str] = frozenset()
SHARED_LIMITER = frozenset({"persistent", "threads", "shared"})


@pytest.mark.parametrize("check", KEY_STORES.checks_for(KEYS), ids=str)
async def test_sqlite_key_store(check: Check[Any], tmp_path: Path) -> None:
    await run_check(check, StoreSubject(lambda: KeyStore(tmp_path / "db.sqlite3"), KEYS))


@pytest.mark.parametrize("check", KEY_STORES.checks_for(KEYS), ids=str)
async def test_postgres_key_store(check: Check[Any], postgres_settings: Settings) -> None:
    await run_check(check, StoreSubject(lambda: KeyStore.for_settings(postgres_settings), KEYS))


@pytest.mark.parametrize("check", RATE_LIMITERS.checks_for(MEMORY_LIMITER), ids=str)
async def test_memory_rate_limiter(check: Check[Any]) -> None:
    await run_check(check, StoreSubject(RateLimiter, MEMORY_LIMITER))


@pytest.mark.parametrize("check", RATE_LIMITERS.checks_for(SHARED_LIMITER), ids=str)
async def test_postgres_rate_limiter(check: Check[Any], postgres_settings: Settings) -> None:
    subject = StoreSubject(lambda: open_store(postgres_settings, "rate_limits"), SHARED_LIMITER)
    await run_check(check, subject)


def test_sqlite_settings_keep_rate_limits_in_memory(tmp_path: Path) -> None:
    """Without a storage URL keys are in the data directory's database and the limiter
    is this process's buckets."""
    settings = Settings.from_sources(home=tmp_path, environ={})
    assert type(open_store(settings, "rate_limits")) is RateLimiter
    with KeyStore.for_settings(settings) as store:
        assert type(store) is KeyStore and store.path == tmp_path / "pilothouse.db"
