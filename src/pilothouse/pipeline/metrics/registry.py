"""The `metrics` plugin family: entry points in the group `pilothouse.metrics`, each
naming a `Metric` instance. The built-ins are declared the same way (pyproject.toml)."""

from __future__ import annotations

from pilothouse.pipeline.metrics.base import Metric
from pilothouse.plugins import PluginError, Registry

# The order tables show the built-ins in; third-party metrics follow by name.
BUILTIN_ORDER = (
    "answer_includes",
    "answer_matches",
    "answer_schema",
    "sources",
    "tool_calls",
    "tool_restraint",
    "no_answer",
    "earlier_turns",
    "citation_cited",
    "citation_matched",
    "citation_precision",
    "retrieval_hit",
    "model_cited",
    "invented_arguments",
    "blocked_calls",
    "correctness",
    "groundedness",
    "similarity",
    "latency_s",
    "ttft_s",
    "decision_s",
    "input_tokens",
    "output_tokens",
    "cost_usd",
)
PASS = "pass"
"""Not a plugin: the case passed every check it declares (computed by the runner)."""


def as_metric(name: str, obj: object) -> Metric:
    if not isinstance(obj, Metric):
        raise TypeError(f"expected a pilothouse.pipeline.metrics.Metric, got {type(obj).__name__}")
    if obj.name != name:
        raise ValueError(
            f"the entry point is named {name!r} but the metric calls itself {obj.name!r}"
        )
    if name == PASS:
        raise ValueError(f"{PASS!r} is reserved for the case's overall result")
    return obj


METRICS: Registry[Metric] = Registry("metrics", check=as_metric, kind="eval metric")


def order_key(name: str) -> tuple[int, str]:
    if name == PASS:
        return (-1, name)
    return (
        (BUILTIN_ORDER.index(name), name) if name in BUILTIN_ORDER else (len(BUILTIN_ORDER), name)
    )


def all_metrics() -> list[Metric]:
    """Every usable metric, built-ins first in their documented order."""
    found = dict(METRICS.items())
    return [found[name] for name in sorted(found, key=order_key)]


def metric_named(name: str) -> Metric | None:
    """The metric called `name`, or None (unknown, or `pass`)."""
    try:
        return METRICS.find(name)
    except PluginError:
        return None
