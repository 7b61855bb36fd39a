"""Bodies of the management API about copilots and knowledge (they make its OpenAPI
document), and the conversions from the plain dataclasses inside Pilothouse. What
copilots did (conversations, runs, approvals) is in activity.py."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pilothouse.copilot.definition import CopilotDefinition
from pilothouse.knowledge.documents import SearchResult
from pilothouse.knowledge.ingestion import IngestReport
from pilothouse.knowledge.rows import DocumentRow

# --- copilots -------------------------------------------------------------------------


class IngestSummary(BaseModel):
    added: int
    updated: int
    unchanged: int
    removed: int
    skipped: int
    failed: int
    seconds: float


class KnowledgeStats(BaseModel):
    documents: int
    chunks: int
    tokens: int
    kinds: dict[str, int] = Field(description="documents by type (pdf, markdown, ...)")
    bytes: int = Field(description="size of the index on disk")
    embedding_model: str | None = Field(description="the model the index was built with")


class CopilotSummary(BaseModel):
    name: str
    description: str
    managed: bool = Field(
        description="true when the copilot's folder is in the data directory's copilots "
        "folder, so the API may update and delete it"
    )
    folder: str
    models: list[str] = Field(description="model ids in fallback order")
    tools: list[str] = Field(description="names of the tools the copilot may call")
    knowledge: bool = Field(description="whether the copilot retrieves from a knowledge base")


class CopilotStatus(BaseModel):
    state: Literal["ready"] = "ready"
    pending_approvals: int = Field(description="runs of this copilot waiting for a decision")
    knowledge: KnowledgeStats | None = None
    last_ingest: IngestSummary | None = Field(
        default=None, description="the knowledge sync when the copilot was (re)loaded"
    )


class CopilotDetail(CopilotSummary):
    definition: CopilotDefinition = Field(description="copilot.yaml as loaded")
    files: list[str] = Field(description="files of the copilot folder (relative paths)")
    status: CopilotStatus


class CopilotList(BaseModel):
    copilots: list[CopilotSummary]


# --- knowledge ------------------------------------------------------------------------


class DocumentOut(BaseModel):
    id: int
    source: str
    title: str
    type: str = Field(description="pdf, docx, html, markdown, text, csv or json")
    chunks: int
    tags: list[str]
    bytes: int
    ingested_at: str
    uploaded: bool = Field(description="true when the file was uploaded through this API")

    @classmethod
    def of(cls, row: DocumentRow, uploaded: bool) -> DocumentOut:
        return cls(
            id=row.id,
            source=row.source,
            title=row.title,
            type=row.kind,
            chunks=row.chunk_count,
            tags=list(row.tags),
            bytes=row.size,
            ingested_at=row.ingested_at,
            uploaded=uploaded,
        )


class DocumentList(BaseModel):
    documents: list[DocumentOut]


FileStatus = Literal["added", "updated", "unchanged", "removed", "failed", "skipped"]


class FileResult(BaseModel):
    source: str = Field(description="the file as uploaded (its name) or indexed (its path)")
    status: FileStatus
    reason: str = Field(default="", description="why it failed or was skipped")
    chunks: int = 0


class IngestResult(BaseModel):
    files: list[FileResult]
    embedded_chunks: int = Field(description="chunks that had to be embedded (not cached)")
    seconds: float

    @classmethod
    def of(
        cls, report: IngestReport, extra: list[FileResult], names: dict[str, str]
    ) -> IngestResult:
        files = [*extra]
        files += [
            FileResult(
                source=names.get(o.source, o.source),
                status=o.status,
                reason=o.reason,
                chunks=o.chunks,
            )
            for o in report.outcomes
        ]
        return cls(
            files=files, embedded_chunks=report.embedded_chunks, seconds=round(report.seconds, 3)
        )


def ingest_summary(report: IngestReport | None) -> IngestSummary | None:
    if report is None:
        return None
    return IngestSummary(
        added=report.count("added"),
        updated=report.count("updated"),
        unchanged=report.count("unchanged"),
        removed=report.count("removed"),
        skipped=report.count("skipped"),
        failed=report.count("failed"),
        seconds=round(report.seconds, 3),
    )


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=4000, description="what to look for")
    mode: Literal["hybrid", "bm25", "dense"] = "hybrid"
    top_k: int = Field(default=5, ge=1, le=100)
    min_score: float | None = Field(
        default=None,
        ge=-1e9,
        le=1e9,
        description="drop results scoring below (the mode's own score: BM25, cosine or fused)",
    )
    sources: list[str] = Field(
        default_factory=list, max_length=20, description="only sources matching these globs"
    )
    types: list[str] = Field(default_factory=list, max_length=10, description="only these types")
    tags: list[str] = Field(default_factory=list, max_length=20, description="any of these tags")


class SearchHit(BaseModel):
    rank: int
    score: float
    scores: dict[str, float] = Field(description="each method's own score (bm25, dense, fused)")
    document_id: int
    chunk_id: int
    source: str
    title: str
    page: int | None
    headings: list[str]
    start: int
    end: int
    text: str

    @classmethod
    def of(cls, rank: int, result: SearchResult) -> SearchHit:
        return cls(
            rank=rank,
            score=result.score,
            scores=dict(result.scores),
            document_id=result.document_id,
            chunk_id=result.chunk_id,
            source=result.source,
            title=result.title,
            page=result.page,
            headings=list(result.headings),
            start=result.start,
            end=result.end,
            text=result.text,
        )


class SearchResponse(BaseModel):
    results: list[SearchHit]
