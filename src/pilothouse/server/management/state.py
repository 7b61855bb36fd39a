"""What the management API keeps between requests, and how it reaches the server's.

The server's `ServerContext` (settings, the served copilots) comes from
`server_context(request)`. The management API adds its own `ManagementState` in
`context.extra["management"]`, made on first use: the stores it reads (conversations,
paused runs, traces), the default knowledge base (opened on first use), locks, and
the upload limits. `close_management(context)` releases it at shutdown.

Managed copilots live in `<data dir>/copilots/<name>/`; the API writes nowhere else
except `<data dir>/knowledge/uploads/` (uploaded knowledge files).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.copilot.conversations import ConversationStore
from pilothouse.copilot.paused_runs import PausedRunStore
from pilothouse.errors import NotFoundError
from pilothouse.knowledge.base import KnowledgeBase
from pilothouse.knowledge.locations import default_base_path, knowledge_dir
from pilothouse.server.context import ServerContext, server_context
from pilothouse.server.management.errors import not_found
from pilothouse.server.management.uploads import UploadLimits
from pilothouse.storage.traces import TraceStore

if TYPE_CHECKING:
    from pilothouse.server.management.replication import CopilotReplication

log = logging.getLogger(__name__)

STATE_KEY = "management"
COPILOTS_FOLDER = "copilots"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True, slots=True)
class KnowledgeLimits:
    """Limits on one knowledge upload request."""

    max_file_bytes: int = 50 * 2**20
    max_files: int = 100


def copilots_dir(settings: Settings) -> Path:
    """Where the management API keeps the copilots it creates."""
    return settings.home / COPILOTS_FOLDER


def managed_copilot_folders(settings: Settings) -> list[Path]:
    """The copilot folders the management API created (for `serve` to open at start);
    the staging area and anything without a copilot.yaml are left out."""
    root = copilots_dir(settings)
    if not root.is_dir():
        return []
    return sorted(
        p
        for p in root.iterdir()
        if _NAME.match(p.name)
        and p.is_dir()
        and not p.is_symlink()
        and (p / "copilot.yaml").is_file()
    )


def uploads_dir(settings: Settings, copilot: str | None) -> Path:
    """Where uploaded knowledge files are kept: one folder per knowledge base."""
    base = knowledge_dir(settings) / "uploads"
    return base / "default" if copilot is None else base / "copilots" / copilot


@dataclass
class ManagementState:
    settings: Settings
    conversations: ConversationStore
    paused: PausedRunStore
    traces: TraceStore
    upload_limits: UploadLimits = field(default_factory=UploadLimits)
    knowledge_limits: KnowledgeLimits = field(default_factory=KnowledgeLimits)
    open_default_knowledge: Callable[[Path], KnowledgeBase] | None = None
    """How the default knowledge base is opened (tests pass a test embedder's); by
    default the local embedder, kept by the settings' storage backend."""
    copilot_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One change of the managed copilots at a time (API requests, replication)."""
    replication: CopilotReplication | None = None
    """With other replicas (a shared store): publishes this replica's copilot changes
    and applies theirs (replication.py); None on one machine."""
    _default_kb: KnowledgeBase | None = None
    _default_kb_lock: threading.Lock = field(default_factory=threading.Lock)
    _kb_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings) -> ManagementState:
        settings.home.mkdir(parents=True, exist_ok=True)
        return cls(
            settings=settings,
            conversations=ConversationStore.for_settings(settings),
            paused=PausedRunStore.for_settings(settings),
            traces=TraceStore.for_settings(settings),
        )

    def default_knowledge(self) -> KnowledgeBase:
        """The default knowledge base, opened on first use (from a worker thread)."""
        with self._default_kb_lock:
            if self._default_kb is None:
                path = default_base_path(self.settings)
                path.parent.mkdir(parents=True, exist_ok=True)
                opener = self.open_default_knowledge
                self._default_kb = (
                    opener(path)
                    if opener is not None
                    else KnowledgeBase.open_local(path, settings=self.settings)
                )
            return self._default_kb

    def knowledge_lock(self, key: str) -> asyncio.Lock:
        """One writer at a time per knowledge base (uploads, deletes, re-index)."""
        return self._kb_locks.setdefault(key, asyncio.Lock())

    def close(self) -> None:
        for close in (self.conversations.close, self.paused.close, self.traces.close):
            try:
                close()
            except Exception:
                log.exception("closing a management store failed")
        if self._default_kb is not None:
            self._default_kb.close()
            self._default_kb = None

    async def aclose(self) -> None:
        self.close()


def context_of(conn: HTTPConnection) -> ServerContext:
    return server_context(conn)


def management(conn: HTTPConnection) -> ManagementState:
    """The management API's state for this app (made on first use)."""
    return management_of(server_context(conn))


def management_of(context: ServerContext) -> ManagementState:
    """The management API's state in `context` (made on first use)."""
    state = context.extra.get(STATE_KEY)
    if not isinstance(state, ManagementState):
        state = ManagementState.open(context.settings)
        context.extra[STATE_KEY] = state
    return state


def close_management(context: ServerContext) -> None:
    """Release the management API's stores (call at shutdown)."""
    state = context.extra.pop(STATE_KEY, None)
    if isinstance(state, ManagementState):
        state.close()


@asynccontextmanager
async def held_copilot(context: ServerContext, name: str) -> AsyncIterator[Copilot]:
    """The served copilot `name`, kept open for the block (404 when none)."""
    try:
        copilot = context.copilots.acquire(name)
    except NotFoundError:
        raise not_found(
            f"no copilot named {name!r} is served; see GET /api/copilots",
            code="copilot_not_found",
            param="name",
        ) from None
    try:
        yield copilot
    finally:
        await context.copilots.release(copilot)


def is_managed(settings: Settings, folder: Path) -> bool:
    """Whether `folder` is a copilot folder the management API may change."""
    try:
        return folder.resolve().parent == copilots_dir(settings).resolve()
    except OSError:
        return False
