"""Deciding a live stage from its samples: shadow thresholds and canary guards.

A rule holds on the candidate's statistic of a metric (the mean with its bootstrap 95%
interval, or a percentile): `min` / `max` absolutely, `tolerance` against the current
model (shadow: on the same requests, paired; canary: the requests the current model
answered in the same step).

- shadow: decided once `min_requests` mirrored answers are scored (all rules hold:
  pass; one fails: breach); an error rate that can no longer come under its maximum
  breaches at once; past `max_hours` without a decision: breach.
- a canary step: guards are checked from `guard_after` candidate requests on, every
  time (a failed guard: breach at once); at `min_requests` with every guard holding the
  step passes; past `max_hours` without a decision: breach.

A rule that cannot be decided yet (nothing scored on its metric, or no answer of the
current model to compare with) keeps the stage waiting, up to its time limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pilothouse.copilot.promotion_policy import CanaryPolicy, OnlineRule, ShadowPolicy
from pilothouse.pipeline.stats import Interval, mean_interval, paired
from pilothouse.storage.promotion_records import Sample

State = Literal["wait", "pass", "breach"]


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: OnlineRule
    passed: bool | None
    """None: not decidable yet (no value, or no baseline to compare with)."""
    value: float | None
    interval: Interval | None
    baseline: float | None
    n: int
    detail: str

    @property
    def name(self) -> str:
        return describe(self.rule)


@dataclass(frozen=True, slots=True)
class StageVerdict:
    state: State
    reason: str
    results: tuple[RuleResult, ...]
    candidate: int
    """Requests the candidate answered (scored) in the stage or step."""
    current: int


def describe(rule: OnlineRule) -> str:
    stat = "" if rule.stat == "mean" else f" {rule.stat}"
    parts = []
    if rule.min is not None:
        parts.append(f">= {rule.min:g}")
    if rule.max is not None:
        parts.append(f"<= {rule.max:g}")
    if rule.tolerance is not None:
        sign = "-" if rule.direction == "higher" else "+"
        parts.append(f"no worse than current {sign} {rule.tolerance:g}")
    return f"{rule.metric}{stat} {' and '.join(parts)}"


def values_of(samples: Sequence[Sample], metric: str) -> list[float]:
    return [float(v) for s in samples if (v := s.values.get(metric)) is not None]


def statistic(values: Sequence[float], stat: str) -> float:
    if stat == "mean":
        return float(np.mean(values))
    return float(np.percentile(values, 50 if stat == "p50" else 95))


def check_rule(
    rule: OnlineRule,
    candidate: Sequence[Sample],
    current: Sequence[Sample],
    *,
    pair: bool,
) -> RuleResult:
    values = values_of(candidate, rule.metric)
    if not values:
        return RuleResult(rule, None, None, None, None, 0, f"no request scored on {rule.metric}")
    value = statistic(values, rule.stat)
    interval = mean_interval(values) if rule.stat == "mean" else None
    shown = f"{value:.3g}" + (f" [{interval.low:.3g}, {interval.high:.3g}]" if interval else "")
    shown += f" (n={len(values)})"
    if rule.min is not None and value < rule.min:
        return RuleResult(
            rule, False, value, interval, None, len(values), f"{shown} < {rule.min:g}"
        )
    if rule.max is not None and value > rule.max:
        return RuleResult(
            rule, False, value, interval, None, len(values), f"{shown} > {rule.max:g}"
        )
    if rule.tolerance is None:
        return RuleResult(rule, True, value, interval, None, len(values), shown)
    return _against_current(rule, candidate, current, value, interval, shown, pair=pair)


def _against_current(
    rule: OnlineRule,
    candidate: Sequence[Sample],
    current: Sequence[Sample],
    value: float,
    interval: Interval | None,
    shown: str,
    *,
    pair: bool,
) -> RuleResult:
    assert rule.tolerance is not None
    n = len(values_of(candidate, rule.metric))
    higher = rule.direction == "higher"
    if pair:
        mine = {s.pair: s.values.get(rule.metric) for s in candidate if s.pair}
        theirs = {s.pair: s.values.get(rule.metric) for s in current if s.pair}
        keys = [k for k in mine if mine[k] is not None and theirs.get(k) is not None]
        if not keys:
            return RuleResult(
                rule, None, value, interval, None, n, f"{shown}; no paired current answer"
            )
        a = [float(theirs[k]) for k in keys]  # type: ignore[arg-type]
        b = [float(mine[k]) for k in keys]  # type: ignore[arg-type]
        baseline, mine_stat = statistic(a, rule.stat), statistic(b, rule.stat)
        compared = paired(a, b, higher_is_better=higher) if rule.stat == "mean" else None
        note = f" ({compared.verdict}, paired n={compared.n})" if compared else ""
    else:
        base_values = values_of(current, rule.metric)
        if not base_values:
            return RuleResult(
                rule, None, value, interval, None, n, f"{shown}; no current answer to compare"
            )
        baseline, mine_stat, note = statistic(base_values, rule.stat), value, ""
    delta = mine_stat - baseline
    ok = delta >= -rule.tolerance if higher else delta <= rule.tolerance
    detail = (
        f"{shown} vs current {baseline:.3g}: delta {delta:+.3g}{note}, tolerance {rule.tolerance:g}"
    )
    return RuleResult(rule, ok, value, interval, baseline, n, detail)


def check_rules(
    rules: Sequence[OnlineRule],
    candidate: Sequence[Sample],
    current: Sequence[Sample],
    *,
    pair: bool,
) -> tuple[RuleResult, ...]:
    return tuple(check_rule(r, candidate, current, pair=pair) for r in rules)


def _split(samples: Sequence[Sample]) -> tuple[list[Sample], list[Sample]]:
    return (
        [s for s in samples if s.arm == "candidate"],
        [s for s in samples if s.arm == "current"],
    )


def _hopeless_errors(rules: Sequence[OnlineRule], candidate: Sequence[Sample], need: int) -> str:
    """An error-rate maximum that the remaining requests could no longer bring back."""
    errors = sum(1 for s in candidate if s.values.get("error_rate") == 1.0)
    rate = errors / max(need, len(candidate), 1)
    for rule in rules:
        if rule.metric == "error_rate" and rule.max is not None and rate > rule.max:
            return f"{errors} errors: the error rate exceeds {rule.max:g} whatever follows"
    return ""


def _unsettled(results: Sequence[RuleResult], n: int) -> str:
    undecided = [f"{r.name}: {r.detail}" for r in results if r.passed is None]
    return f"{n} requests scored" + (f"; undecided: {'; '.join(undecided)}" if undecided else "")


def decide_shadow(policy: ShadowPolicy, samples: Sequence[Sample], hours: float) -> StageVerdict:
    candidate, current = _split(samples)
    n = len(candidate)
    results = check_rules(policy.thresholds, candidate, current, pair=True)

    def verdict(state: State, reason: str) -> StageVerdict:
        return StageVerdict(state, reason, results, n, len(current))

    hopeless = _hopeless_errors(policy.thresholds, candidate, policy.min_requests)
    if hopeless:
        return verdict("breach", hopeless)
    if n >= policy.min_requests:
        failed = [r for r in results if r.passed is False]
        if failed:
            return verdict("breach", "; ".join(f"{r.name}: {r.detail}" for r in failed))
        undecided = [r for r in results if r.passed is None]
        if not undecided:
            return verdict("pass", f"{n} mirrored answers scored; every threshold holds")
    if hours > policy.max_hours:
        return verdict("breach", f"time limit of {policy.max_hours:g} h: {_unsettled(results, n)}")
    return verdict("wait", f"{n} of {policy.min_requests} mirrored answers scored")


def decide_canary(policy: CanaryPolicy, samples: Sequence[Sample], hours: float) -> StageVerdict:
    candidate, current = _split(samples)
    n = len(candidate)
    results = check_rules(policy.guards, candidate, current, pair=False)

    def verdict(state: State, reason: str) -> StageVerdict:
        return StageVerdict(state, reason, results, n, len(current))

    hopeless = _hopeless_errors(policy.guards, candidate, policy.min_requests)
    if hopeless:
        return verdict("breach", hopeless)
    if n >= policy.guard_after:
        failed = [r for r in results if r.passed is False]
        if failed:
            return verdict("breach", "; ".join(f"{r.name}: {r.detail}" for r in failed))
    undecided = [r for r in results if r.passed is None]
    if n >= policy.min_requests and not undecided:
        return verdict("pass", f"{n} requests answered by the candidate; every guard holds")
    if hours > policy.max_hours:
        return verdict("breach", f"time limit of {policy.max_hours:g} h: {_unsettled(results, n)}")
    if n >= policy.min_requests:
        waiting = "; ".join(f"{r.name}: {r.detail}" for r in undecided)
        return verdict("wait", f"{n} requests answered by the candidate; waiting: {waiting}")
    return verdict("wait", f"{n} of {policy.min_requests} requests answered by the candidate")
