"""Pending approvals: runs paused on a tool call that needs a person's decision; list
them, and approve or deny their calls, which resumes the run and returns its answer.

Any key may call these routes; it sees and decides only the runs it may decide
(`approve:<copilot>`, or its own runs where the copilot allows self-approval; see
server/ownership.py). Another key's run answers exactly as a run that does not exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam

from pilothouse.copilot.paused_runs import PausedRun
from pilothouse.errors import NotFoundError
from pilothouse.server.auth import principal_of
from pilothouse.server.management.activity import (
    AnswerOut,
    DecisionRequest,
    PendingRunList,
    PendingRunOut,
)
from pilothouse.server.management.errors import conflict, not_found, responses, unprocessable
from pilothouse.server.management.state import context_of, management
from pilothouse.server.ownership import may_decide, self_approval

router = APIRouter(tags=["approvals"])


@router.get(
    "/approvals",
    operation_id="listPendingApprovals",
    summary="Runs waiting for a decision on a tool call that this key may decide, oldest first",
    response_model=PendingRunList,
    responses=responses(401, 403, 429),
)
async def list_pending(
    request: Request,
    copilot: Annotated[str | None, Query(max_length=100, description="only this copilot's")] = None,
) -> PendingRunList:
    runs = await management(request).paused.all(copilot)
    return PendingRunList(runs=[PendingRunOut.of(r) for r in runs if _decidable(request, r)])


def _decidable(request: Request, paused: PausedRun) -> bool:
    copilots = context_of(request).copilots
    return may_decide(
        principal_of(request), paused, self_approve=self_approval(copilots, paused.copilot)
    )


@router.post(
    "/approvals/{run_id}",
    operation_id="decidePendingApproval",
    summary="Approve or deny a paused run's tool calls; the run goes on and its answer comes back",
    response_model=AnswerOut,
    responses=responses(401, 403, 404, 409, 422, 429),
)
async def decide(
    request: Request,
    run_id: Annotated[
        str, PathParam(max_length=100, description="the paused run's whole id (no prefix)")
    ],
    body: DecisionRequest,
) -> AnswerOut:
    """Calls listed in neither `approve` nor `deny` are denied. If the run calls another
    tool that needs approval, the answer's status is `awaiting_approval` again."""
    state = management(request)
    paused = await state.paused.get(run_id)
    if paused is None or not _decidable(request, paused):
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
            paused.run_id,
            approve=body.approve,
            deny=body.deny,
            note=body.note,
            decided_by=principal_of(request).key_id,
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
        f"no run {run_id!r} is waiting for a decision this key may make (it never "
        "paused, was decided already, or is not this key's to decide); give the whole "
        "run id; see GET /api/approvals",
        code="paused_run_not_found",
        param="run_id",
    )
