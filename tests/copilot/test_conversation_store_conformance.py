"""Both conversation stores (SQLite, and PostgreSQL on a throwaway server) pass the
conversation-store conformance suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilothouse.config import Settings
from pilothouse.copilot.conversations import ConversationStore
from pilothouse.testing.conformance import CONVERSATION_STORES, Check, StoreSubject, run_check

CAPABILITIES = frozenset({"persistent", "threads"})


@pytest.mark.parametrize("check", CONVERSATION_STORES.checks_for(CAPABILITIES), ids=str)
async def test_sqlite_conversation_store(check: Check[Any], tmp_path: Path) -> None:
    subject = StoreSubject(lambda: ConversationStore(tmp_path / "db.sqlite3"), CAPABILITIES)
    await run_check(check, subject)


@pytest.mark.parametrize("check", CONVERSATION_STORES.checks_for(CAPABILITIES), ids=str)
async def test_postgres_conversation_store(check: Check[Any], postgres_settings: Settings) -> None:
    subject = StoreSubject(lambda: ConversationStore.for_settings(postgres_settings), CAPABILITIES)
    await run_check(check, subject)
