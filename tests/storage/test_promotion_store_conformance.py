"""Both promotion stores (SQLite, and PostgreSQL on a throwaway server) pass the
promotion-store conformance suite, the checks of replicas writing at once included:
each PostgreSQL store has a connection pool of its own, as a replica has."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilothouse.storage.promotion_records import promotion_store
from pilothouse.storage.promotions import SqlitePromotionStore
from pilothouse.testing.conformance import PROMOTION_STORES, Check, StoreSubject, run_check
from tests.storage.replicas import replica_stores

CAPABILITIES = frozenset({"persistent", "threads", "shared"})


@pytest.mark.parametrize("check", PROMOTION_STORES.checks_for(CAPABILITIES), ids=str)
async def test_sqlite_promotion_store(check: Check[Any], tmp_path: Path) -> None:
    subject = StoreSubject(lambda: SqlitePromotionStore(tmp_path / "db.sqlite3"), CAPABILITIES)
    await run_check(check, subject)


@pytest.mark.parametrize("check", PROMOTION_STORES.checks_for(CAPABILITIES), ids=str)
async def test_postgres_promotion_store(
    check: Check[Any], tmp_path: Path, postgres_url: str
) -> None:
    with replica_stores(postgres_url, tmp_path, promotion_store) as replica:
        await run_check(check, StoreSubject(replica, CAPABILITIES))
