"""Eval runs and comparisons as plain JSON-ready data (the CLI's `--json`, the
management API)."""

from __future__ import annotations

from typing import Any

from pilothouse.pipeline.compare import CaseChange, Comparison
from pilothouse.pipeline.summary import RunSummary


def summary_json(summary: RunSummary) -> dict[str, Any]:
    run = summary.run
    return {
        "run_id": run.run_id,
        "copilot": run.copilot,
        "status": run.status,
        "total": run.total,
        "plan": run.plan,
        "arms": [
            {
                "arm": a.arm.number,
                "label": a.arm.label,
                "model": a.arm.model,
                "variants": a.arm.variants,
                "cases": a.counts,
                "metrics": [
                    {
                        "metric": m.metric,
                        "judge": m.judge or None,
                        "mean": m.interval.mean if m.interval else None,
                        "low": m.interval.low if m.interval else None,
                        "high": m.interval.high if m.interval else None,
                        "n": m.interval.n if m.interval else 0,
                        "unjudged": m.unjudged,
                        "noise": m.noise,
                    }
                    for m in a.metrics
                ],
                "agreement": [
                    {
                        "metric": g.metric,
                        "judges": list(g.judges),
                        "cases": g.cases,
                        "share": g.share,
                        "kappa": g.kappa,
                    }
                    for g in a.agreements
                ],
            }
            for a in summary.arms
        ],
    }


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    def change(item: CaseChange) -> dict[str, Any]:
        return {
            "suite": item.suite,
            "case": item.case_id,
            "question": item.question,
            "a": {"answer": item.a.answer, "trace_id": item.a.trace_id},
            "b": {"answer": item.b.answer, "trace_id": item.b.trace_id},
        }

    return {
        "a": {
            "run_id": comparison.a.run.run_id,
            "arm": comparison.a.arm.number,
            "label": comparison.a.arm.label,
        },
        "b": {
            "run_id": comparison.b.run.run_id,
            "arm": comparison.b.arm.number,
            "label": comparison.b.arm.label,
        },
        "metrics": [
            {
                "metric": m.metric,
                "judge": m.judge or None,
                "direction": m.direction,
                "n": m.result.n if m.result else 0,
                "a": m.result.mean_a if m.result else None,
                "b": m.result.mean_b if m.result else None,
                "delta": m.result.delta.mean if m.result else None,
                "low": m.result.delta.low if m.result else None,
                "high": m.result.delta.high if m.result else None,
                "test": m.result.test if m.result else None,
                "p_value": m.result.p_value if m.result else None,
                "verdict": m.result.verdict if m.result else None,
            }
            for m in comparison.metrics
        ],
        "regressed": [change(c) for c in comparison.regressed],
        "improved": [change(c) for c in comparison.improved],
    }
