"""Pending approvals: runs paused on a tool call that needs a person's decision; list
them, and approve or deny their calls, which resumes the run and returns its answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam

from pilothouse.errors import NotFoundError
from pilothouse.server.management.activity import (
    AnswerOut,
    DecisionRequest,
    PendingRunList,
    PendingRunOut,
)
from pilothouse.server.management.errors import conflict, not_found, responses, unprocessable
from pilothouse.server.management.state import context_of, management

router = APIRouter(tags=["approvals"])


@router.get(
    "/approvals",
    operation_id="listPendingApprovals",
    summary="Runs waiting for a decision on a tool call, oldest first",
    response_model=PendingRunList,
    responses=responses(401, 403, 429),
)
async def list_pending(
    request: Request,
    copilot: Annotated[str | None, Query(max_length=100, description="only this copilot's")] = None,
) -> PendingRunList:
    runs = await management(request).paused.all(copilot)
    return PendingRunList(runs=[PendingRunOut.of(r) for r in runs])


@router.post(
    "/approvals/{run_id}",
    operation_id="decidePendingApproval",
    summary="Approve or deny a paused run's tool calls; the run goes on and its answer comes back",
    response_model=AnswerOut,
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def decide(
    request: Request,
    run_id: Annotated[str, PathParam(max_length=100, description="the paused run's id")],
    body: DecisionRequest,
) -> AnswerOut:
    """Calls listed in neither `approve` nor `deny` are denied. If the run calls another
    tool that needs approval, the answer's status is `awaiting_approval` again."""
    state = management(request)
    paused = next((r for r in await state.paused.all() if r.run_id == run_id), None)
    if paused is None:
        raise _no_run(run_id)
    pending = {c.id for c in paused.pending}
    unknown = sorted((set(body.approve) | set(body.deny)) - pending)
    if unknown:
        raise unprocessable(
            f"run {run_id} has no pending tool call {', '.join(map(repr, unknown))}; its "
            f"pending calls are {', '.join(map(repr, sorted(pending))) or 'none'}",
            code="unknown_tool_call",
            param="approve" if set(unknown) & set(body.approve) else "deny",
        )
    both = sorted(set(body.approve) & set(body.deny))
    if both:
        raise unprocessable(
            f"tool call {', '.join(map(repr, both))} is both approved and denied",
            code="conflicting_decision",
        )
    if not body.approve and not body.deny:
        raise unprocessable(
            "decide at least one tool call: list call ids in `approve` or `deny`",
            code="no_decision",
        )
    context = context_of(request)
    try:
        copilot = context.copilots.acquire(paused.copilot)
    except NotFoundError:
        raise conflict(
            f"run {run_id} belongs to copilot {paused.copilot!r}, which this server does not "
            "serve; decide it where that copilot is served",
            code="copilot_not_served",
        ) from None
    try:
        answer = await copilot.approve(
            paused.run_id, approve=body.approve, deny=body.deny, note=body.note
        )
    except NotFoundError:
        raise _no_run(run_id, decided=True) from None
    finally:
        await context.copilots.release(copilot)
    return AnswerOut.of(answer)


def _no_run(run_id: str, *, decided: bool = False) -> Exception:
    if decided:
        return conflict(
            f"run {run_id} was decided by someone else a moment ago", code="already_decided"
        )
    return not_found(
        f"no run {run_id!r} is waiting for approval (it never paused, or was decided "
        "already); see GET /api/approvals",
        code="paused_run_not_found",
        param="run_id",
    )
