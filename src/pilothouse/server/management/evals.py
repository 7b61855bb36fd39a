"""Eval runs and comparisons, read-only (the Studio shows them): the runs, one run's
figures per model, its cases with their scores, and two arms compared."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from pilothouse.config import Settings
from pilothouse.errors import ConfigError, NotFoundError
from pilothouse.pipeline.compare import compare, sides
from pilothouse.pipeline.export import comparison_json, summary_json
from pilothouse.pipeline.summary import summarize
from pilothouse.server.context import server_context
from pilothouse.server.management.errors import bad_request, not_found, responses
from pilothouse.storage.evals import EvalRun, EvalStore

router = APIRouter(tags=["evals"])

RunId = Annotated[str, PathParam(max_length=100, description="an eval run id (ev-...) or prefix")]


class ArmOut(BaseModel):
    arm: int = Field(description="1, 2, ...: the arm's number in its run")
    label: str
    model: str
    variants: bool = Field(description="whether per-model prompt variants were on")


class EvalRunOut(BaseModel):
    run_id: str
    copilot: str
    created: float = Field(description="unix time")
    finished: float | None
    status: str = Field(description="running (or interrupted: resume it) or finished")
    total: int = Field(description="cases x repeats x arms")
    arms: list[ArmOut]

    @classmethod
    def of(cls, run: EvalRun) -> EvalRunOut:
        arms = [
            ArmOut(arm=a.number, label=a.label, model=a.model, variants=a.variants)
            for a in run.arms
        ]
        return cls(
            run_id=run.run_id,
            copilot=run.copilot,
            created=run.created,
            finished=run.finished,
            status=run.status,
            total=run.total,
            arms=arms,
        )


class EvalRunList(BaseModel):
    runs: list[EvalRunOut]


class EvalRunDetail(BaseModel):
    run_id: str
    copilot: str
    status: str
    total: int
    plan: dict[str, Any] = Field(description="what the run was asked to do")
    arms: list[dict[str, Any]] = Field(
        description="per arm: its cases (passed, failed, error), every metric's mean with "
        "its bootstrap 95% interval (low, high), n, unjudged, noise; judge agreement"
    )


class ScoreOut(BaseModel):
    metric: str
    judge: str | None
    value: float | None = Field(description="None: unjudged (or the metric failed)")
    detail: str


class EvalCaseOut(BaseModel):
    arm: int
    suite: str
    case_id: str
    repeat: int
    status: str = Field(description="passed, failed or error")
    question: str
    answer: str
    model: str | None
    trace_id: str | None = Field(description="the run's trace: GET /api/runs/{trace_id}")
    error: str | None
    details: dict[str, Any]
    scores: list[ScoreOut]


class EvalCaseList(BaseModel):
    cases: list[EvalCaseOut]


class ComparisonOut(BaseModel):
    a: dict[str, Any]
    b: dict[str, Any]
    metrics: list[dict[str, Any]] = Field(
        description="per metric: a, b, delta (B - A) with low and high, n, test, p_value, "
        "verdict (better, worse, no detectable difference)"
    )
    regressed: list[dict[str, Any]]
    improved: list[dict[str, Any]]


def _settings(request: Request) -> Settings:
    return server_context(request).settings


async def _with_store(request: Request, work: Any) -> Any:
    def run() -> Any:
        with EvalStore.for_settings(_settings(request)) as store:
            return work(store)

    try:
        return await asyncio.to_thread(run)
    except NotFoundError as exc:
        raise not_found(str(exc), code="eval_run_not_found", param="run_id") from None
    except ConfigError as exc:
        raise bad_request(str(exc), code="bad_comparison") from None


@router.get(
    "/evals",
    operation_id="listEvalRuns",
    summary="Eval runs, newest first",
    response_model=EvalRunList,
    responses=responses(401, 403, 429),
)
async def list_eval_runs(
    request: Request,
    copilot: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> EvalRunList:
    runs = await _with_store(request, lambda store: store.list_runs(limit, copilot))
    return EvalRunList(runs=[EvalRunOut.of(r) for r in runs])


@router.get(
    "/evals/compare",
    operation_id="compareEvalRuns",
    summary="Two arms compared case by case: paired differences, verdicts, changed cases",
    response_model=ComparisonOut,
    responses=responses(400, 401, 403, 404, 429),
)
async def compare_eval_runs(
    request: Request,
    a: Annotated[str, Query(max_length=200, description="RUN or RUN@ARM")],
    b: Annotated[str | None, Query(max_length=200, description="RUN or RUN@ARM")] = None,
) -> ComparisonOut:
    def work(store: EvalStore) -> dict[str, Any]:
        left, right = sides(store, a, b)
        return comparison_json(compare(store, left, right))

    return ComparisonOut(**await _with_store(request, work))


@router.get(
    "/evals/{run_id}",
    operation_id="getEvalRun",
    summary="An eval run's figures per model",
    response_model=EvalRunDetail,
    responses=responses(401, 403, 404, 429),
)
async def get_eval_run(request: Request, run_id: RunId) -> EvalRunDetail:
    data = await _with_store(request, lambda store: summary_json(summarize(store, run_id)))
    return EvalRunDetail(**{k: data[k] for k in EvalRunDetail.model_fields})


@router.get(
    "/evals/{run_id}/cases",
    operation_id="listEvalCases",
    summary="An eval run's cases with their answers, scores and traces",
    response_model=EvalCaseList,
    responses=responses(401, 403, 404, 429),
)
async def list_eval_cases(
    request: Request,
    run_id: RunId,
    arm: Annotated[int | None, Query(ge=1, le=1000)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> EvalCaseList:
    def work(store: EvalStore) -> list[EvalCaseOut]:
        full = store.resolve(run_id)
        cases = []
        for row in store.cases(full, arm, limit=limit, offset=offset):
            scores = store.case_scores(full, row.arm, row.suite, row.case_id, row.rep)
            cases.append(
                EvalCaseOut(
                    arm=row.arm,
                    suite=row.suite,
                    case_id=row.case_id,
                    repeat=row.rep,
                    status=row.status,
                    question=row.question,
                    answer=row.answer,
                    model=row.model,
                    trace_id=row.trace_id,
                    error=row.error,
                    details=row.details,
                    scores=[
                        ScoreOut(
                            metric=s.metric, judge=s.judge or None, value=s.value, detail=s.detail
                        )
                        for s in scores
                    ],
                )
            )
        return cases

    return EvalCaseList(cases=await _with_store(request, work))
