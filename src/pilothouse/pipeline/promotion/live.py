"""A promotion live on a server: its shadow and canary stages (docs/promotion.md).

The server asks `route` for every request to the copilot (cheap, no waiting) and tells
`answered` when the answer is out. Everything else happens off the response path, in
this object's workers:

- shadow: a sample of requests (`shadow.sample`) is mirrored to the candidate after the
  current model has answered: the same question with the same earlier turns, in a
  conversation of its own that is deleted afterwards; approval-gated tool calls are
  recorded and denied, never run; a run that outlasts the copilot's `limits.timeout_s`
  is an error. Both answers are scored online and stored as samples. When the queue of
  waiting mirrors is full, a request is not mirrored (counted as skipped).
- canary: a sticky share of conversations is answered by the candidate (`route` says
  which); every answer of the step, either model's, is scored and stored.

After each sample the stage is decided (decide.py) and the promotion moved on, held or
rolled back (flow.py). A restarted server resumes from the store: the stage, the step,
the samples counted, the sticky assignments.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from pilothouse.copilot.conversations import ConversationStore
from pilothouse.copilot.copilot import Copilot
from pilothouse.copilot.promotion_policy import OnlineRule, PromotionPolicy
from pilothouse.pipeline.execute import CaseOutcome, ask_once
from pilothouse.pipeline.promotion.controller import JUDGED, Promotions
from pilothouse.pipeline.promotion.online import Observation, OnlineScorer
from pilothouse.pipeline.promotion.sticky import StickyChoices
from pilothouse.pipeline.promotion.view import canary_verdict, policy_of, shadow_verdict
from pilothouse.storage.promotion_records import Arm, PromotionRecord, Sample, Stage
from pilothouse.tracing import attributes as A
from pilothouse.types import Message

log = logging.getLogger(__name__)

SHADOW_NOTE = "not run: a shadow run records approval-gated calls and never runs them"


@dataclass(frozen=True, slots=True)
class Route:
    """How one request is answered under a promotion."""

    promotion_id: str
    stage: Stage
    step: int
    arm: Arm
    """Who answers the user: the current model or the candidate."""
    role: str
    """The run's role for the promotion (source, canary, control), "" when not linked."""
    mirror: bool = False
    """Shadow: mirror the request to the candidate once answered."""

    @property
    def attributes(self) -> dict[str, Any]:
        if not self.role:
            return {}
        return {A.PROMOTION_ID: self.promotion_id, A.PROMOTION_ROLE: self.role}


async def history_before(
    conversations: ConversationStore, conversation_id: str | None, run_id: str | None
) -> list[Message]:
    """The conversation's messages before the run `run_id` joined it."""
    if conversation_id is None:
        return []
    records = await conversations.records(conversation_id)
    history = []
    for record in records:
        if run_id is not None and record.run_id == run_id:
            break
        history.append(record.message)
    return history


def observation(question: str, outcome: CaseOutcome) -> Observation:
    return Observation(
        question=question,
        text=outcome.text,
        error=outcome.error if outcome.status == "error" else None,
        latency_s=outcome.latency_s,
        passages=outcome.retrieved,
        citations=outcome.citations,
        tool_calls=outcome.tool_calls,
        run_id=outcome.trace_id,
        conversation_id=outcome.conversation_id,
    )


Changed = Callable[[PromotionRecord], Awaitable[None]]


