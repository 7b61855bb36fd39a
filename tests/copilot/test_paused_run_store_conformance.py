"""Both paused-run stores (SQLite, and PostgreSQL on a throwaway server) pass the
paused-run conformance suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilothouse.config import Settings
from pilothouse.copilot.paused_runs import PausedRunStore
from pilothouse.testing.conformance import PAUSED_RUN_STORES, Check, StoreSubject, run_check

CAPABILITIES = frozenset({"persistent"})


@pytest.mark.parametrize("check", PAUSED_RUN_STORES.checks_for(CAPABILITIES), ids=str)
async def test_sqlite_paused_run_store(check: Check[Any], tmp_path: Path) -> None:
    subject = StoreSubject(lambda: PausedRunStore(tmp_path / "db.sqlite3"), CAPABILITIES)
    await run_check(check, subject)


@pytest.mark.parametrize("check", PAUSED_RUN_STORES.checks_for(CAPABILITIES), ids=str)
async def test_postgres_paused_run_store(check: Check[Any], postgres_settings: Settings) -> None:
    subject = StoreSubject(lambda: PausedRunStore.for_settings(postgres_settings), CAPABILITIES)
    await run_check(check, subject)
