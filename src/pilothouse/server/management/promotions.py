"""Promotions (docs/promotion.md): start one for a served copilot, follow it (every
gate, threshold and guard with its figures, the timeline), approve or abort it, read
its report. The Studio shows promotions through these routes.

Any key may call them; each route needs `promote:<copilot>` for the copilot concerned
(`promote:*` for every copilot; `admin` implies both). The list shows only the
promotions of copilots the key holds that scope for.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from pilothouse.copilot.definition import CopilotDefinitionError
from pilothouse.errors import ConfigError, NotFoundError, PilothouseError
from pilothouse.server.auth import ADMIN, Principal, principal_of
from pilothouse.server.management.errors import (
    ApiError,
    bad_request,
    conflict,
    not_found,
    problems_from_message,
    responses,
    unprocessable,
)
from pilothouse.server.management.state import context_of
from pilothouse.server.promotions import API_STARTER, ServedPromotions
from pilothouse.storage.promotion_records import PromotionConflictError, PromotionRecord

router = APIRouter(tags=["promotions"])

Target = Annotated[
    str,
    PathParam(max_length=100, description="a copilot's name (its promotion under way, else its "
              "latest), or a promotion id (pr-...)"),
]  # fmt: skip


class StartPromotion(BaseModel):
    copilot: str = Field(max_length=100, description="a copilot this server serves")
    to: str = Field(max_length=200, description="the candidate model id, e.g. openai:gpt-4.1")
    variant: str | None = Field(
        default=None,
        max_length=500,
        description="a .prompty file of the copilot folder: the only prompt tried for the "
        "candidate (default: its family's variant and the default instructions)",
    )


class AbortPromotion(BaseModel):
    reason: str = Field(default="", max_length=1000, description="said in the timeline")


class PromotionSummaryOut(BaseModel):
    promotion_id: str
    copilot: str
    current: str = Field(description="the model the copilot answered with when it started")
    candidate: str
    stage: Literal["offline", "shadow", "canary", "done"]
    step: int = Field(description="the canary step (0-based)")
    status: Literal["running", "held", "awaiting_approval", "promoted", "rolled_back"]
    reason: str | None = Field(description="why it is held, or how it ended")
    created: float = Field(description="epoch seconds")
    updated: float
    report: str | None = Field(description="the folder of report.md and report.html, once written")

    @classmethod
    def of(cls, record: PromotionRecord) -> PromotionSummaryOut:
        return cls.model_validate(record, from_attributes=True)


class PromotionList(BaseModel):
    promotions: list[PromotionSummaryOut]


class PromotionOut(PromotionSummaryOut):
    folder: str
    share: float | None = Field(description="in canary: the step's share of new conversations")
    stage_started: float
    started_by: str | None = Field(description="cli (user), or api:<key id>")
    eval_run: str | None = Field(description="the offline stage's eval run: GET /api/evals/{id}")
    prompt: dict[str, Any] = Field(description="the candidate's prompt: label, variants, prompt")
    policy: dict[str, Any] = Field(description="copilot.yaml `promotion:` when it started")
    offline: dict[str, Any] = Field(
        description="per candidate prompt (arm): its gates (name, passed, detail, value, low, "
        "high, baseline, delta, delta_low, delta_high, verdict), and the prompt chosen"
    )
    diff: str | None = Field(description="the change promotion made to copilot.yaml")
    shadow: dict[str, Any] | None = Field(
        default=None,
        description="state, reason, candidate and current request counts, rules (each "
        "threshold: passed, value, low, high, baseline, n, detail), metrics (per online "
        "metric: candidate and current mean, low, high, n)",
    )
    canary: dict[str, Any] = Field(description="steps: the same per canary step, with its share")
    timeline: list[dict[str, Any]] = Field(description="at, stage, step, kind, message, data")


def _served(request: Request) -> ServedPromotions:
    promotions = context_of(request).promotions
    if promotions is None:
        raise RuntimeError("the server has no promotions (create_app makes them)")
    return promotions


def _allowed(principal: Principal, copilot: str) -> None:
    if not principal.allows(f"promote:{copilot}"):
        raise ApiError(
            403,
            f"this key may not promote copilot {copilot!r}: it needs the scope "
            f"promote:{copilot} (or promote:*, or admin)",
            type="permission_error",
            code="insufficient_scope",
        )


async def _view(served: ServedPromotions, target: str) -> dict[str, Any]:
    try:
        return await asyncio.to_thread(served.promotions.status, target)
    except NotFoundError as exc:
        raise not_found(str(exc), code="promotion_not_found", param="copilot") from None


async def _record(request: Request, target: str) -> PromotionRecord:
    principal = principal_of(request)
    if not any(s == ADMIN or s.startswith("promote:") for s in principal.scopes):
        _allowed(principal, target)  # may promote nothing: 403, whatever the target
    served = _served(request)
    try:
        record = await asyncio.to_thread(served.promotions.find, target)
    except NotFoundError as exc:
        raise not_found(str(exc), code="promotion_not_found", param="copilot") from None
    if not principal.allows(f"promote:{record.copilot}"):
        # the same answer as no promotion at all: a key learns nothing of others' copilots
        unknown = (
            f"no promotion {target!r}; see `pilothouse promotion list`"
            if target.startswith("pr-")
            else f"copilot {target!r} has no promotion; start one with `pilothouse promote`"
        )  # the store's own words for an unknown id or copilot
        raise not_found(unknown, code="promotion_not_found", param="copilot")
    return record


@router.get(
    "/promotions",
    operation_id="listPromotions",
    summary="Promotions this key may see (promote:<copilot>), newest first",
    response_model=PromotionList,
    responses=responses(401, 429),
)
async def list_promotions(
    request: Request,
    copilot: Annotated[str | None, Query(max_length=100, description="only this copilot's")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> PromotionList:
    principal = principal_of(request)
    store = _served(request).store
    records = await asyncio.to_thread(store.list_promotions, copilot=copilot, limit=limit)
    visible = [r for r in records if principal.allows(f"promote:{r.copilot}")]
    return PromotionList(promotions=[PromotionSummaryOut.of(r) for r in visible])


@router.post(
    "/promotions",
    operation_id="startPromotion",
    summary="Start promoting a served copilot to another model (the offline stage runs here)",
    status_code=202,
    response_model=PromotionOut,
    responses=responses(400, 401, 403, 404, 409, 422, 429),
)
async def start_promotion(request: Request, body: StartPromotion) -> PromotionOut:
    principal = principal_of(request)
    _allowed(principal, body.copilot)
    context = context_of(request)
    copilot = context.copilots.get(body.copilot)
    if copilot is None:
        raise not_found(
            f"no copilot named {body.copilot!r} is served here", code="copilot_not_found",
            param="copilot",
        )  # fmt: skip
    served = _served(request)
    try:
        plan = await served.promotions.prepare(Path(copilot.folder), body.to, variant=body.variant)
        starter = f"{API_STARTER}{principal.key_id or 'anonymous'}"
        record = await asyncio.to_thread(served.promotions.start, plan, started_by=starter)
    except PromotionConflictError as exc:
        raise conflict(str(exc), code="promotion_under_way") from None
    except CopilotDefinitionError as exc:
        problems = problems_from_message(str(exc), str(copilot.folder))
        raise unprocessable(
            "copilot.yaml's promotion policy is invalid", code="invalid_policy", problems=problems
        ) from None
    except ConfigError as exc:
        raise bad_request(str(exc), code="cannot_promote", param="to") from None
    except PilothouseError as exc:
        raise bad_request(str(exc), code="cannot_promote") from None
    served.start_offline(record)
    return PromotionOut(**await _view(served, record.promotion_id))


@router.get(
    "/promotions/{copilot}",
    operation_id="getPromotion",
    summary="A promotion: where it is, every gate, threshold and guard, the timeline",
    response_model=PromotionOut,
    responses=responses(401, 403, 404, 429),
)
async def get_promotion(request: Request, copilot: Target) -> PromotionOut:
    record = await _record(request, copilot)
    return PromotionOut(**await _view(_served(request), record.promotion_id))


@router.post(
    "/promotions/{copilot}/approve",
    operation_id="approvePromotion",
    summary="Let a held promotion go on, or promote one waiting for approval",
    response_model=PromotionOut,
    responses=responses(401, 403, 404, 409, 429),
)
async def approve_promotion(request: Request, copilot: Target) -> PromotionOut:
    record = await _record(request, copilot)
    who = f"api:{principal_of(request).key_id or 'anonymous'}"
    return await _decide(request, lambda p: p.approve(record.promotion_id, by=who))


@router.post(
    "/promotions/{copilot}/abort",
    operation_id="abortPromotion",
    summary="Roll a promotion back now, wherever it is (the report is written)",
    response_model=PromotionOut,
    responses=responses(401, 403, 404, 409, 429),
)
async def abort_promotion(
    request: Request, copilot: Target, body: Annotated[AbortPromotion | None, Body()] = None
) -> PromotionOut:
    record = await _record(request, copilot)
    who = f"api:{principal_of(request).key_id or 'anonymous'}"
    reason = body.reason if body is not None else ""
    return await _decide(request, lambda p: p.abort(record.promotion_id, by=who, reason=reason))


async def _decide(request: Request, action: Any) -> PromotionOut:
    served = _served(request)
    try:
        record: PromotionRecord = await asyncio.to_thread(action, served.promotions)
    except NotFoundError as exc:
        raise conflict(str(exc), code="promotion_over") from None
    except ConfigError as exc:
        raise conflict(str(exc), code="nothing_to_approve") from None
    await served.poll()  # this server follows the change at once
    return PromotionOut(**await _view(served, record.promotion_id))


@router.get(
    "/promotions/{copilot}/report",
    operation_id="getPromotionReport",
    summary="A finished promotion's report, as HTML (self-contained) or Markdown",
    response_class=Response,
    responses={
        **responses(401, 403, 404, 429),
        200: {"content": {"text/html": {}, "text/markdown": {}}, "description": "the report"},
    },
)
async def get_promotion_report(
    request: Request,
    copilot: Target,
    format: Annotated[Literal["html", "md"], Query(description="html or md")] = "html",
) -> Response:
    record = await _record(request, copilot)
    if record.report is None:
        raise not_found(
            f"promotion {record.promotion_id} has no report yet (it is {record.status}); the "
            "report is written when it is promoted or rolled back",
            code="report_not_ready",
        )
    path = Path(record.report) / f"report.{format}"
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except OSError:
        raise not_found(f"{path} is missing", code="report_not_found") from None
    media = "text/html" if format == "html" else "text/markdown"
    return Response(text, media_type=f"{media}; charset=utf-8")
