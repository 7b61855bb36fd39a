"""Both trace stores (SQLite, and PostgreSQL on a throwaway server) pass the
trace-store conformance suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilothouse.config import Settings
from pilothouse.storage.traces import TraceStore
from pilothouse.testing.conformance import TRACE_STORES, Check, StoreSubject, run_check

CAPABILITIES = frozenset({"persistent", "prune"})


@pytest.mark.parametrize("check", TRACE_STORES.checks_for(CAPABILITIES), ids=str)
async def test_sqlite_trace_store(check: Check[Any], tmp_path: Path) -> None:
    subject = StoreSubject(lambda: TraceStore(tmp_path / "db.sqlite3"), CAPABILITIES)
    await run_check(check, subject)


@pytest.mark.parametrize("check", TRACE_STORES.checks_for(CAPABILITIES), ids=str)
async def test_postgres_trace_store(check: Check[Any], postgres_settings: Settings) -> None:
    subject = StoreSubject(lambda: TraceStore.for_settings(postgres_settings), CAPABILITIES)
    await run_check(check, subject)
