"""The management API's router: everything under `/api`.

- copilots (`/copilots`, their files, `/templates`, `/schemas/copilot`):
  `copilots:write` (admin implies it);
- knowledge (documents, passages, search), runs and evals: `admin`;
- conversations and approvals: any key, which sees only what it may (see
  server/ownership.py); `/me`: any key, about itself;
- promotions: any key, which needs `promote:<copilot>` for the copilot concerned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI

from pilothouse.copilot.definition import load_definition
from pilothouse.errors import PilothouseError
from pilothouse.server.auth import ADMIN, COPILOTS_WRITE, require_key, require_scope
from pilothouse.server.context import CONTEXT_STATE_KEY, ServerContext
from pilothouse.server.management import (
    approvals,
    caller,
    chunks,
    copilot_files,
    copilots,
    evals,
    history,
    knowledge,
    promotions,
)
from pilothouse.server.management.errors import responses
from pilothouse.server.management.recovery import logged, recover_staging, recover_uploads
from pilothouse.server.management.replication import CopilotReplication
from pilothouse.server.management.staging import STAGING
from pilothouse.server.management.state import (
    close_management,
    copilots_dir,
    managed_copilot_folders,
    management_of,
    uploads_dir,
)
from pilothouse.storage.backends import open_store, shared

log = logging.getLogger(__name__)

PREFIX = "/api"

router = APIRouter(responses=responses(401, 403, 422, 429))
router.include_router(copilots.router, dependencies=[Depends(require_scope(COPILOTS_WRITE))])
router.include_router(copilot_files.router, dependencies=[Depends(require_scope(COPILOTS_WRITE))])
router.include_router(knowledge.default_router, dependencies=[Depends(require_scope(ADMIN))])
router.include_router(knowledge.copilot_router, dependencies=[Depends(require_scope(ADMIN))])
router.include_router(chunks.default_router, dependencies=[Depends(require_scope(ADMIN))])
router.include_router(chunks.copilot_router, dependencies=[Depends(require_scope(ADMIN))])
router.include_router(history.runs, dependencies=[Depends(require_scope(ADMIN))])
router.include_router(history.conversations, dependencies=[Depends(require_key)])
router.include_router(approvals.router, dependencies=[Depends(require_key)])
router.include_router(caller.router, dependencies=[Depends(require_key)])
router.include_router(evals.router, dependencies=[Depends(require_scope(ADMIN))])
router.include_router(promotions.router, dependencies=[Depends(require_key)])


def install(app: FastAPI) -> None:
    """Mount the management API under `/api`. At start-up (after the app's own), put
    right what a crash left mid-upload (recovery.py), serve again the copilots the
    API created earlier and, with other replicas, follow theirs (replication.py); at
    shutdown, release its stores."""
    app.include_router(router, prefix=PREFIX)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        async with inner(app_) as state:
            context = getattr(app.state, CONTEXT_STATE_KEY, None)
            replication: CopilotReplication | None = None
            if isinstance(context, ServerContext):
                staging = copilots_dir(context.settings) / STAGING
                await asyncio.to_thread(
                    logged,
                    "copilot uploads",
                    recover_staging,
                    staging,
                    copilots_dir(context.settings),
                )
                await open_managed_copilots(context)
                await asyncio.to_thread(recover_knowledge, context)
                replication = await start_replication(context)
            try:
                yield state
            finally:
                if isinstance(context, ServerContext):
                    if replication is not None:
                        await replication.aclose()
                    close_management(context)

    app.router.lifespan_context = lifespan


async def open_managed_copilots(context: ServerContext) -> list[str]:
    """Serve the copilots in `<data dir>/copilots/` that are not served yet (a copilot
    given on the command line wins over a managed one of the same name). One that does
    not open is logged and skipped: its folder stays, and PUT can fix it."""
    opened: list[str] = []
    for folder in managed_copilot_folders(context.settings):
        try:
            definition, _ = await asyncio.to_thread(load_definition, folder, uploaded=True)
            if definition.name != folder.name:
                log.warning(
                    "%s: copilot.yaml names the copilot %r, not %r (its folder); not served",
                    folder,
                    definition.name,
                    folder.name,
                )
                continue
            if definition.name in context.copilots:
                log.info("copilot %s is served from elsewhere; %s not opened", folder.name, folder)
                continue
            await context.copilots.open(folder, uploaded=True)
        except PilothouseError as exc:
            log.warning("managed copilot %s does not open, not served: %s", folder.name, exc)
            continue
        opened.append(folder.name)
    return opened


async def start_replication(context: ServerContext) -> CopilotReplication | None:
    """With a shared store, publish and follow the managed copilots (replication.py)."""
    if not shared(context.settings):
        return None
    state = management_of(context)
    store = await asyncio.to_thread(open_store, context.settings, "copilot_folders")
    state.replication = CopilotReplication(context, state, store)
    await state.replication.start()
    return state.replication


def recover_knowledge(context: ServerContext) -> None:
    """Make the uploaded knowledge files match their indexes (see recovery.py): the
    default knowledge base's and each served copilot's."""
    settings = context.settings
    default = uploads_dir(settings, None)
    if default.is_dir():
        state = management_of(context)
        logged(
            "default knowledge uploads", lambda: recover_uploads(default, state.default_knowledge())
        )
    for copilot in context.copilots.all():
        folder = uploads_dir(settings, copilot.name)
        kb = copilot.knowledge
        if kb is not None and folder.is_dir():
            logged(f"copilot {copilot.name}'s uploads", recover_uploads, folder, kb)
