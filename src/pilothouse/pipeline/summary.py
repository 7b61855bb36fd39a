"""A stored run's figures: per arm, per metric (and judge), the mean over cases with a
bootstrap 95% interval, how many cases it applied to, how many were unjudged, the
run-to-run noise when cases were repeated, and the judges' agreement."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from pilothouse.pipeline.metrics import PASS, metric_named, order_key
from pilothouse.pipeline.stats import Interval, agreement, mean_interval
from pilothouse.storage.evals import Arm, EvalRun, EvalStore

CaseKey = tuple[str, str]
"""(suite, case id)."""


@dataclass(frozen=True, slots=True)
class MetricSummary:
    metric: str
    judge: str
    interval: Interval | None
    """Over cases (repeats averaged first); None when no case was scored."""
    unjudged: int = 0
    noise: float | None = None
    """Repeated cases: the mean of each case's standard deviation across repeats."""
    direction: str = "higher"
    kind: str = "check"
    unit: str = ""

    @property
    def name(self) -> str:
        return f"{self.metric} [{self.judge}]" if self.judge else self.metric


@dataclass(frozen=True, slots=True)
class Agreement:
    metric: str
    judges: tuple[str, str]
    cases: int
    share: float
    kappa: float | None


@dataclass(frozen=True, slots=True)
class ArmSummary:
    arm: Arm
    counts: dict[str, int]
    metrics: tuple[MetricSummary, ...]
    agreements: tuple[Agreement, ...] = ()

    def metric(self, name: str, judge: str | None = None) -> MetricSummary | None:
        for item in self.metrics:
            if item.metric == name and (judge is None or item.judge == judge):
                return item
        return None


@dataclass(frozen=True, slots=True)
class RunSummary:
    run: EvalRun
    arms: tuple[ArmSummary, ...] = field(default_factory=tuple)


def per_case(
    rows: Iterable[tuple[str, str, int, str, str, float | None, str]],
) -> tuple[dict[CaseKey, list[float]], int]:
    """Scored values grouped by case (one per repeat), and the unjudged count."""
    values: dict[CaseKey, list[float]] = defaultdict(list)
    unjudged = 0
    for suite, case_id, _rep, _metric, _judge, value, _detail in rows:
        if value is None:
            unjudged += 1
        else:
            values[(suite, case_id)].append(float(value))
    return values, unjudged


def case_means(values: dict[CaseKey, list[float]]) -> dict[CaseKey, float]:
    return {key: float(np.mean(v)) for key, v in values.items()}


def summarize_arm(store: EvalStore, run: EvalRun, arm: Arm) -> ArmSummary:
    metrics = []
    judged: dict[str, dict[str, dict[CaseKey, float]]] = defaultdict(dict)
    pairs = sorted(store.metrics_of(run.run_id, arm.number), key=lambda p: (order_key(p[0]), p[1]))
    for name, judge in pairs:
        values, unjudged = per_case(
            r for r in store.scores(run.run_id, arm.number, name) if r[4] == judge
        )
        means = case_means(values)
        repeated = [float(np.std(v)) for v in values.values() if len(v) > 1]
        plugin = metric_named(name)
        metrics.append(
            MetricSummary(
                metric=name,
                judge=judge,
                interval=mean_interval(list(means.values())),
                unjudged=unjudged,
                noise=float(np.mean(repeated)) if repeated else None,
                direction=plugin.direction if plugin else "higher",
                kind=plugin.kind if plugin else ("check" if name == PASS else "score"),
                unit=plugin.unit if plugin else "",
            )
        )
        if judge:
            judged[name][judge] = means
    agreements = []
    for name, by_judge in judged.items():
        if len(by_judge) == 2:
            (first, a), (second, b) = sorted(by_judge.items())
            common = sorted(set(a) & set(b))
            found = agreement([a[k] for k in common], [b[k] for k in common])
            if found is not None:
                agreements.append(Agreement(name, (first, second), len(common), *found))
    return ArmSummary(arm, store.counts(run.run_id, arm.number), tuple(metrics), tuple(agreements))


def summarize(store: EvalStore, run_id: str) -> RunSummary:
    run = store.get_run(run_id)
    return RunSummary(run, tuple(summarize_arm(store, run, arm) for arm in run.arms))
