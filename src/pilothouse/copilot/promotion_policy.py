"""copilot.yaml `promotion:`: how a copilot moves to another model (docs/promotion.md).

Offline gates on the copilot's eval suites (candidate against the current model, and
absolute minimums), then shadow traffic (a sample of live requests mirrored to the
candidate, scored online), then canary steps (a sticky share of conversations answered
by the candidate, watched by guards), then promotion; a breach rolls back or holds the
promotion for a person. Every field has a default, so `promotion:` may be left out.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pilothouse.util.suggest import did_you_mean

ONLINE_METRICS: dict[str, tuple[str, str]] = {
    "error_rate": ("lower", "the share of requests the candidate failed to answer"),
    "latency_s": ("lower", "seconds to the whole answer"),
    "groundedness": ("higher", "a judge: every claim is supported by the retrieved passages"),
    "citations": ("higher", "the answer cites a retrieved passage with [n] (where passages came)"),
    "tool_validity": ("higher", "the share of tool calls naming a known tool with valid arguments"),
    "refusal": ("lower", "the answer says it cannot answer (the knowledge does not cover it)"),
    "agreement": ("higher", "a judge: the candidate's answer says what the current model's says"),
    "similarity": ("higher", "cosine of the embeddings of the candidate's and current answers"),
}
"""Online metric -> (better direction, what it measures). Scored without a reference."""
_MODEL_ID = re.compile(r"^[A-Za-z0-9_.-]+:.+$")
PAIRED_ONLY = frozenset({"agreement", "similarity"})
"""Metrics that need the current model's answer to the same request: shadow only."""
Stat = Literal["mean", "p50", "p95"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OfflineGate(_Strict):
    """A gate on one eval metric: no worse than the current model within `tolerance`,
    and/or an absolute `min` / `max` on the candidate's mean."""

    metric: str = Field(description="an eval metric (docs/evals.md), e.g. pass, sources")
    tolerance: float | None = Field(
        default=None,
        ge=0,
        description="the candidate's mean may be at most this much worse than the current "
        "model's, on the same cases",
    )
    min: float | None = Field(default=None, description="the candidate's mean must be at least")
    max: float | None = Field(default=None, description="the candidate's mean must be at most")

    @model_validator(mode="after")
    def _something_to_hold(self) -> OfflineGate:
        if self.tolerance is None and self.min is None and self.max is None:
            raise ValueError("a gate needs tolerance (no worse than current), min or max")
        return self


class OnlineRule(_Strict):
    """A threshold on an online metric: an absolute `min` / `max`, and/or no worse than
    the current model within `tolerance` (on the same requests in shadow; on the
    requests the current model answered in the same canary step)."""

    metric: str = Field(description=", ".join(ONLINE_METRICS))
    stat: Stat = Field(default="mean", description="mean, or p50/p95 (a percentile, for latency_s)")
    min: float | None = None
    max: float | None = None
    tolerance: float | None = Field(
        default=None, ge=0, description="at most this much worse than the current model"
    )

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in ONLINE_METRICS:
            raise ValueError(
                f"unknown online metric {value!r}{did_you_mean(value, ONLINE_METRICS)}; "
                f"known: {', '.join(ONLINE_METRICS)}"
            )
        return value

    @model_validator(mode="after")
    def _well_formed(self) -> OnlineRule:
        if self.min is None and self.max is None and self.tolerance is None:
            raise ValueError("a threshold needs min, max or tolerance (no worse than current)")
        if self.stat != "mean" and self.metric != "latency_s":
            raise ValueError(f"stat {self.stat} applies to latency_s only; use mean")
        return self

    @property
    def direction(self) -> str:
        return ONLINE_METRICS[self.metric][0]


class CanaryGuard(OnlineRule):
    """A threshold watched during canary steps (no paired answer there)."""

    @field_validator("metric")
    @classmethod
    def _unpaired(cls, value: str) -> str:
        if value in PAIRED_ONLY:
            raise ValueError(
                f"{value} compares two answers to one request, which only shadow has; "
                "use it in shadow.thresholds"
            )
        return value


class OfflinePolicy(_Strict):
    suites: list[str] = Field(
        default_factory=list, description="suite names to run; empty: every suite"
    )
    cases: list[str] = Field(default_factory=list, description="case ids; empty: every case")
    variants: Literal["family", "all", "none"] = Field(
        default="family",
        description="candidate prompts tried: family (its family's variant and the default "
        "instructions), all (every variant file and the default), none (what the runtime "
        "would pick)",
    )
    concurrency: int = Field(default=2, ge=1, le=64, description="cases at once")
    gates: list[OfflineGate] = Field(
        default_factory=lambda: [OfflineGate(metric="pass", tolerance=0.05)],
        description="every gate must hold for the candidate",
    )


class ShadowPolicy(_Strict):
    sample: float = Field(
        default=0.25, gt=0, le=1, description="share of live requests mirrored to the candidate"
    )
    min_requests: int = Field(
        default=30, ge=1, description="mirrored answers scored before the stage is decided"
    )
    max_hours: float = Field(
        default=72, gt=0, description="not enough scored answers by then: a breach"
    )
    concurrency: int = Field(
        default=1, ge=1, le=64, description="mirrored requests the candidate answers at once"
    )
    queue: int = Field(
        default=32, ge=1, description="mirrored requests waiting at most; more are skipped"
    )
    thresholds: list[OnlineRule] = Field(
        default_factory=lambda: [OnlineRule(metric="error_rate", max=0.05)]
    )


class CanaryPolicy(_Strict):
    steps: list[float] = Field(
        default_factory=lambda: [0.05, 0.25, 0.5],
        min_length=1,
        description="shares of new conversations answered by the candidate, step by step",
    )
    min_requests: int = Field(
        default=30, ge=1, description="requests the candidate answers in a step before the next"
    )
    guard_after: int = Field(
        default=5, ge=1, description="guards are checked once the step has this many requests"
    )
    max_hours: float = Field(
        default=72, gt=0, description="a step without min_requests by then: a breach"
    )
    guards: list[CanaryGuard] = Field(
        default_factory=lambda: [CanaryGuard(metric="error_rate", max=0.05)]
    )

    @field_validator("steps")
    @classmethod
    def _increasing_shares(cls, value: list[float]) -> list[float]:
        for index, share in enumerate(value):
            if not 0 < share <= 1:
                raise ValueError(f"step {index} is {share}: a share between 0 and 1 (0.05 is 5%)")
            if index and share <= value[index - 1]:
                raise ValueError("the steps must grow: each share larger than the one before")
        return value

    @model_validator(mode="after")
    def _a_baseline_to_compare(self) -> CanaryPolicy:
        compared = [str(i) for i, g in enumerate(self.guards) if g.tolerance is not None]
        if compared and self.steps[-1] >= 1:
            raise ValueError(
                f"steps: a step of 100% leaves no conversation on the current model for guards "
                f"{', '.join(compared)} (tolerance) to compare with; end at a share below 1"
            )
        return self


class PromotionPolicy(_Strict):
    """`promotion:` in copilot.yaml."""

    offline: OfflinePolicy = Field(default_factory=OfflinePolicy)
    shadow: ShadowPolicy = Field(default_factory=ShadowPolicy)
    canary: CanaryPolicy = Field(default_factory=CanaryPolicy)
    judge: str | None = Field(
        default=None,
        description="model id of the online judge (groundedness, agreement); default: the "
        "first of evals.judges; none: judged metrics are not scored",
    )
    on_breach: Literal["rollback", "hold"] = Field(
        default="rollback",
        description="a failed gate, threshold or guard: roll back at once, or hold (no "
        "candidate traffic) until a person approves or aborts",
    )
    approve_promote: bool = Field(
        default=False,
        description="after the last canary step, wait for a person to approve before "
        "copilot.yaml is changed",
    )

    @field_validator("judge")
    @classmethod
    def _judge_is_an_id(cls, value: str | None) -> str | None:
        if value is not None and value != "none" and not _MODEL_ID.match(value):
            raise ValueError(f"{value!r} is not a model id like local:qwen2.5-coder-1.5b (or none)")
        return value
