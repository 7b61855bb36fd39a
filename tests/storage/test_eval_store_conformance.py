"""Both eval stores (SQLite, and PostgreSQL on a throwaway server) pass the eval-store
conformance suite; on PostgreSQL two stores with a pool each write one run at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilothouse.storage.evals import EvalStore
from pilothouse.testing.conformance import EVAL_STORES, Check, StoreSubject, run_check
from tests.storage.replicas import replica_stores

CAPABILITIES = frozenset({"persistent", "threads", "shared"})


@pytest.mark.parametrize("check", EVAL_STORES.checks_for(CAPABILITIES), ids=str)
async def test_sqlite_eval_store(check: Check[Any], tmp_path: Path) -> None:
    subject = StoreSubject(lambda: EvalStore(tmp_path / "db.sqlite3"), CAPABILITIES)
    await run_check(check, subject)


@pytest.mark.parametrize("check", EVAL_STORES.checks_for(CAPABILITIES), ids=str)
async def test_postgres_eval_store(check: Check[Any], tmp_path: Path, postgres_url: str) -> None:
    with replica_stores(postgres_url, tmp_path, EvalStore.for_settings) as replica:
        await run_check(check, StoreSubject(replica, CAPABILITIES))
