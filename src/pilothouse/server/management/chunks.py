"""The passages of a knowledge base: a document's chunks in order, and one chunk by id
(what a citation's `chunk_id` names), for the default knowledge base and for each
served copilot's own. The Studio opens a cited passage with these.

(No `from __future__ import annotations`: FastAPI reads the routes' annotations, and
`Tgt` is local to `build_router`.)"""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from pilothouse.knowledge.rows import ChunkRow
from pilothouse.server.management.errors import not_found, responses
from pilothouse.server.management.knowledge import (
    Target,
    TargetDep,
    copilot_target,
    default_target,
    document_not_found,
)

RowId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="an id as listed")]
"""SQLite's integer ids: a larger number is a 422, never a 500."""


class ChunkOut(BaseModel):
    chunk_id: int
    document_id: int
    source: str
    title: str
    kind: str
    page: int | None
    headings: list[str]
    start: int = Field(description="character offset of the passage in the document's text")
    end: int
    text: str

    @classmethod
    def of(cls, row: ChunkRow) -> "ChunkOut":
        return cls(
            chunk_id=row.id,
            document_id=row.document_id,
            source=row.source,
            title=row.title,
            kind=row.kind,
            page=row.page,
            headings=list(row.headings),
            start=row.start,
            end=row.end,
            text=row.text,
        )


class ChunkList(BaseModel):
    chunks: list[ChunkOut]
    total: int = Field(description="the document's chunks in all")


def build_router(dependency: TargetDep, prefix: str, ops: str, where: str) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=["knowledge"])
    Tgt = Annotated[Target, Depends(dependency)]
    extra = (404, 409) if ops else (404,)

    @router.get(
        "/documents/{document_id}/chunks",
        operation_id=f"list{ops}KnowledgeChunks",
        summary=f"A document's passages in {where}, in the document's order",
        response_model=ChunkList,
        responses=responses(401, 403, *extra, 422, 429),
    )
    async def list_chunks(
        target: Tgt,
        document_id: RowId,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> ChunkList:
        store = target.kb.store
        ids = await asyncio.to_thread(store.document_chunk_ids, document_id)
        if not ids:
            rows = await asyncio.to_thread(target.kb.documents)
            if not any(r.id == document_id for r in rows):
                raise document_not_found(document_id, where)
        page = ids[offset : offset + limit]
        found = await asyncio.to_thread(store.chunks, page)
        return ChunkList(chunks=[ChunkOut.of(found[i]) for i in page if i in found], total=len(ids))

    @router.get(
        "/chunks/{chunk_id}",
        operation_id=f"get{ops}KnowledgeChunk",
        summary=f"One passage of {where} by id (a citation's chunk_id)",
        response_model=ChunkOut,
        responses=responses(401, 403, *extra, 422, 429),
    )
    async def get_chunk(target: Tgt, chunk_id: RowId) -> ChunkOut:
        found = await asyncio.to_thread(target.kb.store.chunks, [chunk_id])
        row = found.get(chunk_id)
        if row is None:
            raise not_found(
                f"no passage {chunk_id} in {where} (re-indexed since it was cited?)",
                code="chunk_not_found",
                param="chunk_id",
            )
        return ChunkOut.of(row)

    return router


default_router = build_router(default_target, "/knowledge", "", "the default knowledge base")
copilot_router = build_router(
    copilot_target, "/copilots/{name}/knowledge", "Copilot", "the copilot's knowledge base"
)
