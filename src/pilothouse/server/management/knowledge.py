"""Knowledge: upload files, list and delete documents, re-index, search; for the data
directory's default knowledge base (`/knowledge/...`) and for each served copilot's
own (`/copilots/{name}/knowledge/...`).

Uploaded files are kept in `<data dir>/knowledge/uploads/<base>/` (so a re-index can
read them again) and ingested incrementally: a file uploaded again with the same
name replaces its document, unchanged content is not re-embedded. Each file gets its
own outcome; a file that fails (unsafe name, unsupported type, over the size limit,
damaged) is reported and the others go on.
"""

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile

from pilothouse.copilot import Copilot
from pilothouse.knowledge import Filters, IngestOptions, IngestReport, KnowledgeBase, SearchOptions
from pilothouse.knowledge.errors import KnowledgeError
from pilothouse.knowledge.loaders import kind_for
from pilothouse.server.management.copilots import CopilotName, knowledge_stats
from pilothouse.server.management.errors import (
    ApiError,
    bad_request,
    conflict,
    not_found,
    responses,
    too_large,
    unprocessable,
)
from pilothouse.server.management.schemas import (
    DocumentList,
    DocumentOut,
    FileResult,
    IngestResult,
    KnowledgeStats,
    SearchHit,
    SearchRequest,
    SearchResponse,
)
from pilothouse.server.management.state import (
    ManagementState,
    context_of,
    held_copilot,
    management,
    uploads_dir,
)
from pilothouse.server.management.uploads import UnsafeUploadError, safe_relative_path

CHUNK = 256 * 1024
_GLOB_CHARS = frozenset("*?[")


@dataclass
class Target:
    """The knowledge base a request works on."""

    kb: KnowledgeBase
    key: str
    uploads: Path
    state: ManagementState
    copilot: Copilot | None = None
    sources: list[str] = field(default_factory=list)
    """The copilot's own knowledge sources (re-indexed too), relative to `cwd`."""
    cwd: Path | None = None
    confine: tuple[str, ...] = ()
    """Folders a re-index may read from (the copilot's and its uploads); empty: any."""

    def is_upload(self, source: str) -> bool:
        return source.startswith(str(self.uploads.absolute()) + os.sep)


async def default_target(request: Request) -> Target:
    state = management(request)
    kb = await asyncio.to_thread(state.default_knowledge)
    return Target(kb, "default", uploads_dir(state.settings, None), state)


async def copilot_target(request: Request, name: CopilotName) -> AsyncIterator[Target]:
    state = management(request)
    async with held_copilot(context_of(request), name) as copilot:
        if copilot.knowledge is None or copilot.definition.knowledge is None:
            raise conflict(
                f"copilot {name!r} has no knowledge base (its copilot.yaml has no `knowledge:` "
                "section, or grounding is off); add one and update the copilot",
                code="no_knowledge",
            )
        yield Target(
            copilot.knowledge,
            f"copilot:{name}",
            uploads_dir(state.settings, name),
            state,
            copilot=copilot,
            sources=list(copilot.definition.knowledge.sources),
            cwd=copilot.folder,
            confine=_confine(copilot, uploads_dir(state.settings, name)),
        )


def _confine(copilot: Copilot, uploads: Path) -> tuple[str, ...]:
    roots = copilot.knowledge_roots
    return (*roots, str(uploads.resolve())) if roots else ()


# --- the work -------------------------------------------------------------------------