class LivePromotion:
    """One promotion in shadow or canary on one server."""

    def __init__(
        self,
        promotions: Promotions,
        record: PromotionRecord,
        candidate: Copilot,
        scorer: OnlineScorer,
        *,
        on_change: Changed | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.promotions = promotions
        self.store = promotions.store
        self.record = record
        self.candidate = candidate
        self.scorer = scorer
        self.on_change = on_change
        self.rng = rng or random.Random()
        self.skipped = 0
        """Requests not mirrored because the queue was full."""
        policy = policy_of(record)
        self._jobs: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue(
            policy.shadow.queue
        )
        self.sticky = StickyChoices(self.store, record.promotion_id)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._workers = [
            asyncio.create_task(self._work(), name=f"promotion {record.promotion_id} {i}")
            for i in range(max(policy.shadow.concurrency, 1))
        ]
        self._deciding = asyncio.Lock()
        self._users = 0
        self._closed = False

    @classmethod
    async def open(
        cls, promotions: Promotions, record: PromotionRecord, *, on_change: Changed | None = None
    ) -> LivePromotion:
        """Open the candidate copilot (the copilot's folder on the candidate model with
        the prompt the offline stage chose) and start the workers."""
        factory = promotions.model_factory
        candidate = await Copilot.open(
            record.folder,
            settings=promotions.settings,
            model=None if factory else record.candidate,
            models=factory(record.candidate) if factory else None,
            sync_knowledge=False,
            prompt_variants=record.variants,
            prompt=record.prompt,
        )
        try:
            judge = promotions.online_judge(candidate)
        except BaseException:
            await candidate.aclose()
            raise
        embedder = candidate.knowledge.embedder if candidate.knowledge is not None else None
        scorer = OnlineScorer(candidate.toolset, judge, embedder)
        return cls(promotions, record, candidate, scorer, on_change=on_change)

    @property
    def policy(self) -> PromotionPolicy:
        return policy_of(self.record)

    @property
    def live(self) -> bool:
        record = self.record
        return record.status == "running" and record.stage in ("shadow", "canary")

    # --- on the request path ------------------------------------------------------------

    def route(self, key: str | None, *, fresh: bool) -> Route:
        """Who answers a request: `key` names its conversation (sticky in canary), and
        `fresh` says the conversation starts with this request."""
        record = self.record
        base = Route(record.promotion_id, record.stage, record.step, "current", "")
        if not self.live or self._closed:
            return base
        if record.stage == "shadow":
            sample = self.rng.random() < self.policy.shadow.sample
            if not sample:
                return base
            if self._jobs.full():
                self.skipped += 1
                return base
            return Route(record.promotion_id, "shadow", 0, "current", "source", mirror=True)
        arm = self.arm_for(key, fresh=fresh)
        role = "canary" if arm == "candidate" else "control"
        return Route(record.promotion_id, "canary", record.step, arm, role)

    def arm_for(self, key: str | None, *, fresh: bool) -> Arm:
        """The canary's sticky choice for `key`'s conversation (sticky.py)."""
        if key is None:
            return "current"
        share = self.policy.canary.steps[self.record.step]
        arm, chosen = self.sticky.choose(key, fresh=fresh, share=share)
        if chosen:
            self.remember(key, arm)
        return arm

    def remember(self, key: str, arm: Arm) -> None:
        """Keep `key` on `arm` (here now, in the store soon: first writer wins)."""
        if self.sticky.note(key, arm):
            self._spawn(self.sticky.keep(key, arm))

    def hold(self) -> Copilot:
        """The candidate copilot, held for one request (`release` after)."""
        self._users += 1
        return self.candidate

    async def release(self) -> None:
        self._users -= 1
        if self._closed and self._users == 0:
            await self.candidate.aclose()

    # --- after the answer (still cheap: the work is queued) -------------------------------

    def answered(self, route: Route, question: str, observed: Observation) -> None:
        """The user's answer is out: mirror it (shadow) or score it (canary)."""
        if self._closed or (route.role == "source" and not route.mirror):
            return
        job: Callable[[], Awaitable[None]]
        if route.mirror:
            job = partial(self._mirror, route, question, observed)
        elif route.role in ("canary", "control"):
            job = partial(self._score, route, observed)
        else:
            return
        try:
            self._jobs.put_nowait(job)
        except asyncio.QueueFull:
            self.skipped += 1

    # --- the workers --------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            job = await self._jobs.get()
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("promotion %s: a sample failed", self.record.promotion_id)
            finally:
                self._jobs.task_done()

    async def _mirror(self, route: Route, question: str, current: Observation) -> None:
        if not (self.live and self.record.stage == "shadow"):
            return  # decided, held or over meanwhile: no more candidate traffic
        history = await history_before(
            self.candidate.conversations, current.conversation_id, current.run_id
        )
        attributes = {
            A.PROMOTION_ID: route.promotion_id,
            A.PROMOTION_ROLE: "shadow",
            A.PROMOTION_PAIR: current.run_id or "",
        }
        limit = self.candidate.definition.limits.timeout_s
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit):
                outcome = await ask_once(
                    self.candidate,
                    question,
                    history,
                    approve=False,
                    metadata={"promotion": route.promotion_id, "shadow_of": current.run_id},
                    attributes=attributes,
                    note=SHADOW_NOTE,
                )
        except TimeoutError:
            outcome = CaseOutcome.failed(
                f"no answer within {limit:g}s", time.perf_counter() - started
            )
        if outcome.conversation_id is not None:
            with contextlib.suppress(Exception):  # the sample matters more than the cleanup
                await self.candidate.conversations.delete(outcome.conversation_id)
        mirrored = observation(question, outcome)
        compared = _compares_judged(self.policy.shadow.thresholds)
        values = await self.scorer.score(mirrored, current)
        baseline = await self.scorer.score(current, judged=compared)
        pair = current.run_id
        await self._record(route, "candidate", mirrored, values, pair)
        await self._record(route, "current", current, baseline, pair)
        await self.decide()

    async def _score(self, route: Route, observed: Observation) -> None:
        values = await self.scorer.score(observed)
        await self._record(route, route.arm, observed, values, None)
        await self.decide()

    async def _record(
        self,
        route: Route,
        arm: Arm,
        observed: Observation,
        values: dict[str, float | None],
        pair: str | None,
    ) -> None:
        sample = Sample(
            route.stage,
            route.step,
            arm,
            values,
            time.time(),
            observed.run_id,
            pair,
            observed.conversation_id,
            observed.error,
        )
        await asyncio.to_thread(self.store.add_sample, route.promotion_id, sample)

    # --- decisions ------------------------------------------------------------------------

    async def decide(self) -> None:
        """Decide the stage from what is stored; move the promotion when it is decided."""
        async with self._deciding:
            record = await asyncio.to_thread(self.store.get, self.record.promotion_id)
            if record.status == "running" and record.stage in ("shadow", "canary"):
                moved = await asyncio.to_thread(self._decide, record)
                if moved is None:  # undecided, or another server moved it
                    moved = await asyncio.to_thread(self.store.get, record.promotion_id)
                record = moved
            changed = record != self.record
            self.record = record
        if changed and self.on_change is not None:
            await self.on_change(record)

    def _decide(self, record: PromotionRecord) -> PromotionRecord | None:
        now = self.promotions.clock()
        if record.stage == "shadow":
            verdict = shadow_verdict(self.store, record, now)
        else:
            verdict = canary_verdict(self.store, record, record.step, now)
        flow = self.promotions.flow
        if verdict.state == "pass":
            return flow.passed(record, verdict.reason)
        if verdict.state == "breach":
            where = "shadow" if record.stage == "shadow" else f"canary step {record.step + 1}"
            return flow.breach(record, f"{where}: {verdict.reason}")
        return None

    async def settle(self) -> None:
        """Wait until every queued mirror and score is done."""
        await self._jobs.join()

    # --- closing --------------------------------------------------------------------------

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Stop the workers (mirrors in flight are dropped: never half-recorded) and
        close the candidate once no request holds it."""
        if self._closed:
            return
        self._closed = True
        for task in [*self._workers, *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._workers, *self._tasks, return_exceptions=True)
        if self._users == 0:
            await self.candidate.aclose()
        if self.scorer.judge is not None:
            await self.scorer.judge.aclose()


def _compares_judged(rules: Sequence[OnlineRule]) -> bool:
    """Whether the current model's shadow answers need the judge too: a threshold
    compares the candidate with them on a judged metric."""
    return any(r.metric in JUDGED and r.tolerance is not None for r in rules)
