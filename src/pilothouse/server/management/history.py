"""Conversations (list, get with messages, delete) and runs (list, get with the span
tree): what copilots said and did, read from the data directory's database.

`conversations` takes any key: a key sees only the conversations it started (an
`admin` key sees all; another key's conversation answers as one that does not exist).
`runs` is for `admin` keys (the router that includes it says so)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam

from pilothouse.copilot.conversation_records import Conversation
from pilothouse.errors import NotFoundError
from pilothouse.server.auth import ADMIN, principal_of
from pilothouse.server.management.activity import (
    ConversationDetail,
    ConversationList,
    ConversationOut,
    MessageOut,
    RunDetailOut,
    RunList,
    RunOut,
    SpanOut,
)
from pilothouse.server.management.errors import not_found, responses
from pilothouse.server.management.state import management
from pilothouse.server.ownership import may_see_conversation

conversations = APIRouter(tags=["conversations"])
runs = APIRouter(tags=["runs"])

CopilotFilter = Annotated[str | None, Query(max_length=100, description="only this copilot's")]
Limit = Annotated[int, Query(ge=1, le=1000, description="at most this many, newest first")]


@conversations.get(
    "/conversations",
    operation_id="listConversations",
    summary="Conversations (this key's own, or all for admin), most recently updated first",
    response_model=ConversationList,
    responses=responses(401, 403, 429),
)
async def list_conversations(
    request: Request, copilot: CopilotFilter = None, limit: Limit = 50
) -> ConversationList:
    principal = principal_of(request)
    owner = None if principal.allows(ADMIN) else principal.key_id or ""
    rows = await management(request).conversations.list(copilot, limit, key_id=owner)
    return ConversationList(conversations=[ConversationOut.of(c) for c in rows])


async def _visible(request: Request, conversation_id: str) -> Conversation:
    """The conversation, if this key may see it; else the 404 of an unknown id."""
    try:
        conversation = await management(request).conversations.get(conversation_id)
    except NotFoundError:
        raise _no_conversation(conversation_id) from None
    if not may_see_conversation(principal_of(request), conversation):
        raise _no_conversation(conversation_id)
    return conversation


@conversations.get(
    "/conversations/{conversation_id}",
    operation_id="getConversation",
    summary="A conversation with its messages",
    response_model=ConversationDetail,
    responses=responses(401, 403, 404, 429),
)
async def get_conversation(request: Request, conversation_id: str) -> ConversationDetail:
    conversation = await _visible(request, conversation_id)
    try:
        records = await management(request).conversations.records(conversation_id)
    except NotFoundError:
        raise _no_conversation(conversation_id) from None
    return ConversationDetail(
        **ConversationOut.of(conversation).model_dump(),
        messages=[MessageOut.of(r) for r in records],
    )


@conversations.delete(
    "/conversations/{conversation_id}",
    operation_id="deleteConversation",
    summary="Delete a conversation and its messages (its runs' traces stay)",
    status_code=204,
    response_class=Response,
    responses=responses(401, 403, 404, 429),
)
async def delete_conversation(request: Request, conversation_id: str) -> Response:
    await _visible(request, conversation_id)
    try:
        await management(request).conversations.delete(conversation_id)
    except NotFoundError:
        raise _no_conversation(conversation_id) from None
    return Response(status_code=204)


def _no_conversation(conversation_id: str) -> Exception:
    return not_found(
        f"no conversation {conversation_id!r}; see GET /api/conversations",
        code="conversation_not_found",
        param="conversation_id",
    )


@runs.get(
    "/runs",
    operation_id="listRuns",
    summary="Runs (one per question or resumed approval), newest first",
    response_model=RunList,
    responses=responses(401, 403, 429),
)
async def list_runs(
    request: Request,
    copilot: CopilotFilter = None,
    limit: Limit = 20,
    promotion: Annotated[
        str | None, Query(max_length=100, description="only the runs of this promotion (pr-...)")
    ] = None,
) -> RunList:
    traces = management(request).traces
    runs = await asyncio.to_thread(traces.list_runs, limit, copilot, promotion)
    return RunList(runs=[RunOut.of(r) for r in runs])


@runs.get(
    "/runs/{run_id}",
    operation_id="getRun",
    summary="A run with its span tree (retrieval, model calls, tool calls, approvals)",
    response_model=RunDetailOut,
    responses=responses(401, 403, 404, 429),
)
async def get_run(
    request: Request,
    run_id: Annotated[str, PathParam(description="the run id, or an unambiguous prefix of it")],
) -> RunDetailOut:
    traces = management(request).traces
    try:
        detail = await asyncio.to_thread(traces.get_run, run_id)
    except NotFoundError as exc:
        raise not_found(str(exc), code="run_not_found", param="run_id") from None
    return RunDetailOut(
        **RunOut.of(detail.run).model_dump(), spans=[SpanOut.of(n) for n in detail.tree()]
    )
