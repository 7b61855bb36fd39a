"""The built-in storage backends, declared in pyproject.toml's `pilothouse.storage`
entry points like any third-party backend (storage/backends.py)."""

from __future__ import annotations

from pathlib import Path

from pilothouse.config import Settings
from pilothouse.storage.backends import StorageBackend
from pilothouse.storage.postgres import open_database


def _sqlite_database(settings: Settings) -> Path:
    """The sqlite backend's handle: the data directory's database file."""
    return settings.database_path


SQLITE = StorageBackend(
    name="sqlite",
    schemes=("sqlite",),
    description="SQLite files in the data directory (the default; one machine)",
    open=_sqlite_database,
    stores={
        "knowledge": "pilothouse.knowledge.store:open_sqlite_store",
        "conversations": "pilothouse.copilot.conversations:open_sqlite_store",
        "paused_runs": "pilothouse.copilot.paused_runs:open_sqlite_store",
        "traces": "pilothouse.storage.traces:open_sqlite_store",
        "keys": "pilothouse.server.keys:open_sqlite_key_store",
        "rate_limits": "pilothouse.server.keys:open_memory_rate_limiter",
        "copilot_folders": "pilothouse.storage.copilot_folders:open_memory_store",
        "evals": "pilothouse.storage.evals:open_sqlite_store",
        "promotions": "pilothouse.storage.promotions:open_sqlite_store",
        "responses": "pilothouse.server.openai.responses_store:open_sqlite_store",
    },
)

POSTGRESQL = StorageBackend(
    name="postgresql",
    schemes=("postgresql", "postgres"),
    description="one PostgreSQL database (pgvector, full-text search) shared by replicas",
    open=open_database,
    stores={
        "knowledge": "pilothouse.knowledge.store_postgres:open_store",
        "conversations": "pilothouse.copilot.conversations_postgres:open_store",
        "paused_runs": "pilothouse.copilot.paused_runs_postgres:open_store",
        "traces": "pilothouse.storage.traces_postgres:open_store",
        "keys": "pilothouse.server.keys_postgres:open_key_store",
        "rate_limits": "pilothouse.server.keys_postgres:open_rate_limiter",
        "copilot_folders": "pilothouse.storage.copilot_folders_postgres:open_store",
        "evals": "pilothouse.storage.evals_postgres:open_store",
        "promotions": "pilothouse.storage.promotions_postgres:open_store",
        "responses": "pilothouse.server.openai.responses_store_postgres:open_store",
    },
)
