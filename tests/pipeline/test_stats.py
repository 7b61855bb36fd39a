"""Bootstrap intervals and paired comparisons: a known difference is detected,
identical runs give no detectable difference, noise is not read as a win."""

from __future__ import annotations

import random

from pilothouse.pipeline.stats import NO_DIFFERENCE, agreement, mcnemar_exact, mean_interval, paired


def test_the_interval_holds_the_mean_and_narrows_with_more_cases() -> None:
    rng = random.Random(1)
    small = [float(rng.random() < 0.7) for _ in range(24)]
    large = [float(rng.random() < 0.7) for _ in range(2400)]
    a, b = mean_interval(small), mean_interval(large)
    assert a is not None and b is not None
    assert a.low <= a.mean <= a.high and b.low <= b.mean <= b.high
    assert (b.high - b.low) < (a.high - a.low) / 5
    assert 0.65 < b.mean < 0.75 and b.n == 2400
    assert mean_interval([]) is None
    assert mean_interval([1.0, 1.0]) == mean_interval([1.0, 1.0])  # seeded: repeatable


def test_identical_runs_give_no_detectable_difference() -> None:
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0] * 5
    result = paired(values, values)
    assert result is not None
    assert result.verdict == NO_DIFFERENCE and result.test == "mcnemar" and result.p_value == 1.0
    latencies = [1.2, 3.4, 0.8, 2.2] * 6
    assert paired(latencies, latencies, higher_is_better=False).verdict == NO_DIFFERENCE  # type: ignore[union-attr]


def test_a_known_difference_is_detected_in_the_right_direction() -> None:
    a = [0.0] * 20 + [1.0] * 20
    b = [1.0] * 40
    better = paired(a, b)
    assert better is not None and better.verdict == "better"
    assert better.improved == 20 and better.regressed == 0 and better.delta.mean == 0.5
    assert paired(b, a).verdict == "worse"  # type: ignore[union-attr]
    fast = [1.0 + 0.01 * i for i in range(30)]
    slow = [x + 0.5 for x in fast]
    assert paired(fast, slow, higher_is_better=False).verdict == "worse"  # type: ignore[union-attr]
    assert paired(slow, fast, higher_is_better=False).verdict == "better"  # type: ignore[union-attr]


def test_a_small_difference_on_few_cases_is_not_a_win() -> None:
    a = [1.0] * 17 + [0.0] * 7  # 71%
    b = [1.0] * 17 + [0.0] * 5 + [1.0] * 2  # 79%: two cases flipped
    result = paired(a, b)
    assert result is not None and result.verdict == NO_DIFFERENCE
    assert result.delta.low < 0 < result.delta.high or result.delta.low == 0
    assert mcnemar_exact(2, 0) == 0.5


def test_judge_agreement() -> None:
    share, kappa = agreement([1.0, 0.0, 1.0, 0.5], [1.0, 0.0, 0.0, 0.5])  # type: ignore[misc]
    assert share == 0.75 and kappa is not None and 0 < kappa < 1
    assert agreement([1.0, 1.0], [1.0, 1.0]) == (1.0, None)
