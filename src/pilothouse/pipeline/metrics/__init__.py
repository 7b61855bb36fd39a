"""Eval metrics: the `Metric` interface, the `metrics` plugin registry, the built-ins
(checks, citations, judged, similarity, usage). See docs/evals.md."""

from pilothouse.pipeline.metrics.base import (
    CaseContext,
    Direction,
    Metric,
    MetricKind,
    Score,
    Services,
    scores_of,
)
from pilothouse.pipeline.metrics.registry import METRICS, PASS, all_metrics, metric_named, order_key

__all__ = [
    "METRICS",
    "PASS",
    "CaseContext",
    "Direction",
    "Metric",
    "MetricKind",
    "Score",
    "Services",
    "all_metrics",
    "metric_named",
    "order_key",
    "scores_of",
]
