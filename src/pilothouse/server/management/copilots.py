"""Copilots: list, get (definition and status), create and update from an uploaded
folder, delete, and the JSON Schema of copilot.yaml.

An upload is unpacked into a staging folder inside `<data dir>/copilots/.staging/`,
validated with the definition loader and the code policy (staging.py), then moved
into `<data dir>/copilots/<name>/` and opened; if opening fails, nothing changes (an
update puts the previous folder back, and the previous copilot keeps serving).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, Response, UploadFile
from fastapi import Path as PathParam

from pilothouse.copilot import Copilot
from pilothouse.copilot.definition import (
    DEFINITION_FILE,
    json_schema,
)
from pilothouse.errors import NotFoundError, PilothouseError
from pilothouse.knowledge.locations import copilot_base_path
from pilothouse.server.context import ServerContext
from pilothouse.server.management.errors import (
    conflict,
    not_found,
    problems_from_message,
    responses,
    unprocessable,
)
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
                raise conflict(
                    f"a copilot named {definition.name!r} exists already; update it with "
                    f"PUT /api/copilots/{definition.name}",
                    code="copilot_exists",
                )
            await asyncio.to_thread(os.rename, staging, final)
            try:
                copilot = await _open(context, final)
            except BaseException:
                await asyncio.to_thread(shutil.rmtree, final, True)
                raise
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
    previous = staging.with_name(staging.name + "-previous")
    try:
        definition = await validate(context, staging)
        if definition.name != name:
            raise unprocessable(
                f"copilot.yaml names the copilot {definition.name!r}, not {name!r}; a copilot "
                "cannot be renamed by an update (create the new name, delete the old one)",
                code="name_mismatch",
                param="name",
            )
        async with state.copilot_lock:
            final = managed_folder(context, state, name)
            await asyncio.to_thread(os.rename, final, previous)
            await asyncio.to_thread(os.rename, staging, final)
            try:
                copilot = await _open(context, final)
            except BaseException:
                await asyncio.to_thread(shutil.rmtree, final, True)
                await asyncio.to_thread(os.rename, previous, final)
                raise
        return await detail_of(copilot, state)
    finally:
        await asyncio.to_thread(shutil.rmtree, previous, True)


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
        folder = managed_folder(context, state, name)
        base = copilot_base_path(state.settings, folder)
        if name in context.copilots:
            await context.copilots.remove(name)
        await asyncio.to_thread(shutil.rmtree, folder, True)
        for path in (base, Path(f"{base}-wal"), Path(f"{base}-shm")):
            path.unlink(missing_ok=True)
        await asyncio.to_thread(shutil.rmtree, uploads_dir(state.settings, name), True)
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


async def _open(context: ServerContext, folder: Path) -> Copilot:
    """Open and serve the copilot in `folder`; a folder that does not open (a tool
    source that fails to load, ...) is a 422 with the reason."""
    try:
        return await context.copilots.open(folder, uploaded=True)
    except PilothouseError as exc:
        raise unprocessable(
            f"the copilot does not open: {exc}",
            code="copilot_does_not_open",
            problems=problems_from_message(str(exc), str(folder)),
        ) from None
