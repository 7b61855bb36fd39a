"""The SQLite promotion store passes the promotion-store conformance suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilothouse.storage.promotions import SqlitePromotionStore
from pilothouse.testing.conformance import PROMOTION_STORES, Check, StoreSubject, run_check

CAPABILITIES = frozenset({"persistent", "threads"})


@pytest.mark.parametrize("check", PROMOTION_STORES.checks_for(CAPABILITIES), ids=str)
async def test_sqlite_promotion_store(check: Check[Any], tmp_path: Path) -> None:
    subject = StoreSubject(lambda: SqlitePromotionStore(tmp_path / "db.sqlite3"), CAPABILITIES)
    await run_check(check, subject)
