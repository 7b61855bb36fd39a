"""What a promotion store keeps (docs/promotion.md), and the interface every store
implements (`PromotionStore`; SQLite in promotions.py, PostgreSQL in
promotions_postgres.py; `promotion_store(settings)` opens the configured one; the
conformance suite is `pilothouse.testing.conformance.PROMOTION_STORES`).

A promotion moves one copilot from its current model to a candidate through stages:
offline -> shadow -> canary (step by step) -> promote, or ends rolled back. Its record
holds where it is (stage, step, status) and everything needed to resume there after a
restart; its events are the timeline; its samples are the online measurements (one per
scored request and model), from which the counts of a stage are derived; its
assignments are the canary's sticky choices (conversation -> model).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pilothouse.config import Settings
from pilothouse.errors import ConfigError

Stage = Literal["offline", "shadow", "canary", "done"]
Status = Literal["running", "held", "awaiting_approval", "promoted", "rolled_back"]
Arm = Literal["current", "candidate"]
STAGES: tuple[Stage, ...] = ("offline", "shadow", "canary", "done")
ACTIVE: tuple[Status, ...] = ("running", "held", "awaiting_approval")
"""Statuses of a promotion that is not over: at most one per copilot."""


class PromotionConflictError(ConfigError):
    """The copilot has a promotion under way already (one at a time): a request that
    cannot be done as asked, like a configuration error (the CLI exits 2)."""


@dataclass(frozen=True, slots=True)
class PromotionRecord:
    promotion_id: str
    copilot: str
    folder: str
    """The copilot folder (absolute): where copilot.yaml is changed on promotion."""
    current: str
    """The model id the copilot answers with now."""
    candidate: str
    stage: Stage
    status: Status
    step: int = 0
    """The canary step (index into the policy's steps)."""
    created: float = 0.0
    updated: float = 0.0
    stage_started: float = 0.0
    """When the current stage (or canary step) began: its time limit counts from here."""
    prompt: str | None = None
    """The candidate's prompt file (relative to the folder) when one was chosen over the
    runtime's own choice; with `variants` false and no prompt: the base instructions."""
    variants: bool = True
    """Whether the candidate gets its family's prompt variant (the runtime's choice)."""
    policy: dict[str, Any] = field(default_factory=dict)
    """The policy as it was when the promotion started (copilot.yaml `promotion:`)."""
    eval_run: str | None = None
    """The offline stage's eval run (ev-...)."""
    offline: dict[str, Any] = field(default_factory=dict)
    """The offline stage's results: every arm's gates, the prompt chosen."""
    reason: str | None = None
    """Why it is held, or how it ended."""
    report: str | None = None
    """The folder holding report.md and report.html, once written."""
    previous: dict[str, Any] = field(default_factory=dict)
    """What a rollback restores: copilot.yaml's text before promotion changed it."""
    started_by: str | None = None
    """Who started it: an API key id, or `cli`."""

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


@dataclass(frozen=True, slots=True)
class PromotionEvent:
    """One entry of a promotion's timeline."""

    at: float
    stage: str
    step: int
    kind: str
    """started, offline, stage, step, breach, held, approved, aborted, promoted,
    rolled_back, resumed, note."""
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Sample:
    """One request as one model answered it, with its online scores."""

    stage: Stage
    step: int
    arm: Arm
    values: Mapping[str, float | None]
    """Online metric -> value (None: not scored, e.g. an unjudged verdict)."""
    at: float = 0.0
    run_id: str | None = None
    pair: str | None = None
    """Shadow: the user's run both samples of one request share."""
    conversation_id: str | None = None
    error: str | None = None


class PromotionStore(Protocol):
    """Where promotions live. Every method is safe to call from several threads."""

    def create(self, record: PromotionRecord) -> None:
        """Store a new promotion; `PromotionConflictError` when the copilot has an
        active one (checked atomically: two starting at once, one wins)."""
        ...

    def get(self, promotion_id: str) -> PromotionRecord:
        """A promotion by id or an unambiguous prefix (NotFoundError otherwise)."""
        ...

    def active(self, copilot: str) -> PromotionRecord | None:
        """The copilot's promotion under way, if any."""
        ...

    def list_promotions(
        self, *, copilot: str | None = None, limit: int = 20
    ) -> list[PromotionRecord]:
        """Newest first."""
        ...

    def update(
        self,
        promotion_id: str,
        *,
        expect: Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> bool:
        """Change fields of a promotion when its current values match `expect` (e.g.
        `{"stage": "shadow", "status": "running"}`): compare-and-set, so two servers
        never take the same step twice. False when it did not match."""
        ...

    def add_event(self, promotion_id: str, event: PromotionEvent) -> None: ...

    def events(self, promotion_id: str) -> list[PromotionEvent]:
        """The timeline, oldest first."""
        ...

    def add_sample(self, promotion_id: str, sample: Sample) -> None: ...

    def samples(self, promotion_id: str, stage: Stage, step: int | None = None) -> list[Sample]:
        """A stage's samples (one canary step's when `step` is given), oldest first."""
        ...

    def count(self, promotion_id: str, stage: Stage, step: int, arm: Arm) -> int:
        """How many samples of one model a stage (step) has."""
        ...

    def assign(self, promotion_id: str, key: str, arm: Arm) -> Arm:
        """Record that `key` (a conversation) is answered by `arm`, unless it was
        assigned before: the first assignment wins and is returned."""
        ...

    def assignments(self, promotion_id: str) -> dict[str, Arm]: ...

    def close(self) -> None: ...


def promotion_store(settings: Settings) -> PromotionStore:
    """The promotion store of the settings' storage backend (the data directory's
    database, or the PostgreSQL one every replica shares)."""
    from pilothouse.storage.backends import open_store

    store: PromotionStore = open_store(settings, "promotions")
    return store
