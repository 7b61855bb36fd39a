"""Two arms (of one run or two) on the same cases: per metric, A and B, the paired
difference with its interval and a verdict; and the cases that regressed or improved,
with both answers."""

from __future__ import annotations

from dataclasses import dataclass, replace

from pilothouse.errors import ConfigError
from pilothouse.pipeline.metrics import PASS, metric_named, order_key
from pilothouse.pipeline.stats import Paired, paired
from pilothouse.pipeline.summary import CaseKey, case_means, per_case
from pilothouse.storage.evals import Arm, CaseRow, EvalRun, EvalStore


@dataclass(frozen=True, slots=True)
class Side:
    run: EvalRun
    arm: Arm

    @property
    def name(self) -> str:
        return f"{self.run.run_id}@{self.arm.number} {self.arm.label}"


@dataclass(frozen=True, slots=True)
class MetricComparison:
    metric: str
    judge: str
    direction: str
    result: Paired | None
    """None when no case has a score on both sides."""

    @property
    def name(self) -> str:
        return f"{self.metric} [{self.judge}]" if self.judge else self.metric


@dataclass(frozen=True, slots=True)
class CaseChange:
    suite: str
    case_id: str
    question: str
    a: CaseRow
    b: CaseRow


@dataclass(frozen=True, slots=True)
class Comparison:
    a: Side
    b: Side
    metrics: tuple[MetricComparison, ...]
    regressed: tuple[CaseChange, ...]
    improved: tuple[CaseChange, ...]
    only_a: int = 0
    """Cases scored on one side only (errors, or a different suite)."""
    only_b: int = 0

    def metric(self, name: str, judge: str = "") -> MetricComparison | None:
        return next((m for m in self.metrics if m.metric == name and m.judge == judge), None)


def parse_side(store: EvalStore, spec: str) -> tuple[EvalRun, str | None]:
    """`RUN_ID` or `RUN_ID@ARM` (arm number, label or model id)."""
    run_id, _, arm = spec.partition("@")
    return store.get_run(run_id), arm or None


def sides(store: EvalStore, first: str, second: str | None) -> tuple[Side, Side]:
    """The two sides of `eval compare A [B]`: two runs (each with one arm, or an arm
    named with @), or one run with two arms."""
    run_a, arm_a = parse_side(store, first)
    if second is None:
        if arm_a is not None or len(run_a.arms) != 2:
            raise ConfigError(
                f"eval run {run_a.run_id} has {len(run_a.arms)} arm(s); give two runs, or "
                "RUN@ARM for each side (arms: "
                + ", ".join(f"{a.number}: {a.label}" for a in run_a.arms)
                + ")"
            )
        return Side(run_a, run_a.arms[0]), Side(run_a, run_a.arms[1])
    run_b, arm_b = parse_side(store, second)
    return Side(run_a, _one_arm(run_a, arm_a)), Side(run_b, _one_arm(run_b, arm_b))


def _one_arm(run: EvalRun, selector: str | None) -> Arm:
    if selector is not None:
        return run.arm(selector)
    if len(run.arms) != 1:
        arms = ", ".join(f"{a.number}: {a.label}" for a in run.arms)
        raise ConfigError(
            f"eval run {run.run_id} has {len(run.arms)} arms ({arms}); name one as "
            f"{run.run_id}@NUMBER"
        )
    return run.arms[0]


def _values(store: EvalStore, side: Side, metric: str, judge: str) -> dict[CaseKey, float]:
    rows = (r for r in store.scores(side.run.run_id, side.arm.number, metric) if r[4] == judge)
    values, _ = per_case(rows)
    return case_means(values)


def compare(store: EvalStore, a: Side, b: Side) -> Comparison:
    pairs = set(store.metrics_of(a.run.run_id, a.arm.number)) & set(
        store.metrics_of(b.run.run_id, b.arm.number)
    )
    metrics = []
    for name, judge in sorted(pairs, key=lambda p: (order_key(p[0]), p[1])):
        plugin = metric_named(name)
        higher = plugin is None or plugin.direction == "higher"
        left, right = _values(store, a, name, judge), _values(store, b, name, judge)
        common = sorted(set(left) & set(right))
        result = paired(
            [left[k] for k in common], [right[k] for k in common], higher_is_better=higher
        )
        metrics.append(MetricComparison(name, judge, "higher" if higher else "lower", result))
    regressed, improved, only_a, only_b = _changes(store, a, b)
    return Comparison(a, b, tuple(metrics), regressed, improved, only_a, only_b)


def _changes(
    store: EvalStore, a: Side, b: Side
) -> tuple[tuple[CaseChange, ...], tuple[CaseChange, ...], int, int]:
    left = _values(store, a, PASS, "")
    right = _values(store, b, PASS, "")
    down = sorted(k for k in set(left) & set(right) if right[k] < left[k])
    up = sorted(k for k in set(left) & set(right) if right[k] > left[k])
    rows_a = _first_rows(store, a, set(down) | set(up))
    rows_b = _first_rows(store, b, set(down) | set(up))

    def change(key: CaseKey) -> CaseChange:
        return CaseChange(key[0], key[1], rows_a[key].question, rows_a[key], rows_b[key])

    return (
        tuple(change(k) for k in down),
        tuple(change(k) for k in up),
        len(set(left) - set(right)),
        len(set(right) - set(left)),
    )


def _first_rows(store: EvalStore, side: Side, keys: set[CaseKey]) -> dict[CaseKey, CaseRow]:
    """The first repeat of each case in `keys`, with its scores."""
    found: dict[CaseKey, CaseRow] = {}
    if not keys:
        return found
    for row in store.cases(side.run.run_id, side.arm.number):
        key = (row.suite, row.case_id)
        if key in keys and key not in found:
            scores = store.case_scores(
                side.run.run_id, side.arm.number, row.suite, row.case_id, row.rep
            )
            found[key] = replace(row, scores=tuple(scores))
    return found
