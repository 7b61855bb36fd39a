"""CI gates (copilot.yaml `evals.gates`): thresholds every evaluated model must hold.

- `min` / `max`: the metric's mean over the arm's cases.
- `no_worse_than: MODEL` (with `tolerance`): the arm's mean is at least MODEL's mean
  in the same run minus the tolerance (lower-is-better metrics: at most plus it). The
  paired verdict is shown beside it, so a pass within noise is visible as such.

A gate also fails when the arm has errored cases (a gate cannot pass on cases that
never ran) or when the metric was not scored at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pilothouse.copilot.definition_sections import EvalGate
from pilothouse.pipeline.compare import Side, compare
from pilothouse.pipeline.summary import ArmSummary, RunSummary
from pilothouse.storage.evals import EvalStore


@dataclass(frozen=True, slots=True)
class GateResult:
    gate: EvalGate
    arm: str
    passed: bool
    detail: str

    @property
    def name(self) -> str:
        return describe(self.gate)


def describe(gate: EvalGate) -> str:
    parts = []
    if gate.min is not None:
        parts.append(f">= {gate.min:g}")
    if gate.max is not None:
        parts.append(f"<= {gate.max:g}")
    if gate.no_worse_than is not None:
        slack = f" - {gate.tolerance:g}" if gate.tolerance else ""
        parts.append(f"no worse than {gate.no_worse_than}{slack}")
    return f"{gate.metric} {' and '.join(parts)}"


def baselines(gates: Sequence[EvalGate]) -> list[str]:
    """Models the gates compare against (the run must include them)."""
    return list(dict.fromkeys(g.no_worse_than for g in gates if g.no_worse_than))


def check_gates(
    store: EvalStore, summary: RunSummary, gates: Sequence[EvalGate]
) -> list[GateResult]:
    results = []
    by_model = {a.arm.model: a for a in summary.arms if a.arm.variants}
    for arm in summary.arms:
        for gate in gates:
            if gate.no_worse_than is not None and arm.arm.model == gate.no_worse_than:
                continue  # the baseline is not gated against itself
            results.append(_check(store, summary, arm, gate, by_model))
    return results


def _check(
    store: EvalStore,
    summary: RunSummary,
    arm: ArmSummary,
    gate: EvalGate,
    by_model: dict[str, ArmSummary],
) -> GateResult:
    label = arm.arm.label

    def result(passed: bool, detail: str) -> GateResult:
        return GateResult(gate, label, passed, detail)

    errors = arm.counts.get("error", 0)
    if errors:
        return result(
            False, f"{errors} case(s) errored: the gate cannot pass on cases that never ran"
        )
    metric = arm.metric(gate.metric)
    if metric is None or metric.interval is None:
        return result(False, f"no case was scored on {gate.metric}")
    mean = metric.interval.mean
    shown = f"{mean:.3g} [{metric.interval.low:.3g}, {metric.interval.high:.3g}]"
    if gate.min is not None and mean < gate.min:
        return result(False, f"{shown} is below {gate.min:g}")
    if gate.max is not None and mean > gate.max:
        return result(False, f"{shown} is above {gate.max:g}")
    if gate.no_worse_than is None:
        return result(True, shown)
    base = by_model.get(gate.no_worse_than)
    if base is None:
        return result(False, f"{gate.no_worse_than} is not in this run (run it with -m)")
    side_a, side_b = Side(summary.run, base.arm), Side(summary.run, arm.arm)
    found = compare(store, side_a, side_b).metric(gate.metric)
    if found is None or found.result is None:
        return result(False, f"no case was scored on {gate.metric} by both models")
    paired = found.result
    delta = paired.delta
    higher = found.direction == "higher"
    ok = delta.mean >= -gate.tolerance if higher else delta.mean <= gate.tolerance
    detail = (
        f"{paired.mean_b:.3g} vs {paired.mean_a:.3g}: delta {delta.mean:+.3g} "
        f"[{delta.low:+.3g}, {delta.high:+.3g}] ({paired.verdict}), tolerance {gate.tolerance:g}"
    )
    return result(ok, detail)
