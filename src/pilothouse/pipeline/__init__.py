"""The pipeline layer: eval runs (suites, metrics, judges, statistics, stored results),
comparisons and reports, gates, capture and replay. See docs/evals.md."""

from pilothouse.pipeline.compare import Comparison, compare, sides
from pilothouse.pipeline.runner import EvalPlan, EvalRunner
from pilothouse.pipeline.store import EvalStore
from pilothouse.pipeline.suite import Suite, SuiteError, load_suite
from pilothouse.pipeline.summary import RunSummary, summarize

__all__ = [
    "Comparison",
    "EvalPlan",
    "EvalRunner",
    "EvalStore",
    "RunSummary",
    "Suite",
    "SuiteError",
    "compare",
    "load_suite",
    "sides",
    "summarize",
]
