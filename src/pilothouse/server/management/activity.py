"""Bodies of the management API about what copilots did: conversations and their
messages, runs with their span trees, paused runs and the answers of resumed ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pilothouse.copilot.conversation_records import Conversation, StoredMessage
from pilothouse.copilot.events import Answer, Citation
from pilothouse.copilot.paused_runs import PausedRun
from pilothouse.storage.runs import RunSummary, SpanNode
from pilothouse.tracing.attributes import RunStatus
from pilothouse.types import ToolCallPart, message_to_dict

# --- conversations --------------------------------------------------------------------


class ConversationOut(BaseModel):
    id: str
    copilot: str
    title: str
    created: datetime
    updated: datetime
    message_count: int
    summary: str = Field(description="rolling summary of the older messages; empty when none")
    metadata: dict[str, Any]
    key_id: str | None = Field(
        default=None, description="the API key (its id) that started it; null without a key"
    )

    @classmethod
    def of(cls, c: Conversation) -> ConversationOut:
        return cls.model_validate(c, from_attributes=True)


class ConversationList(BaseModel):
    conversations: list[ConversationOut]


class MessageOut(BaseModel):
    index: int
    role: Literal["system", "user", "assistant", "tool"]
    text: str = Field(description="the text parts joined")
    parts: list[dict[str, Any]] = Field(
        description="every part: text, tool_call (id, name, arguments), tool_result, image"
    )
    created: datetime
    run_id: str | None

    @classmethod
    def of(cls, record: StoredMessage) -> MessageOut:
        plain = message_to_dict(record.message)
        return cls(
            index=record.index,
            role=record.message.role,
            text=record.message.text,
            parts=plain["parts"],
            created=record.created,
            run_id=record.run_id,
        )


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]


# --- runs -----------------------------------------------------------------------------


class RunOut(BaseModel):
    run_id: str
    name: str
    copilot: str | None
    conversation_id: str | None
    started: float = Field(description="epoch seconds")
    ended: float | None
    duration_s: float | None
    status: RunStatus = Field(
        description="how the run ended: completed, step_limit (answered at the tool step "
        "limit), awaiting_approval (paused; its decision starts a new run), "
        "awaiting_tool_output (paused for the caller's own tools' results), failed (see "
        "error), cancelled (the client left before the end)"
    )
    error: str | None
    question: str | None
    answer: str | None = Field(description="an excerpt; the full text is on the root span")
    model: str | None = Field(description="the model that produced the final answer")
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: float | None
    span_count: int
    key_id: str | None = Field(
        default=None, description="the API key (its id) that started the run; null without a key"
    )
    promotion_id: str | None = Field(
        default=None, description="the promotion that mirrored or routed the run (pr-...)"
    )
    promotion_role: str | None = Field(
        default=None,
        description="source (a user's run mirrored), shadow (the candidate's mirrored answer, "
        "never shown), canary (answered by the candidate), control (answered by the current "
        "model during a canary step)",
    )

    @classmethod
    def of(cls, run: RunSummary) -> RunOut:
        return cls.model_validate(run, from_attributes=True)


class RunList(BaseModel):
    runs: list[RunOut]


class SpanEventOut(BaseModel):
    name: str
    time: float
    attributes: dict[str, Any]


class SpanOut(BaseModel):
    span_id: str
    parent_id: str | None
    name: str
    kind: str = Field(description="run, retrieval, model, tool, approval, memory or other")
    start_time: float
    end_time: float | None
    duration_s: float | None
    status: str
    error: str | None
    error_type: str | None
    attributes: dict[str, Any]
    events: list[SpanEventOut]
    children: list[SpanOut]

    @classmethod
    def of(cls, node: SpanNode) -> SpanOut:
        span = node.span
        return cls(
            span_id=span.span_id,
            parent_id=span.parent_id,
            name=span.name,
            kind=span.kind,
            start_time=span.start_time,
            end_time=span.end_time,
            duration_s=span.duration_s,
            status=span.status,
            error=span.error,
            error_type=span.error_type,
            attributes=dict(span.attributes),
            events=[
                SpanEventOut(name=e.name, time=e.time, attributes=dict(e.attributes))
                for e in span.events
            ],
            children=[cls.of(child) for child in node.children],
        )


class RunDetailOut(RunOut):
    spans: list[SpanOut] = Field(description="the span tree (normally one root)")


# --- approvals ------------------------------------------------------------------------


class ToolCallOut(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str | None = None

    @classmethod
    def of(cls, call: ToolCallPart) -> ToolCallOut:
        return cls(
            id=call.id, name=call.name, arguments=call.arguments, raw_arguments=call.raw_arguments
        )


class PendingRunOut(BaseModel):
    run_id: str
    conversation_id: str
    copilot: str
    question: str
    steps: int = Field(description="tool steps the run has used so far")
    calls: list[ToolCallOut] = Field(description="the tool calls waiting for a decision")
    key_id: str | None = Field(
        default=None, description="the API key (its id) that started the run; null without a key"
    )

    @classmethod
    def of(cls, run: PausedRun) -> PendingRunOut:
        return cls(
            run_id=run.run_id,
            conversation_id=run.conversation_id,
            copilot=run.copilot,
            question=run.question,
            steps=run.steps,
            calls=[ToolCallOut.of(c) for c in run.pending],
            key_id=run.key_id,
        )


class PendingRunList(BaseModel):
    runs: list[PendingRunOut]


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: list[str] = Field(
        default_factory=list, max_length=100, description="ids of the tool calls to run"
    )
    deny: list[str] = Field(
        default_factory=list, max_length=100, description="ids of the tool calls not to run"
    )
    note: str = Field(default="", max_length=2000, description="told to the model with each denial")


class CitationOut(BaseModel):
    number: int
    source: str
    title: str
    page: int | None
    headings: list[str]
    snippet: str
    score: float
    inferred: bool
    chunk_id: int | None = Field(
        default=None,
        description="the cited passage: GET /api/copilots/{copilot}/knowledge/chunks/{chunk_id}",
    )

    @classmethod
    def of(cls, c: Citation) -> CitationOut:
        return cls(
            chunk_id=c.chunk_id,
            number=c.number,
            source=c.source,
            title=c.title,
            page=c.page,
            headings=list(c.headings),
            snippet=c.snippet,
            score=c.score,
            inferred=c.inferred,
        )


class ToolOutcomeOut(BaseModel):
    call: ToolCallOut
    content: str
    is_error: bool
    approved: bool | None = Field(description="null when no approval was needed")
    duration_s: float


class UsageOut(BaseModel):
    input_tokens: int
    output_tokens: int
    cached_tokens: int


class AnswerOut(BaseModel):
    run_id: str
    conversation_id: str
    status: Literal["completed", "awaiting_approval", "failed", "step_limit"]
    text: str
    citations: list[CitationOut]
    tool_calls: list[ToolOutcomeOut]
    pending: list[ToolCallOut] = Field(description="calls waiting for a decision again")
    model: str | None
    usage: UsageOut
    cost_usd: float | None
    error: str | None

    @classmethod
    def of(cls, answer: Answer) -> AnswerOut:
        return cls(
            run_id=answer.run_id,
            conversation_id=answer.conversation_id,
            status=answer.status,
            text=answer.text,
            citations=[CitationOut.of(c) for c in answer.citations],
            tool_calls=[
                ToolOutcomeOut(
                    call=ToolCallOut.of(t.call),
                    content=t.content,
                    is_error=t.is_error,
                    approved=t.approved,
                    duration_s=t.duration_s,
                )
                for t in answer.tool_calls
            ],
            pending=[ToolCallOut.of(p.call) for p in answer.pending],
            model=answer.model,
            usage=UsageOut(
                input_tokens=answer.usage.input_tokens,
                output_tokens=answer.usage.output_tokens,
                cached_tokens=answer.usage.cached_tokens,
            ),
            cost_usd=answer.cost_usd,
            error=answer.error,
        )
