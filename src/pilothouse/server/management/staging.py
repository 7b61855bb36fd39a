"""An uploaded copilot folder on its way in: unpacked into a fresh staging folder in
`<data dir>/copilots/.staging/` (uploads.py says what is refused), then validated:
copilot.yaml with the loader the CLI uses (every problem located), and the server's
code policy (upload_policy.py: no code unless allowed). The caller moves the folder
into place and removes the staging folder, whatever happens."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from pathlib import Path

from fastapi import UploadFile

from pilothouse.copilot.definition import (
    DEFINITION_FILE,
    CopilotDefinition,
    CopilotDefinitionError,
    load_definition,
)
from pilothouse.server.context import ServerContext
from pilothouse.server.management.errors import (
    ApiError,
    Problem,
    bad_request,
    problems_from_message,
    too_large,
    unprocessable,
)
from pilothouse.server.management.state import ManagementState, copilots_dir
from pilothouse.server.management.uploads import (
    BadUploadError,
    UnsafeUploadError,
    UploadTooLargeError,
    unpack_zip,
    write_files,
)
from pilothouse.server.upload_policy import HOW_TO_ALLOW

STAGING = ".staging"


async def stage(
    context: ServerContext,
    state: ManagementState,
    archive: UploadFile | None,
    files: list[UploadFile] | None,
) -> Path:
    """Unpack the upload into a fresh staging folder (removed by the caller)."""
    if not context.auth.enabled:  # the browser guard refuses multipart already
        raise ApiError(
            403,
            "uploads are refused under --no-auth (a web page could send them); serve "
            "with keys to upload copilots",
            type="permission_error",
            code="uploads_disabled",
        )
    files = [f for f in files or [] if f.filename or f.size]
    if archive is not None and not archive.filename and not archive.size:
        archive = None
    if (archive is None) == (not files):
        raise bad_request(
            "send the copilot folder either as one zip file in the `archive` field or as "
            "files (named by their paths in the folder) in the `files` field",
            code="no_upload",
        )
    limits = state.upload_limits
    root = copilots_dir(state.settings) / STAGING
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    staging = root / secrets.token_hex(8)
    await asyncio.to_thread(staging.mkdir)
    try:
        if archive is not None:
            await asyncio.to_thread(unpack_zip, archive.file, staging, limits, DEFINITION_FILE)
        else:
            named = [(f.filename or "", f.file) for f in files]
            await asyncio.to_thread(write_files, named, staging, limits, DEFINITION_FILE)
    except UnsafeUploadError as exc:
        await asyncio.to_thread(shutil.rmtree, staging, True)
        raise bad_request(f"unsafe upload: {exc}", code="unsafe_path") from None
    except UploadTooLargeError as exc:
        await asyncio.to_thread(shutil.rmtree, staging, True)
        raise too_large(str(exc)) from None
    except BadUploadError as exc:
        await asyncio.to_thread(shutil.rmtree, staging, True)
        raise bad_request(str(exc), code="bad_upload") from None
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, staging, True)
        raise
    return staging


async def validate(context: ServerContext, staging: Path) -> CopilotDefinition:
    try:
        definition, _ = await asyncio.to_thread(load_definition, staging, uploaded=True)
    except CopilotDefinitionError as exc:
        raise unprocessable(
            "the uploaded copilot is not valid; see `problems` (file:line: field: message)",
            code="invalid_copilot",
            problems=problems_from_message(str(exc), str(staging)),
        ) from None
    code = context.copilots.code_policy.problems(definition.tools)
    if code:
        raise ApiError(
            403,
            f"the uploaded copilot brings code, which this server does not run: {HOW_TO_ALLOW}",
            type="permission_error",
            code="code_upload_disabled",
            problems=[
                Problem(file=DEFINITION_FILE, line=None, field=field, message=message)
                for field, message in code
            ],
        )
    return definition
