"""A promotion as plain data: where it is, every gate, threshold and guard with its
figures and intervals, the online metrics per stage and model, and the timeline. The
CLI's `promotion status --json`, the management API and the reports all show this."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pilothouse.copilot.promotion_policy import ONLINE_METRICS, PromotionPolicy
from pilothouse.pipeline.promotion.decide import (
    RuleResult,
    StageVerdict,
    decide_canary,
    decide_shadow,
    values_of,
)
from pilothouse.pipeline.stats import mean_interval
from pilothouse.storage.promotion_records import PromotionRecord, PromotionStore, Sample


def policy_of(record: PromotionRecord) -> PromotionPolicy:
    return PromotionPolicy.model_validate(record.policy)


def hours_in_stage(record: PromotionRecord, now: float | None = None) -> float:
    return max(0.0, ((now or time.time()) - record.stage_started) / 3600)


def shadow_verdict(
    store: PromotionStore, record: PromotionRecord, now: float | None = None
) -> StageVerdict:
    hours = hours_in_stage(record, now) if record.stage == "shadow" else 0.0
    samples = store.samples(record.promotion_id, "shadow")
    return decide_shadow(policy_of(record).shadow, samples, hours)


def canary_verdict(
    store: PromotionStore, record: PromotionRecord, step: int, now: float | None = None
) -> StageVerdict:
    live = record.stage == "canary" and record.step == step
    hours = hours_in_stage(record, now) if live else 0.0
    samples = store.samples(record.promotion_id, "canary", step)
    return decide_canary(policy_of(record).canary, samples, hours)


def rule_json(result: RuleResult) -> dict[str, Any]:
    interval = result.interval
    return {
        "rule": result.name,
        "metric": result.rule.metric,
        "stat": result.rule.stat,
        "passed": result.passed,
        "value": result.value,
        "low": interval.low if interval else None,
        "high": interval.high if interval else None,
        "baseline": result.baseline,
        "n": result.n,
        "detail": result.detail,
    }


def metrics_json(samples: Sequence[Sample]) -> list[dict[str, Any]]:
    """Per online metric and model: the mean with its bootstrap 95% interval, n."""
    rows = []
    for metric in ONLINE_METRICS:
        row: dict[str, Any] = {"metric": metric, "better": ONLINE_METRICS[metric][0]}
        seen = False
        for arm in ("candidate", "current"):
            values = values_of([s for s in samples if s.arm == arm], metric)
            interval = mean_interval(values)
            seen = seen or interval is not None
            row[arm] = (
                {"mean": interval.mean, "low": interval.low, "high": interval.high, "n": interval.n}
                if interval
                else None
            )
        if seen:
            rows.append(row)
    return rows


def verdict_json(verdict: StageVerdict, samples: Sequence[Sample]) -> dict[str, Any]:
    return {
        "state": verdict.state,
        "reason": verdict.reason,
        "candidate": verdict.candidate,
        "current": verdict.current,
        "rules": [rule_json(r) for r in verdict.results],
        "metrics": metrics_json(samples),
    }


def promotion_view(
    store: PromotionStore, record: PromotionRecord, now: float | None = None
) -> dict[str, Any]:
    policy = policy_of(record)
    view: dict[str, Any] = {
        "promotion_id": record.promotion_id,
        "copilot": record.copilot,
        "folder": record.folder,
        "current": record.current,
        "candidate": record.candidate,
        "prompt": {
            "label": record.offline.get("chosen"),
            "variants": record.variants,
            "prompt": record.prompt,
        },
        "stage": record.stage,
        "step": record.step,
        "share": policy.canary.steps[record.step] if record.stage == "canary" else None,
        "status": record.status,
        "reason": record.reason,
        "created": record.created,
        "updated": record.updated,
        "stage_started": record.stage_started,
        "started_by": record.started_by,
        "eval_run": record.eval_run,
        "report": record.report,
        "policy": record.policy,
        "offline": record.offline,
        "diff": record.previous.get("diff"),
    }
    shadow = store.samples(record.promotion_id, "shadow")
    if shadow or record.stage in ("shadow", "canary", "done"):
        view["shadow"] = verdict_json(shadow_verdict(store, record, now), shadow)
    steps = []
    reached = record.step if record.stage == "canary" else _last_step(store, record)
    for step in range(reached + 1):
        samples = store.samples(record.promotion_id, "canary", step)
        if not samples and not (record.stage == "canary" and step == record.step):
            continue
        entry = verdict_json(canary_verdict(store, record, step, now), samples)
        entry.update(step=step, share=policy.canary.steps[step])
        steps.append(entry)
    view["canary"] = {"steps": steps}
    view["timeline"] = [
        {
            "at": e.at,
            "stage": e.stage,
            "step": e.step,
            "kind": e.kind,
            "message": e.message,
            "data": e.data,
        }
        for e in store.events(record.promotion_id)
    ]
    return view


def _last_step(store: PromotionStore, record: PromotionRecord) -> int:
    steps = [e.step for e in store.events(record.promotion_id) if e.stage == "canary"]
    return max(steps, default=-1)
