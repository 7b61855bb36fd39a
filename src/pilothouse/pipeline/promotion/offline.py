"""The offline stage: the copilot's eval suites on the current model and on the
candidate with each prompt that fits it, side by side in one eval run; the gates of
`promotion.offline` decide, and the best passing prompt is chosen by the gates'
metrics (docs/promotion.md).

Prompts tried for the candidate (`offline.variants`): `family` (default) its family's
variant when the copilot has one (copilot.yaml `model.variants`, or
`instructions.<family>.prompty`) and the default instructions; `all` every variant file
of the copilot and the default; `none` only what the runtime would pick. `--variant
FILE` tries exactly that file. A variant that does not load is left out, said so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pilothouse.copilot.definition import CopilotDefinition
from pilothouse.copilot.promotion_policy import OfflineGate, OfflinePolicy
from pilothouse.copilot.prompty import load_prompty, variant_path
from pilothouse.errors import PilothouseError
from pilothouse.pipeline.compare import Side, compare
from pilothouse.pipeline.metrics import PASS, metric_named
from pilothouse.pipeline.summary import ArmSummary, summarize
from pilothouse.storage.evals import Arm, EvalRun, EvalStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PromptOption:
    """One way to prompt the candidate."""

    label: str
    variants: bool
    prompt: str | None = None
    """A .prompty file relative to the folder, given to every family."""


@dataclass(frozen=True, slots=True)
class GateOutcome:
    metric: str
    name: str
    passed: bool
    detail: str
    value: float | None = None
    low: float | None = None
    high: float | None = None
    baseline: float | None = None
    delta: float | None = None
    delta_low: float | None = None
    delta_high: float | None = None
    verdict: str | None = None


def describe(gate: OfflineGate) -> str:
    parts = []
    if gate.tolerance is not None:
        parts.append(f"no worse than current - {gate.tolerance:g}")
    if gate.min is not None:
        parts.append(f">= {gate.min:g}")
    if gate.max is not None:
        parts.append(f"<= {gate.max:g}")
    return f"{gate.metric} {' and '.join(parts)}"


def unknown_gate_metrics(gates: Sequence[OfflineGate]) -> list[tuple[int, str]]:
    """(index, name) of gates naming no eval metric."""
    return [
        (i, g.metric)
        for i, g in enumerate(gates)
        if g.metric != PASS and metric_named(g.metric) is None
    ]


def prompt_options(
    definition: CopilotDefinition,
    folder: Path,
    family: str,
    mode: str,
    explicit: str | None = None,
) -> list[PromptOption]:
    """The candidate's prompts to try, the runtime's own choice first."""
    if explicit is not None:
        return [PromptOption(f"--variant {explicit}", False, explicit)]
    own = family_file(definition, folder, family)
    options: list[PromptOption] = []
    if own is not None:
        options.append(PromptOption(f"{family} variant ({own})", True))
    if mode == "none":
        return options or [PromptOption("default instructions", True)]
    options.append(PromptOption("default instructions", False))
    if mode == "all":
        for path in _variant_files(definition, folder):
            if path != own:
                options.append(PromptOption(f"variant {path}", False, path))
    return [o for o in options if _loads(folder, o)]


def family_file(definition: CopilotDefinition, folder: Path, family: str) -> str | None:
    """The variant file the runtime gives `family`, when it is not the base."""
    explicit = definition.model.variants.get(family)
    if explicit:
        return explicit
    base = definition.instructions_file
    if base is None:
        return None
    found = variant_path(folder / base, family)
    return None if found == folder / base else str(found.relative_to(folder))


def _variant_files(definition: CopilotDefinition, folder: Path) -> list[str]:
    files = list(dict.fromkeys(definition.model.variants.values()))
    base = definition.instructions_file
    if base is not None:
        stem = Path(base).name.removesuffix(".prompty")
        for path in sorted((folder / base).parent.glob(f"{stem}.*.prompty")):
            files.append(str(path.relative_to(folder)))
    return list(dict.fromkeys(files))


def _loads(folder: Path, option: PromptOption) -> bool:
    if option.prompt is None:
        return True
    try:
        load_prompty(folder / option.prompt)
    except (PilothouseError, OSError) as exc:
        log.warning("prompt %s left out: it does not load: %s", option.prompt, exc)
        return False
    return True


def arms_for(current: str, candidate: str, options: Sequence[PromptOption]) -> list[Arm]:
    arms = [Arm(1, f"current {current}", current, True)]
    for option in options:
        label = f"candidate {candidate} ({option.label})"
        arms.append(Arm(len(arms) + 1, label, candidate, option.variants, option.prompt))
    return arms


def check_gates(
    store: EvalStore, run_id: str, gates: Sequence[OfflineGate]
) -> list[dict[str, Any]]:
    """Every candidate arm of the run (arm 1 is the current model) against the gates:
    per arm, its gates and whether all hold. Sorted best first: passing arms, then by
    the gates' metrics (in each one's better direction), then the order tried."""
    summary = summarize(store, run_id)
    current = summary.arms[0]
    results = []
    for arm in summary.arms[1:]:
        outcomes = [_check(store, summary.run, current, arm, g) for g in gates]
        results.append(
            {
                "arm": arm.arm.number,
                "label": arm.arm.label,
                "variants": arm.arm.variants,
                "prompt": arm.arm.prompt,
                "counts": arm.counts,
                "passed": all(o.passed for o in outcomes),
                "gates": [asdict(o) for o in outcomes],
            }
        )

    def rank(entry: dict[str, Any]) -> tuple[Any, ...]:
        keys: list[float] = []
        for gate, outcome in zip(gates, entry["gates"], strict=True):
            plugin = metric_named(gate.metric)
            sign = -1.0 if plugin is not None and plugin.direction == "lower" else 1.0
            value = outcome["value"]
            keys.append(-(sign * value) if value is not None else float("inf"))
        passed = sum(1 for o in entry["gates"] if o["passed"])
        return (not entry["passed"], -passed, *keys, entry["arm"])

    return sorted(results, key=rank)


def _check(
    store: EvalStore, run: EvalRun, current: ArmSummary, arm: ArmSummary, gate: OfflineGate
) -> GateOutcome:
    name = describe(gate)
    errors = arm.counts.get("error", 0)
    if errors:
        return GateOutcome(
            gate.metric, name, False, f"{errors} case(s) errored: a gate cannot pass on them"
        )
    metric = arm.metric(gate.metric)
    if metric is None or metric.interval is None:
        return GateOutcome(gate.metric, name, False, f"no case was scored on {gate.metric}")
    interval = metric.interval

    def found(passed: bool, detail: str) -> GateOutcome:
        return GateOutcome(
            gate.metric, name, passed, detail, interval.mean, interval.low, interval.high
        )

    shown = f"{interval.mean:.3g} [{interval.low:.3g}, {interval.high:.3g}] (n={interval.n})"
    if gate.min is not None and interval.mean < gate.min:
        return found(False, f"{shown} is below {gate.min:g}")
    if gate.max is not None and interval.mean > gate.max:
        return found(False, f"{shown} is above {gate.max:g}")
    if gate.tolerance is None:
        return found(True, shown)
    compared = compare(store, Side(run, current.arm), Side(run, arm.arm))
    pair = compared.metric(gate.metric, metric.judge)
    if pair is None or pair.result is None:
        return found(False, f"no case scored on {gate.metric} by both models")
    paired = pair.result
    delta = paired.delta
    higher = pair.direction == "higher"
    ok = delta.mean >= -gate.tolerance if higher else delta.mean <= gate.tolerance
    detail = (
        f"{paired.mean_b:.3g} vs current {paired.mean_a:.3g}: delta {delta.mean:+.3g} "
        f"[{delta.low:+.3g}, {delta.high:+.3g}] ({paired.verdict}, n={paired.n}), "
        f"tolerance {gate.tolerance:g}"
    )
    return GateOutcome(
        gate.metric,
        name,
        ok,
        detail,
        interval.mean,
        interval.low,
        interval.high,
        baseline=paired.mean_a,
        delta=delta.mean,
        delta_low=delta.low,
        delta_high=delta.high,
        verdict=paired.verdict,
    )


def offline_policy_plan(policy: OfflinePolicy) -> dict[str, Any]:
    """The parts of the policy the eval plan takes."""
    return {
        "suites": tuple(policy.suites),
        "cases": tuple(policy.cases),
        "concurrency": policy.concurrency,
    }
