"""What a running server holds: settings, open copilots, keys, the gateway, limits.

One `ServerContext` per app, made by `create_app` and reachable from any request with
`server_context(request)` (the management API uses it to list, open, replace and
close copilots through `context.copilots`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from starlette.requests import HTTPConnection

from pilothouse.config import ServerSettings, Settings
from pilothouse.copilot import Copilot, load_definition
from pilothouse.copilot.definition import DEFINITION_FILE
from pilothouse.errors import ConfigError, NotFoundError
from pilothouse.models.base import Model
from pilothouse.models.breaker import BreakerBoard
from pilothouse.server.auth import Authenticator
from pilothouse.server.upload_policy import CodePolicy

if TYPE_CHECKING:
    from pilothouse.server.gateway.gateway import Gateway
    from pilothouse.server.keys import KeyStore
    from pilothouse.server.promotions import ServedPromotions

log = logging.getLogger(__name__)

CONTEXT_STATE_KEY = "pilothouse_context"
Phase = Literal["starting", "ready", "draining", "stopped"]


@dataclass(frozen=True)
class Limits:
    """Per-request limits of the HTTP server."""

    max_body_bytes: int = 4 * 2**20
    """Largest request body on /v1 (413 above it)."""
    max_upload_bytes: int = 64 * 2**20
    """Largest request body elsewhere (the management API's uploads)."""
    body_timeout_s: float = 30.0
    """A request body must arrive within this many seconds of its headers (else 408)."""

    @classmethod
    def of(cls, server: ServerSettings) -> Limits:
        """The limits of config.toml's `[server]` section."""
        return cls(server.max_body_bytes, server.max_upload_bytes, server.body_timeout_s)


class CopilotHost:
    """The copilots a server serves, by name.

    Copilots are opened at start-up from their folders; the management API can `add`
    (open a folder; replaces a copilot of the same name) and `remove` them while the
    server runs. A replaced or removed copilot is closed once the requests that hold
    it (`acquire`/`release`) are done.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        board: BreakerBoard | None = None,
        sync_knowledge: bool = True,
        models: Mapping[str, Sequence[Model]] | None = None,
        code_policy: CodePolicy | None = None,
    ) -> None:
        self.settings = settings
        self.models = dict(models or {})
        self.code_policy = code_policy or CodePolicy.of(settings.server)
        self.board = board or BreakerBoard()
        self.sync_knowledge = sync_knowledge
        self._copilots: dict[str, Copilot] = {}
        self._users: dict[int, int] = {}
        self._retired: dict[int, Copilot] = {}
        self._lock = asyncio.Lock()
        self._reading: set[asyncio.Task[object]] = set()
        """Copilots reading their prompt's stable start ahead (copilot/read_ahead.py)."""

    # --- reading -----------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._copilots)

    def get(self, name: str) -> Copilot | None:
        return self._copilots.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._copilots

    def __len__(self) -> int:
        return len(self._copilots)

    def all(self) -> list[Copilot]:
        return [self._copilots[n] for n in sorted(self._copilots)]

    # --- holding one for the length of a request ---------------------------------------

    def acquire(self, name: str) -> Copilot:
        """The copilot `name`, held until `release` (NotFoundError when none)."""
        copilot = self._copilots.get(name)
        if copilot is None:
            raise NotFoundError(f"no copilot named {name!r}")
        self._users[id(copilot)] = self._users.get(id(copilot), 0) + 1
        return copilot

    async def release(self, copilot: Copilot) -> None:
        key = id(copilot)
        left = self._users.get(key, 1) - 1
        if left > 0:
            self._users[key] = left
            return
        self._users.pop(key, None)
        retired = self._retired.pop(key, None)
        if retired is not None:
            await _close(retired)

    # --- changing the set ----------------------------------------------------------------

    async def open(
        self, path: str | Path, *, models: list[Model] | None = None, uploaded: bool = False
    ) -> Copilot:
        """Open the copilot folder at `path` and serve it (replacing one of the same
        name). Errors in the folder raise before anything changes. `models` (or the
        host's `models` for this copilot's name) replace its model policy; `uploaded`
        marks a folder the management API created (stricter rules: no code unless the
        host's `code_policy` allows it, CodeUploadRefused)."""
        if uploaded or (models is None and self.models):
            definition, folder = load_definition(Path(path), uploaded=uploaded)
            if uploaded:
                self.code_policy.check(definition.tools, str(folder / DEFINITION_FILE))
            chosen = self.models.get(definition.name)
            if models is None and chosen is not None:
                models = list(chosen)
        copilot = await Copilot.open(
            path,
            settings=self.settings,
            models=models,
            board=self.board,
            sync_knowledge=self.sync_knowledge,
            uploaded=uploaded,
        )
        await self.add(copilot)
        return copilot

    async def add(self, copilot: Copilot) -> None:
        """Serve an opened copilot (the host owns it from now on). Its model, when it
        runs in this process, reads the copilot's stable prompt start in the background,
        so the first question does not wait for it."""
        async with self._lock:
            old = self._copilots.get(copilot.name)
            self._copilots[copilot.name] = copilot
            if old is not None and old is not copilot:
                await self._retire(old)
        reading: asyncio.Task[object] = asyncio.create_task(copilot.read_ahead())
        self._reading.add(reading)
        reading.add_done_callback(self._reading.discard)

    async def remove(self, name: str) -> None:
        async with self._lock:
            copilot = self._copilots.pop(name, None)
            if copilot is None:
                raise NotFoundError(f"no copilot named {name!r}")
            await self._retire(copilot)

    async def _retire(self, copilot: Copilot) -> None:
        if self._users.get(id(copilot)):
            self._retired[id(copilot)] = copilot
        else:
            await _close(copilot)

    async def aclose(self) -> None:
        for reading in list(self._reading):
            reading.cancel()
        await asyncio.gather(*self._reading, return_exceptions=True)
        copilots = list(self._copilots.values()) + list(self._retired.values())
        self._copilots.clear()
        self._retired.clear()
        for copilot in copilots:
            await _close(copilot)


async def _close(copilot: Copilot) -> None:
    try:
        await copilot.aclose()
    except Exception:
        log.exception("closing copilot %s failed", copilot.name)


@dataclass
class ServerContext:
    """Everything the endpoints of one app share."""

    settings: Settings
    copilots: CopilotHost
    auth: Authenticator
    gateway: Gateway
    keys: KeyStore | None = None
    limits: Limits = field(default_factory=Limits)
    phase: Phase = "starting"
    copilot_paths: Sequence[str | Path | Copilot] = ()
    promotions: ServedPromotions | None = None
    """The promotions of the served copilots (server/promotions.py); set at start-up."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Room for other parts of the server (the management API) to keep their state."""

    @property
    def ready(self) -> bool:
        return self.phase == "ready"

    def drain(self) -> None:
        """Stop being ready (new work should go elsewhere); in-flight work goes on."""
        if self.phase in ("starting", "ready"):
            self.phase = "draining"


def server_context(conn: HTTPConnection) -> ServerContext:
    """The ServerContext of the app serving `conn` (a Request or WebSocket)."""
    state = conn.scope.get("state") or {}
    context = state.get(CONTEXT_STATE_KEY)
    if context is None:
        app = conn.scope.get("pilothouse.app") or conn.app
        context = getattr(app.state, CONTEXT_STATE_KEY, None)
    if not isinstance(context, ServerContext):
        raise RuntimeError("no ServerContext: build the app with pilothouse.server.create_app")
    return context


def copilot_sources(paths: Iterable[str | Path | Copilot]) -> list[str | Path | Copilot]:
    """Check the copilot arguments early: folders must exist."""
    out: list[str | Path | Copilot] = []
    for item in paths:
        if isinstance(item, Copilot):
            out.append(item)
            continue
        path = Path(item)
        if not path.exists():
            raise ConfigError(f"{path}: no such copilot folder or copilot.yaml")
        out.append(path)
    return out
