"""What a metric is: a named, documented scorer of one eval case.

A metric looks at the case (what the suite expects) and the case's outcome (what the
copilot did) and returns a `Score`, several (one per judge), or None when it does not
apply to the case. Values are floats: 1.0 / 0.0 for pass/fail checks, 0..1 for
scores, and plain quantities (seconds, tokens, dollars) for measures. A judged metric
whose judge gave no usable verdict returns a Score with value None: unjudged, counted
apart, never a pass or a fail.

Metrics are plugins of the family `metrics` (entry points `pilothouse.metrics`); the
built-ins register the same way. See docs/evals.md.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

if TYPE_CHECKING:  # the registry imports this module: keep it light
    from pilothouse.knowledge.embeddings import Embedder
    from pilothouse.pipeline.execute import CaseOutcome
    from pilothouse.pipeline.judge import Judge
    from pilothouse.pipeline.suite import Case, Suite

MetricKind = Literal["check", "rate", "score", "measure"]
Direction = Literal["higher", "lower"]


@dataclass(frozen=True, slots=True)
class Score:
    value: float | None
    """None: the judge gave no usable verdict (unjudged)."""
    detail: str = ""
    judge: str = ""
    """The judge's model id, for judged metrics."""


@dataclass(frozen=True, slots=True)
class Services:
    """What some metrics need besides the case: judges, an embedder."""

    judges: Sequence[Judge] = ()
    embedder: Embedder | None = None


@dataclass(frozen=True, slots=True)
class CaseContext:
    suite: Suite
    case: Case
    outcome: CaseOutcome
    folder: Path
    services: Services = field(default_factory=Services)


class Metric(ABC):
    """Subclass, set the class attributes, implement `score`."""

    name: ClassVar[str]
    description: ClassVar[str]
    """One line for tables and --help; docs/evals.md says more."""
    kind: ClassVar[MetricKind] = "check"
    """check: pass (1) or fail (0), and part of the case's overall pass; rate: 1 or 0,
    reported only; score: 0..1; measure: a quantity (seconds, tokens, dollars)."""
    direction: ClassVar[Direction] = "higher"
    unit: ClassVar[str] = ""

    @abstractmethod
    async def score(self, context: CaseContext) -> Score | Sequence[Score] | None:
        """The case's score(s), or None when the metric does not apply to it."""

    def __repr__(self) -> str:
        return f"<metric {self.name}>"


def scores_of(result: Score | Sequence[Score] | None) -> list[Score]:
    if result is None:
        return []
    return [result] if isinstance(result, Score) else list(result)
