"""Where knowledge bases live: one SQLite file per knowledge base under the data
directory's `knowledge/` folder. The default one is `default.sqlite3`; a copilot's
(a folder with copilot.yaml) is keyed by the folder's resolved path, so the copilot
folder stays plain reviewable files and may be read-only."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pilothouse.config import Settings
from pilothouse.errors import NotFoundError

if TYPE_CHECKING:
    from pilothouse.knowledge.store import KnowledgeStore

COPILOT_FILE = "copilot.yaml"


def knowledge_dir(settings: Settings) -> Path:
    return settings.home / "knowledge"


def default_base_path(settings: Settings) -> Path:
    return knowledge_dir(settings) / "default.sqlite3"


def copilot_base_path(settings: Settings, copilot: Path) -> Path:
    """The knowledge base file of the copilot in folder `copilot` (or the folder of a
    copilot.yaml given directly)."""
    folder = copilot.parent if copilot.name == COPILOT_FILE else copilot
    if not (folder / COPILOT_FILE).is_file():
        raise NotFoundError(
            f"{folder}: not a copilot folder (no {COPILOT_FILE} in it); pass the folder "
            "that holds the copilot's copilot.yaml"
        )
    resolved = folder.resolve()
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", resolved.name).strip("-") or "copilot"
    digest = hashlib.sha256(str(resolved).encode("utf-8")).hexdigest()[:12]
    return knowledge_dir(settings) / "copilots" / f"{slug}-{digest}.sqlite3"


def base_path(settings: Settings, copilot: Path | None = None) -> Path:
    return default_base_path(settings) if copilot is None else copilot_base_path(settings, copilot)


def open_knowledge_store(settings: Settings, path: Path) -> KnowledgeStore:
    """The knowledge base whose SQLite file is `path`, kept by the storage backend of
    `settings`: that file, or its tables in the shared PostgreSQL database."""
    from pilothouse.storage.backends import open_store

    store: KnowledgeStore = open_store(settings, "knowledge", path)
    return store
