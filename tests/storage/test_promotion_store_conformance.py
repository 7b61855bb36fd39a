"""Both promotion stores (SQLite, and PostgreSQL on a throwaway server) pass the
promotion-store conformance suite, the checks of replicas writing at once included:
each PostgreSQL store has a connection pool of its own, as a replica has."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pilothouse.config import DATABASE_URL_ENV, Settings
from pilothouse.storage.backends import close_database
from pilothouse.storage.promotion_records import PromotionStore, promotion_store
from pilothouse.storage.promotions import SqlitePromotionStore
from pilothouse.testing.conformance import PROMOTION_STORES, Check, StoreSubject, run_check

CAPABILITIES = frozenset({"persistent", "threads", "shared"})


@pytest.mark.parametrize("check", PROMOTION_STORES.checks_for(CAPABILITIES), ids=str)
async def test_sqlite_promotion_store(check: Check[Any], tmp_path: Path) -> None:
    subject = StoreSubject(lambda: SqlitePromotionStore(tmp_path / "db.sqlite3"), CAPABILITIES)
    await run_check(check, subject)


@pytest.fixture
def replica_settings(tmp_path: Path, postgres_url: str) -> Iterator[list[Settings]]:
    """Settings opened per store (one pool each), all closed at the end."""
    opened: list[Settings] = []
    yield opened
    for settings in opened:
        close_database(settings)


@pytest.mark.parametrize("check", PROMOTION_STORES.checks_for(CAPABILITIES), ids=str)
async def test_postgres_promotion_store(
    check: Check[Any], tmp_path: Path, postgres_url: str, replica_settings: list[Settings]
) -> None:
    def replica() -> PromotionStore:
        settings = Settings.from_sources(
            home=tmp_path / f"replica{len(replica_settings)}",
            environ={DATABASE_URL_ENV: postgres_url},
        )
        replica_settings.append(settings)
        return promotion_store(settings)

    await run_check(check, StoreSubject(replica, CAPABILITIES))
