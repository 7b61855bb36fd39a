"""Both copilot-folder stores (the sqlite backend's in-memory one; PostgreSQL on a
throwaway server, shared by replicas) pass the copilot-folder suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilothouse.config import Settings
from pilothouse.storage.backends import open_store
from pilothouse.storage.copilot_folders import MemoryCopilotFolders
from pilothouse.testing.conformance import COPILOT_FOLDER_STORES, Check, StoreSubject, run_check

MEMORY: frozenset[str] = frozenset()
SHARED = frozenset({"persistent", "threads", "shared"})


@pytest.mark.parametrize("check", COPILOT_FOLDER_STORES.checks_for(MEMORY), ids=str)
async def test_memory_copilot_folders(check: Check[Any]) -> None:
    store = MemoryCopilotFolders()  # one store: what a process keeps for itself
    await run_check(check, StoreSubject(lambda: store, MEMORY))


@pytest.mark.parametrize("check", COPILOT_FOLDER_STORES.checks_for(SHARED), ids=str)
async def test_postgres_copilot_folders(check: Check[Any], postgres_settings: Settings) -> None:
    subject = StoreSubject(lambda: open_store(postgres_settings, "copilot_folders"), SHARED)
    await run_check(check, subject)


def test_sqlite_settings_keep_copilot_folders_in_memory(tmp_path: Path) -> None:
    """Without a storage URL there is no other replica: the store is this process's."""
    settings = Settings.from_sources(home=tmp_path, environ={})
    assert type(open_store(settings, "copilot_folders")) is MemoryCopilotFolders