def _store_upload(upload: UploadFile, target: Path, limit: int) -> Path | None:
    """Write the upload to `target` through a temporary file; returns the previous
    version's backup (restored if ingestion fails), or None when there was none."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    size = 0
    try:
        with temp.open("xb") as out:
            upload.file.seek(0)
            while block := upload.file.read(CHUNK):
                size += len(block)
                if size > limit:
                    raise _FileRefused(f"over the {limit / 2**20:g} MiB per-file limit")
                out.write(block)
        if size == 0:
            raise _FileRefused("empty file (0 bytes)")
        backup = None
        if target.is_file():
            backup = target.with_name(f".{target.name}.{secrets.token_hex(4)}.previous")
            os.replace(target, backup)
        os.replace(temp, target)
        return backup
    finally:
        temp.unlink(missing_ok=True)


class _FileRefused(Exception):
    pass


async def _upload(target: Target, files: list[UploadFile], tags: list[str]) -> IngestResult:
    limits = target.state.knowledge_limits
    files = [f for f in files if f.filename or f.size]
    if not files:
        raise bad_request("send one or more files in the `files` field", code="no_upload")
    if len(files) > limits.max_files:
        raise too_large(f"more than {limits.max_files} files in one upload; send them in parts")
    refused: list[FileResult] = []
    stored: dict[str, str] = {}  # absolute path -> name as uploaded
    backups: dict[str, Path | None] = {}
    for upload in files:
        name = upload.filename or ""
        try:
            relative = safe_relative_path(name)
            if _GLOB_CHARS & set(name):
                raise _FileRefused("rename the file: * ? [ are not allowed in uploaded names")
            if any(part.startswith(".") for part in relative.parts):
                raise _FileRefused("hidden files (names starting with '.') are not indexed")
            if kind_for(Path(relative.name)) is None:
                raise _FileRefused(
                    f"unsupported file type {PurePosixPath(name).suffix or '(no suffix)'!r}"
                )
            path = target.uploads.joinpath(*relative.parts).absolute()
            if str(path) in stored:
                raise _FileRefused("the same file name appears twice in this upload")
            backups[str(path)] = await asyncio.to_thread(
                _store_upload, upload, path, limits.max_file_bytes
            )
            stored[str(path)] = name
        except UnsafeUploadError as exc:
            refused.append(
                FileResult(source=name, status="failed", reason=f"unsafe name: {exc.reason}")
            )
        except _FileRefused as exc:
            refused.append(FileResult(source=name, status="failed", reason=str(exc)))
        except OSError as exc:
            refused.append(
                FileResult(source=name, status="failed", reason=f"cannot store: {exc.strerror}")
            )
    report = IngestReport()
    if stored:
        options = IngestOptions(
            tags=tuple(tags), max_file_bytes=limits.max_file_bytes, remove_missing=False
        )
        try:
            report = await target.kb.add(list(stored), options=options)
        finally:
            failed = {o.source for o in report.outcomes if o.status in ("failed", "skipped")}
            await asyncio.to_thread(
                _settle, stored, backups, failed if report.outcomes else set(stored)
            )
    result = IngestResult.of(report, refused, stored)
    order = {upload.filename or "": index for index, upload in enumerate(files)}
    result.files.sort(key=lambda f: order.get(f.source, len(order)))
    return result


def _settle(stored: dict[str, str], backups: dict[str, Path | None], failed: set[str]) -> None:
    """Drop backups of files that went in; put back the previous version (or remove the
    new file) of those that failed, so the folder matches the index."""
    for path in stored:
        backup = backups.get(path)
        if path in failed:
            if backup is not None:
                os.replace(backup, path)
            else:
                Path(path).unlink(missing_ok=True)
        elif backup is not None:
            backup.unlink(missing_ok=True)


async def _reindex(target: Target) -> IngestResult:
    rows = await asyncio.to_thread(target.kb.documents)
    by_tags: dict[tuple[str, ...], list[str]] = {}
    for row in rows:
        by_tags.setdefault(row.tags, []).append(row.source)
    if target.sources:
        by_tags.setdefault((), []).extend(target.sources)
    total = IngestReport()
    first = True
    for tags, sources in sorted(by_tags.items()):
        options = IngestOptions(tags=tags, remove_missing=False, confine_to=target.confine)
        report = await target.kb.add(sources, options=options, reindex=first, cwd=target.cwd)
        first = False
        total.outcomes.extend(report.outcomes)
        total.seconds += report.seconds
        total.embedded_chunks += report.embedded_chunks
    if first:  # nothing indexed and no sources: still rebuild (settings change)
        total = await target.kb.add([], reindex=True, cwd=target.cwd)
    return IngestResult.of(total, [], {})


def _index_error(exc: KnowledgeError) -> ApiError:
    return conflict(f"{exc}", code="index_mismatch")


def document_not_found(document_id: int, where: str) -> ApiError:
    """The 404 for a document id that `where` (a knowledge base, in words) lacks."""
    return not_found(
        f"no document {document_id} in {where}; list them with GET .../documents",
        code="document_not_found",
        param="document_id",
    )


# --- routes ---------------------------------------------------------------------------

TargetDep = Callable[..., Any]


def build_router(dependency: TargetDep, prefix: str, ops: str, where: str) -> APIRouter:
    """The knowledge routes over one kind of knowledge base: `ops` goes into operation
    ids (`listKnowledgeDocuments`, `listCopilotKnowledgeDocuments`)."""
    router = APIRouter(prefix=prefix, tags=["knowledge"])
    Tgt = Annotated[Target, Depends(dependency)]
    extra = (404, 409) if ops else (409,)

    @router.get(
        "",
        operation_id=f"get{ops}KnowledgeStats",
        summary=f"Figures of {where}: documents, chunks, size, embedding model",
        response_model=KnowledgeStats,
        responses=responses(401, 403, *extra, 429),
    )
    async def stats(target: Tgt) -> KnowledgeStats:
        return knowledge_stats(await asyncio.to_thread(target.kb.stats))

    @router.get(
        "/documents",
        operation_id=f"list{ops}KnowledgeDocuments",
        summary=f"The documents in {where}",
        response_model=DocumentList,
        responses=responses(401, 403, *extra, 429),
    )
    async def list_documents(
        target: Tgt,
        source: Annotated[list[str], Query(description="only sources matching a glob")] = [],  # noqa: B006
        type: Annotated[list[str], Query(description="only this type: pdf, markdown, ...")] = [],  # noqa: B006
        tag: Annotated[list[str], Query(description="only documents with this tag")] = [],  # noqa: B006
    ) -> DocumentList:
        filters = Filters(sources=tuple(source), kinds=tuple(type), tags=tuple(tag))
        rows = await asyncio.to_thread(target.kb.documents, filters)
        return DocumentList(documents=[DocumentOut.of(r, target.is_upload(r.source)) for r in rows])

    @router.post(
        "/documents",
        operation_id=f"upload{ops}KnowledgeDocuments",
        summary=f"Upload files into {where} (each file reports its own outcome)",
        response_model=IngestResult,
        responses=responses(400, 401, 403, *extra, 413, 429),
    )
    async def upload_documents(
        target: Tgt,
        files: Annotated[
            list[UploadFile],
            File(description="documents: PDF, DOCX, HTML, Markdown, text, CSV, JSON"),
        ],
        tags: Annotated[list[str], Form(description="tags for every uploaded document")] = [],  # noqa: B006
    ) -> IngestResult:
        async with target.state.knowledge_lock(target.key):
            try:
                return await _upload(target, files, tags)
            except KnowledgeError as exc:
                raise _index_error(exc) from None

    @router.delete(
        "/documents/{document_id}",
        operation_id=f"delete{ops}KnowledgeDocument",
        summary=f"Remove a document from {where} (and its uploaded file)",
        status_code=204,
        response_class=Response,
        responses=responses(401, 403, 404, *extra, 429),
    )
    async def delete_document(target: Tgt, document_id: int) -> Response:
        async with target.state.knowledge_lock(target.key):
            rows = await asyncio.to_thread(target.kb.documents)
            row = next((r for r in rows if r.id == document_id), None)
            if row is None:
                raise document_not_found(document_id, where)
            await asyncio.to_thread(target.kb.store.remove_documents, [row.id])
            if target.is_upload(row.source):
                await asyncio.to_thread(Path(row.source).unlink, True)
        return Response(status_code=204)

    @router.post(
        "/reindex",
        operation_id=f"reindex{ops}Knowledge",
        summary=f"Rebuild {where} from its files (after an embedding or chunking change)",
        response_model=IngestResult,
        responses=responses(401, 403, *extra, 429),
    )
    async def reindex(target: Tgt) -> IngestResult:
        async with target.state.knowledge_lock(target.key):
            return await _reindex(target)

    @router.post(
        "/search",
        operation_id=f"search{ops}Knowledge",
        summary=f"Search {where}: ranked passages with their source",
        response_model=SearchResponse,
        responses=responses(401, 403, *extra, 422, 429),
    )
    async def search(target: Tgt, body: SearchRequest) -> SearchResponse:
        try:
            options = SearchOptions(
                mode=body.mode,
                k=body.top_k,
                min_score=body.min_score,
                filters=Filters(
                    sources=tuple(body.sources), kinds=tuple(body.types), tags=tuple(body.tags)
                ),
            )
        except ValueError as exc:
            raise unprocessable(str(exc), code="bad_search") from None
        try:
            results = await target.kb.search(body.query, options)
        except KnowledgeError as exc:
            raise _index_error(exc) from None
        return SearchResponse(results=[SearchHit.of(i, r) for i, r in enumerate(results, 1)])

    return router


default_router = build_router(default_target, "/knowledge", "", "the default knowledge base")
copilot_router = build_router(
    copilot_target, "/copilots/{name}/knowledge", "Copilot", "the copilot's knowledge base"
)
