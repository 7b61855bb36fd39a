"""Statistics that stop people fooling themselves with small suites.

- `mean_interval`: the mean with a percentile bootstrap 95% interval.
- `paired`: two arms on the same cases: the mean difference (B - A) with a paired
  bootstrap 95% interval; for pass/fail values, McNemar's exact test on the cases that
  changed. The verdict is `better`, `worse` or `no detectable difference`, taking the
  metric's direction into account.

Resampling is seeded, so the same data always gives the same interval, and done in
blocks so memory stays small for large suites.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

RESAMPLES = 2000
CONFIDENCE = 0.95
ALPHA = 0.05
SEED = 20261201
_BLOCK_VALUES = 2_000_000  # indices drawn at once (16 MB of int64)

Verdict = Literal["better", "worse", "no detectable difference"]
NO_DIFFERENCE: Verdict = "no detectable difference"


@dataclass(frozen=True, slots=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True, slots=True)
class Paired:
    n: int
    mean_a: float
    mean_b: float
    delta: Interval
    """B - A."""
    test: Literal["mcnemar", "bootstrap"]
    p_value: float | None
    verdict: Verdict
    improved: int = 0
    """pass/fail: cases failing in A and passing in B."""
    regressed: int = 0


def _bootstrap_means(values: npt.NDArray[np.float64], resamples: int) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(SEED)
    n = len(values)
    block = max(1, _BLOCK_VALUES // max(n, 1))
    means: list[npt.NDArray[np.float64]] = []
    done = 0
    while done < resamples:
        size = min(block, resamples - done)
        picks = rng.integers(0, n, size=(size, n))
        means.append(values[picks].mean(axis=1))
        done += size
    return np.concatenate(means)


def mean_interval(values: Sequence[float], resamples: int = RESAMPLES) -> Interval | None:
    """The mean and its bootstrap 95% interval; None for no values."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return None
    mean = float(data.mean())
    if data.size == 1 or float(data.min()) == float(data.max()):
        return Interval(mean, mean, mean, int(data.size))
    means = _bootstrap_means(data, resamples)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(mean, float(low), float(high), int(data.size))


def mcnemar_exact(improved: int, regressed: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs."""
    n = improved + regressed
    if n == 0:
        return 1.0
    k = min(improved, regressed)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return float(min(1.0, 2 * tail))


def _binary(values: npt.NDArray[np.float64]) -> bool:
    return bool(np.all((values == 0.0) | (values == 1.0)))


def paired(
    a: Sequence[float],
    b: Sequence[float],
    *,
    higher_is_better: bool = True,
    resamples: int = RESAMPLES,
) -> Paired | None:
    """Compare B with A on the same cases (`a[i]` and `b[i]` are one case)."""
    left = np.asarray(a, dtype=np.float64)
    right = np.asarray(b, dtype=np.float64)
    if left.shape != right.shape:
        raise ValueError("paired values must have the same length")
    if left.size == 0:
        return None
    diff = right - left
    delta = mean_interval(diff.tolist(), resamples)
    assert delta is not None
    sign = 1.0 if higher_is_better else -1.0
    if _binary(left) and _binary(right):
        improved = int(np.sum((left == 0) & (right == 1)))
        regressed = int(np.sum((left == 1) & (right == 0)))
        p = mcnemar_exact(improved, regressed)
        verdict: Verdict = NO_DIFFERENCE
        if p < ALPHA:
            verdict = "better" if sign * (improved - regressed) > 0 else "worse"
        return Paired(
            int(left.size),
            float(left.mean()),
            float(right.mean()),
            delta,
            "mcnemar",
            p,
            verdict,
            improved if higher_is_better else regressed,
            regressed if higher_is_better else improved,
        )
    verdict = NO_DIFFERENCE
    if delta.low > 0 or delta.high < 0:
        verdict = "better" if sign * delta.mean > 0 else "worse"
    return Paired(
        int(left.size), float(left.mean()), float(right.mean()), delta, "bootstrap", None, verdict
    )


def agreement(a: Sequence[float], b: Sequence[float]) -> tuple[float, float | None] | None:
    """Two judges on the same cases: the share of equal verdicts, and Cohen's kappa
    (None when chance agreement is total, e.g. both always say yes)."""
    if not a or len(a) != len(b):
        return None
    labels = sorted(set(a) | set(b))
    n = len(a)
    observed = sum(1 for x, y in zip(a, b, strict=True) if x == y) / n
    expected = sum((list(a).count(v) / n) * (list(b).count(v) / n) for v in labels)
    kappa = None if expected >= 1.0 else (observed - expected) / (1 - expected)
    return observed, kappa
