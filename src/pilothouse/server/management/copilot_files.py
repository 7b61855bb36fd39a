"""A copilot's files one by one, and the templates a new copilot starts from (what the
Studio's editor reads and writes):

- `GET /copilots/{name}/files/{path}`: one file of a served copilot, as it is on disk;
- `PATCH /copilots/{name}/files`: change some text files of a managed copilot (and
  delete others); the rest of its folder is kept. The changed folder is staged,
  validated and swapped in exactly as an upload (`PUT`) is: an invalid edit is a 422
  with located `problems` and the copilot keeps serving unchanged;
- `GET /templates`, `GET /templates/{template}?name=`: the folders `pilothouse init`
  copies, with the copilot's name filled in, and the `tools:` entries this server
  would refuse in an upload (code).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
from pathlib import Path, PurePosixPath
from typing import Annotated

import yaml
from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from pilothouse.copilot.definition import DEFINITION_FILE
from pilothouse.copilot.templates import TEMPLATES, template_files
from pilothouse.server.management.copilots import (
    NAME_PATTERN,
    CopilotName,
    managed_folder,
    replace_with,
)
from pilothouse.server.management.errors import (
    ApiError,
    bad_request,
    not_found,
    responses,
    too_large,
)
from pilothouse.server.management.schemas import CopilotDetail
from pilothouse.server.management.staging import STAGING
from pilothouse.server.management.state import context_of, copilots_dir, held_copilot, management
from pilothouse.server.management.uploads import UnsafeUploadError, safe_relative_path

router = APIRouter(tags=["copilots"])

_TEXT = "text/plain; charset=utf-8"


class FileEdits(BaseModel):
    files: dict[str, str] = Field(
        default_factory=dict,
        description="path in the copilot folder -> its new text (UTF-8); new paths are added",
        max_length=100,
    )
    delete: list[str] = Field(
        default_factory=list, description="paths to remove from the folder", max_length=100
    )


class TemplateFile(BaseModel):
    path: str
    content: str


class CodeProblem(BaseModel):
    field: str = Field(description="the copilot.yaml field, e.g. tools.0")
    message: str


class TemplateOut(BaseModel):
    name: str
    description: str
    files: list[TemplateFile]
    code: list[CodeProblem] = Field(
        description="tools: entries of this template that this server refuses in an upload "
        "(it runs without --allow-code-upload); leave them out, or upload elsewhere"
    )


class TemplateList(BaseModel):
    templates: list[TemplateOut]


# --- reading ----------------------------------------------------------------------------


@router.get(
    "/copilots/{name}/files/{path:path}",
    operation_id="getCopilotFile",
    summary="One file of a copilot's folder, as it is on disk",
    response_class=Response,
    responses={
        **responses(400, 401, 403, 404, 429),
        200: {"content": {"text/plain": {}, "application/octet-stream": {}}},
    },
)
async def get_copilot_file(
    request: Request,
    name: CopilotName,
    path: Annotated[str, PathParam(description="the file's path in the folder")],
) -> Response:
    limit = management(request).upload_limits.max_file_bytes
    async with held_copilot(context_of(request), name) as copilot:
        relative = _relative(path)
        target = copilot.folder.joinpath(*relative.parts)
        data = await asyncio.to_thread(_read_inside, copilot.folder, target, limit)
    if data is None:
        raise not_found(
            f"copilot {name!r} has no file {path!r}; GET /api/copilots/{name} lists its files",
            code="file_not_found",
            param="path",
        )
    try:
        data.decode("utf-8")
        media = _TEXT
    except UnicodeDecodeError:
        media = "application/octet-stream"
    return Response(data, media_type=media, headers={"x-content-type-options": "nosniff"})


def _read_inside(folder: Path, target: Path, limit: int) -> bytes | None:
    root = folder.resolve()
    if target.is_symlink() or not target.is_file() or not target.resolve().is_relative_to(root):
        return None
    if target.stat().st_size > limit:
        return None
    return target.read_bytes()


def _relative(path: str) -> PurePosixPath:
    try:
        return safe_relative_path(path)
    except UnsafeUploadError as exc:
        raise bad_request(f"unsafe path: {exc}", code="unsafe_path") from None


# --- editing ----------------------------------------------------------------------------


@router.patch(
    "/copilots/{name}/files",
    operation_id="editCopilotFiles",
    summary="Change, add or delete text files of a managed copilot; validated like an upload",
    response_model=CopilotDetail,
    responses=responses(400, 401, 403, 404, 409, 413, 422, 429),
)
async def edit_copilot_files(request: Request, name: CopilotName, body: FileEdits) -> CopilotDetail:
    """The copilot's folder with these changes is validated as an upload is (copilot.yaml
    located problems, the code policy) and swapped in; on any error nothing changes."""
    context = context_of(request)
    state = management(request)
    if not context.auth.enabled:
        raise ApiError(
            403,
            "copilots are not changed through the API under --no-auth (a web page could ask "
            "it); serve with keys, or edit the files and restart the server",
            type="permission_error",
            code="uploads_disabled",
        )
    if not body.files and not body.delete:
        raise bad_request("send `files` to change or `delete` to remove", code="no_upload")
    limit = state.upload_limits.max_file_bytes
    for path, text in body.files.items():
        if len(text.encode("utf-8")) > limit:
            raise too_large(f"{path} is over the {limit / 2**20:g} MiB per-file limit")
    changes = {str(_relative(p)): t for p, t in body.files.items()}
    removals = [str(_relative(p)) for p in body.delete]
    if DEFINITION_FILE in removals:
        raise bad_request(
            f"{DEFINITION_FILE} cannot be deleted; DELETE /api/copilots/{name} removes the copilot",
            code="bad_upload",
        )
    folder = managed_folder(context, state, name)
    root = copilots_dir(state.settings) / STAGING
    staging = root / secrets.token_hex(8)
    try:
        await asyncio.to_thread(_stage_edit, folder, staging, changes, removals)
        return await replace_with(context, state, name, staging)
    finally:
        await asyncio.to_thread(shutil.rmtree, staging, True)


def _stage_edit(folder: Path, staging: Path, changes: dict[str, str], removals: list[str]) -> None:
    staging.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(folder, staging, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for relative in removals:
        target = staging / relative
        if target.is_symlink() or not target.is_file():
            raise not_found(
                f"no file {relative!r} to delete", code="file_not_found", param="delete"
            )
        target.unlink()
    for relative, text in changes.items():
        target = staging / relative
        if target.is_symlink() or target.is_dir():
            raise bad_request(f"{relative!r} is not a plain file", code="unsafe_path")
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.parent.resolve().is_relative_to(staging.resolve()):
            raise bad_request(f"{relative!r} would be written through a link", code="unsafe_path")
        target.write_text(text, encoding="utf-8")


# --- templates --------------------------------------------------------------------------


@router.get(
    "/templates",
    operation_id="listCopilotTemplates",
    summary="The templates a new copilot starts from, filled in for a name",
    response_model=TemplateList,
    responses=responses(401, 403, 422, 429),
)
async def list_templates(
    request: Request,
    name: Annotated[
        str, Query(pattern=NAME_PATTERN, description="the new copilot's name")
    ] = "my-copilot",
) -> TemplateList:
    policy = context_of(request).copilots.code_policy
    found = []
    for template in TEMPLATES:
        files = await asyncio.to_thread(template_files, name, template)
        texts = {path: data.decode("utf-8") for path, data in files.items()}
        definition = yaml.safe_load(texts.get(DEFINITION_FILE, "")) or {}
        tools = definition.get("tools") or []
        found.append(
            TemplateOut(
                name=template,
                description=" ".join(str(definition.get("description", "")).split()),
                files=[TemplateFile(path=p, content=t) for p, t in texts.items()],
                code=[CodeProblem(field=f, message=m) for f, m in policy.problems(tools)],
            )
        )
    return TemplateList(templates=found)
