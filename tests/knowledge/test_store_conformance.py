"""Both knowledge stores (SQLite with FTS5 and numpy; PostgreSQL with pgvector and
full-text search, on a throwaway server) pass the knowledge-store conformance suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilothouse.config import Settings
from pilothouse.knowledge.locations import open_knowledge_store
from pilothouse.knowledge.store import KnowledgeStore
from pilothouse.testing.conformance import KNOWLEDGE_STORES, Check, StoreSubject, run_check

CAPABILITIES = frozenset({"persistent", "threads", "search"})


@pytest.mark.parametrize("check", KNOWLEDGE_STORES.checks_for(CAPABILITIES), ids=str)
async def test_sqlite_knowledge_store(check: Check[Any], tmp_path: Path) -> None:
    subject = StoreSubject(lambda: KnowledgeStore(tmp_path / "kb.sqlite3"), CAPABILITIES)
    await run_check(check, subject)


@pytest.mark.parametrize("check", KNOWLEDGE_STORES.checks_for(CAPABILITIES), ids=str)
async def test_postgres_knowledge_store(check: Check[Any], postgres_settings: Settings) -> None:
    subject = StoreSubject(
        lambda: open_knowledge_store(postgres_settings, postgres_settings.home / "kb.sqlite3"),
        CAPABILITIES,
    )
    await run_check(check, subject)
