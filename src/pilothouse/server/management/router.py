"""The management API's router: everything under `/api`, admin keys only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI

from pilothouse.server.auth import ADMIN, require_scope
from pilothouse.server.context import CONTEXT_STATE_KEY, ServerContext
from pilothouse.server.management import approvals, copilots, history, knowledge
from pilothouse.server.management.errors import responses
from pilothouse.server.management.state import close_management

PREFIX = "/api"

router = APIRouter(
    dependencies=[Depends(require_scope(ADMIN))],
    responses=responses(401, 403, 422, 429),
)
router.include_router(copilots.router)
router.include_router(knowledge.default_router)
router.include_router(knowledge.copilot_router)
router.include_router(history.router)
router.include_router(approvals.router)


def install(app: FastAPI) -> None:
    """Mount the management API under `/api` and release its stores when the app's
    lifespan ends (after the app's own shutdown)."""
    app.include_router(router, prefix=PREFIX)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        async with inner(app_) as state:
            try:
                yield state
            finally:
                context = getattr(app.state, CONTEXT_STATE_KEY, None)
                if isinstance(context, ServerContext):
                    close_management(context)

    app.router.lifespan_context = lifespan
