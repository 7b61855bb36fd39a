"""Copilots: list, get (definition and status), create and update from an uploaded
folder, delete, and the JSON Schema of copilot.yaml.

An upload is unpacked into a staging folder inside `<data dir>/copilots/.staging/`,
validated with the definition loader and the code policy (staging.py), then moved
into `<data dir>/copilots/<name>/` and opened; if opening fails, nothing changes (an
update puts the previous folder back, and the previous copilot keeps serving). With
other replicas (a shared store), the opened folder is then published to them
(replication.py); if that fails, the change is undone here too (503).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, Response, UploadFile
from fastapi import Path as PathParam

from pilothouse.copilot import Copilot
from pilothouse.copilot.definition import DEFINITION_FILE, json_schema
from pilothouse.errors import NotFoundError, PilothouseError, StorageUnavailableError
from pilothouse.knowledge.locations import copilot_base_path
from pilothouse.server.context import ServerContext
from pilothouse.server.management.errors import (
    conflict,
    not_found,
    problems_from_message,
    responses,
    unprocessable,
)
from pilothouse.server.management.recovery import PREVIOUS_SUFFIX
from pilothouse.server.management.schemas import (
    CopilotDetail,
    CopilotList,
    CopilotStatus,
    CopilotSummary,
    KnowledgeStats,
    ingest_summary,
)
from pilothouse.server.management.staging import stage, validate
from pilothouse.server.management.state import (
    ManagementState,
    context_of,
    copilots_dir,
    is_managed,
    management,
    uploads_dir,
)
from pilothouse.storage.copilot_folders import FolderExistsError

log = logging.getLogger(__name__)

router = APIRouter(tags=["copilots"])

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
CopilotName = Annotated[
    str,
    PathParam(
        pattern=NAME_PATTERN,
        description="the copilot's name (copilot.yaml `name`)",
        openapi_examples={"helpdesk": {"value": "helpdesk"}},
    ),
]
ArchiveField = Annotated[
    UploadFile | None,
    File(
        description="the copilot folder as a zip archive (copilot.yaml at its top, or in "
        "its one top folder)"
    ),
]
FilesField = Annotated[
    list[UploadFile] | None,
    File(
        description="the copilot's files, each named by its path in the folder "
        "(e.g. prompts/instructions.prompty); send either this or `archive`"
    ),
]
MAX_LISTED_FILES = 1000


# --- reading ----------------------------------------------------------------------------


def summary_of(copilot: Copilot, state: ManagementState) -> CopilotSummary:
    definition = copilot.definition
    knowledge = definition.knowledge is not None and definition.knowledge.grounding != "off"
    return CopilotSummary(
        name=copilot.name,
        description=definition.description,
        managed=is_managed(state.settings, copilot.folder),
        folder=str(copilot.folder),
        models=[m.id for m in copilot.models],
        tools=list(copilot.toolset.names),
        knowledge=knowledge,
    )


def knowledge_stats(figures: dict[str, Any]) -> KnowledgeStats:
    settings = figures.get("settings") or {}
    return KnowledgeStats(
        documents=int(figures["documents"]),
        chunks=int(figures["chunks"]),
        tokens=int(figures["tokens"]),
        kinds={str(k): int(v) for k, v in figures["kinds"].items()},
        bytes=int(figures["bytes"]),
        embedding_model=settings.get("embedding_model"),
    )


def _files(folder: Path) -> list[str]:
    found: list[str] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            found.append(Path(root, name).relative_to(folder).as_posix())
            if len(found) >= MAX_LISTED_FILES:
                return found
    return found


async def detail_of(copilot: Copilot, state: ManagementState) -> CopilotDetail:
    stats = None
    if copilot.knowledge is not None:
        stats = knowledge_stats(await asyncio.to_thread(copilot.knowledge.stats))
    pending = await state.paused.all(copilot.name)
    files = await asyncio.to_thread(_files, copilot.folder)
    return CopilotDetail(
        **summary_of(copilot, state).model_dump(),
        definition=copilot.definition,
        files=files,
        status=CopilotStatus(
            pending_approvals=len(pending),
            knowledge=stats,
            last_ingest=ingest_summary(copilot.last_ingest),
        ),
    )


@router.get(
    "/copilots",
    operation_id="listCopilots",
    summary="List the served copilots",
    response_model=CopilotList,
    responses=responses(401, 403, 429),
)
async def list_copilots(request: Request) -> CopilotList:
    state = management(request)
    host = context_of(request).copilots
    return CopilotList(copilots=[summary_of(c, state) for c in host.all()])


@router.get(
    "/schemas/copilot",
    operation_id="getCopilotSchema",
    summary="The JSON Schema of copilot.yaml",
    response_model=dict[str, Any],
    responses=responses(401, 403, 429),
)
async def get_copilot_schema() -> dict[str, Any]:
    return json_schema()


@router.get(
    "/copilots/{name}",
    operation_id="getCopilot",
    summary="A copilot's definition, files and status",
    response_model=CopilotDetail,
    responses=responses(401, 403, 404, 429),
)
async def get_copilot(request: Request, name: CopilotName) -> CopilotDetail:
    context = context_of(request)
    state = management(request)
    try:
        copilot = context.copilots.acquire(name)
    except NotFoundError:
        raise _no_copilot(name) from None
    try:
        return await detail_of(copilot, state)
    finally:
        await context.copilots.release(copilot)


# --- writing ----------------------------------------------------------------------------


@router.post(
    "/copilots",
    operation_id="createCopilot",
    summary="Create a copilot from an uploaded folder (zip archive or files)",
    status_code=201,
    response_model=CopilotDetail,
    responses=responses(400, 401, 403, 409, 413, 422, 429),
)
async def create_copilot(
    request: Request, archive: ArchiveField = None, files: FilesField = None
) -> CopilotDetail:
    context = context_of(request)
    state = management(request)
    staging = await stage(context, state, archive, files)
    try:
        definition = await validate(context, staging)
        async with state.copilot_lock:
            final = copilots_dir(state.settings) / definition.name
            if definition.name in context.copilots or final.exists():
                raise _exists(definition.name)
            copilot = await _served(context, state, definition.name, staging, new=True)
        return await detail_of(copilot, state)
    finally:
        await asyncio.to_thread(shutil.rmtree, staging, True)


@router.put(
    "/copilots/{name}",
    operation_id="updateCopilot",
    summary="Replace a managed copilot's folder with an uploaded one",
    response_model=CopilotDetail,
    responses=responses(400, 401, 403, 404, 409, 413, 422, 429),
)
async def update_copilot(
    request: Request, name: CopilotName, archive: ArchiveField = None, files: FilesField = None
) -> CopilotDetail:
    context = context_of(request)
    state = management(request)
    managed_folder(context, state, name)
    staging = await stage(context, state, archive, files)
    try:
        return await replace_with(context, state, name, staging)
    finally:
        await asyncio.to_thread(shutil.rmtree, staging, True)


async def replace_with(
    context: ServerContext, state: ManagementState, name: str, staging: Path
) -> CopilotDetail:
    """Validate the copilot folder `staging` and serve it in place of managed copilot
    `name`; if it does not open, the previous folder goes back and keeps serving. The
    caller removes `staging` whatever happens."""
    definition = await validate(context, staging)
    if definition.name != name:
        raise unprocessable(
            f"copilot.yaml names the copilot {definition.name!r}, not {name!r}; a copilot "
            "cannot be renamed by an update (create the new name, delete the old one)",
            code="name_mismatch",
            param="name",
        )
    async with state.copilot_lock:
        managed_folder(context, state, name)
        copilot = await _served(context, state, name, staging, new=False)
    return await detail_of(copilot, state)


async def put_in_place(
    context: ServerContext,
    state: ManagementState,
    name: str,
    staging: Path,
    then: Callable[[Path], Awaitable[None]] | None = None,
) -> Copilot:
    """Serve the copilot folder `staging` as managed copilot `name` (the caller holds
    `state.copilot_lock`): moved into `<data dir>/copilots/<name>/`, a folder there
    moved aside first, then opened and `then(folder)` awaited (the publication to other
    replicas). If either fails, the folder that was there goes back and is served again
    (or the copilot is no longer served, when there was none), and the error is raised:
    a PilothouseError when the folder does not open (CodeUploadRefused included)."""
    final = copilots_dir(state.settings) / name
    previous = staging.with_name(staging.name + PREVIOUS_SUFFIX)
    had = final.exists()
    if had:
        await asyncio.to_thread(os.rename, final, previous)
    await asyncio.to_thread(os.rename, staging, final)
    opened = False
    try:
        copilot = await context.copilots.open(final, uploaded=True)
        opened = True
        if then is not None:
            await then(final)
        return copilot
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, final, True)
        if had:
            await asyncio.to_thread(os.rename, previous, final)
        try:
            if opened and had:
                await context.copilots.open(final, uploaded=True)
            elif opened and name in context.copilots:
                await context.copilots.remove(name)
        except Exception:
            log.exception("copilot %s: serving the previous folder again failed", name)
        raise
    finally:
        await asyncio.to_thread(shutil.rmtree, previous, True)


async def _served(
    context: ServerContext, state: ManagementState, name: str, staging: Path, *, new: bool
) -> Copilot:
    """`put_in_place` for the API: published to the other replicas when there are any;
    a folder that does not open is a 422, a name another replica took a 409."""
    replication = state.replication

    async def publish(folder: Path) -> None:
        if replication is not None:
            await replication.publish(name, folder, new=new)

    try:
        return await put_in_place(context, state, name, staging, publish)
    except FolderExistsError:
        raise _exists(name) from None
    except StorageUnavailableError:
        raise
    except PilothouseError as exc:
        raise unprocessable(
            f"the copilot does not open: {exc}",
            code="copilot_does_not_open",
            problems=problems_from_message(str(exc), str(copilots_dir(state.settings) / name)),
        ) from None


async def remove_managed(context: ServerContext, state: ManagementState, name: str) -> None:
    """Stop serving managed copilot `name` and delete its folder, its knowledge base
    files and its uploads (the caller holds `state.copilot_lock`)."""
    folder = copilots_dir(state.settings) / name
    base = copilot_base_path(state.settings, folder)
    if name in context.copilots:
        await context.copilots.remove(name)
    await asyncio.to_thread(shutil.rmtree, folder, True)
    for path in (base, Path(f"{base}-wal"), Path(f"{base}-shm")):
        path.unlink(missing_ok=True)
    await asyncio.to_thread(shutil.rmtree, uploads_dir(state.settings, name), True)


@router.delete(
    "/copilots/{name}",
    operation_id="deleteCopilot",
    summary="Stop serving a managed copilot and delete its folder and knowledge base",
    status_code=204,
    response_class=Response,
    responses=responses(401, 403, 404, 409, 429),
)
async def delete_copilot(request: Request, name: CopilotName) -> Response:
    context = context_of(request)
    state = management(request)
    async with state.copilot_lock:
        managed_folder(context, state, name)
        if state.replication is not None:  # published first: a failure changes nothing
            await state.replication.unpublish(name)
        await remove_managed(context, state, name)
    return Response(status_code=204)


# --- helpers ----------------------------------------------------------------------------


def _no_copilot(name: str) -> Exception:
    return not_found(
        f"no copilot named {name!r} is served; see GET /api/copilots",
        code="copilot_not_found",
        param="name",
    )


def managed_folder(context: ServerContext, state: ManagementState, name: str) -> Path:
    """The folder of managed copilot `name`: 404 when there is no such copilot, 409
    when it is served from a folder the API must not change."""
    folder = copilots_dir(state.settings) / name
    served = context.copilots.get(name)
    if served is not None and not is_managed(state.settings, served.folder):
        raise conflict(
            f"copilot {name!r} is served from {served.folder}, outside the data directory's "
            "copilots folder; the API changes only the copilots it created (edit the files "
            "there and restart the server)",
            code="copilot_not_managed",
        )
    if not (folder / DEFINITION_FILE).is_file() or folder.is_symlink():
        raise _no_copilot(name)
    return folder


def _exists(name: str) -> Exception:
    return conflict(
        f"a copilot named {name!r} exists already; update it with PUT /api/copilots/{name}",
        code="copilot_exists",
    )
