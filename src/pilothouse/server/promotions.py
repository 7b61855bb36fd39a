"""Promotions on a running server (docs/promotion.md): the server only routes traffic
to what the pipeline decides.

`ServedPromotions` watches the promotion store for the copilots this server serves
(at start-up, then every `poll_s` seconds: a promotion started, approved or aborted by
the CLI or another server is picked up) and keeps a `LivePromotion` for each one in
shadow or canary. For every request to such a copilot, `route` says which copilot
answers (the candidate for a canary conversation) and how the run is linked; the
answer's events pass through `Routed.follow`, which hands the finished answer to the
promotion (to mirror or score, off the response path). A promotion that ends is
detached; a promoted one has its copilot opened again from its edited folder.

Promotions started through the management API run their offline stage here, in the
background; a restarted server resumes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from pilothouse.copilot import Copilot
from pilothouse.copilot.events import (
    Answer,
    Retrieved,
    RunEvent,
    RunFailed,
    RunFinished,
    RunStarted,
)
from pilothouse.models.openai_chat.response import content_text
from pilothouse.pipeline.promotion.controller import ModelFactory, Promotions
from pilothouse.pipeline.promotion.flow import follow_promoted
from pilothouse.pipeline.promotion.live import LivePromotion, Route
from pilothouse.pipeline.promotion.online import Observation
from pilothouse.server.auth import Principal
from pilothouse.server.context import ServerContext
from pilothouse.server.openai.request import EXTENSION
from pilothouse.storage.evals import EvalStore
from pilothouse.storage.promotion_records import PromotionRecord, PromotionStore, promotion_store

log = logging.getLogger(__name__)

POLL_S = 2.0
API_STARTER = "api:"
"""`started_by` of promotions started through the management API (`api:<key id>`):
their offline stage runs on the server."""


@dataclass
class Routed:
    """One request under a promotion: who answers, and what the promotion learns."""

    live: LivePromotion
    route: Route
    question: str
    candidate: Copilot | None
    """The candidate copilot, held for this request, when it answers."""

    def copilot(self, current: Copilot) -> Copilot:
        return self.candidate or current

    @property
    def attributes(self) -> dict[str, Any]:
        return self.route.attributes

    async def follow(self, events: AsyncIterator[RunEvent]) -> AsyncGenerator[RunEvent, None]:
        """Pass the run's events on; when its answer is out, hand it to the promotion."""
        started = time.perf_counter()
        passages: tuple[Any, ...] = ()
        answer: Answer | None = None
        took = 0.0
        route = self.route
        try:
            async for event in events:
                if isinstance(event, RunStarted) and route.stage == "canary" and route.role:
                    # Stored before the answer goes out: the conversation's next turn may
                    # come to another server (or this one restarted).
                    await self.live.sticky.keep(conversation_key(event.conversation_id), route.arm)
                elif isinstance(event, Retrieved) and not passages:
                    passages = event.passages
                elif isinstance(event, RunFinished | RunFailed):
                    answer, took = event.answer, time.perf_counter() - started
                yield event
        finally:
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]
            if answer is not None:
                self._answered(answer, passages, took)

    def _answered(self, answer: Answer, passages: tuple[Any, ...], took: float) -> None:
        if answer.status == "awaiting_approval":
            return  # no answer yet: the run the user's decision resumes gives it
        route = self.route
        failed = answer.status == "failed"
        observed = Observation(
            question=self.question,
            text=answer.text,
            error=(answer.error or "the run failed") if failed else None,
            latency_s=took,
            passages=passages,
            citations=answer.citations,
            tool_calls=answer.tool_calls,
            run_id=answer.run_id,
            conversation_id=answer.conversation_id,
        )
        self.live.answered(route, self.question, observed)

    async def release(self) -> None:
        if self.candidate is not None:
            await self.live.release()


def conversation_key(conversation_id: str) -> str:
    return f"c:{conversation_id}"


def sticky_key(data: Mapping[str, Any], principal: Principal) -> tuple[str | None, bool]:
    """The request's conversation as a sticky key, and whether it starts with this
    request: a stored conversation by its id; one the client keeps (resending its
    messages) by its key, its end user (OpenAI's `user` field) and first question."""
    ext = data.get(EXTENSION) or {}
    conversation = ext.get("conversation_id") if isinstance(ext, dict) else None
    if isinstance(conversation, str) and conversation:
        return conversation_key(conversation), False
    return kept_key(data, principal)


def kept_key(data: Mapping[str, Any], principal: Principal) -> tuple[str | None, bool]:
    """The sticky key of a conversation the client keeps, and whether it starts here."""
    messages = [m for m in data.get("messages") or [] if isinstance(m, dict)]
    users = [m for m in messages if m.get("role") == "user"]
    if not users:
        return None, False
    first = content_text(users[0].get("content"))
    user = data.get("user")
    who = f"{principal.key_id or ''}\0{user if isinstance(user, str) else ''}"
    digest = hashlib.sha256(f"{who}\0{first}".encode()).hexdigest()[:32]
    fresh = len(users) == 1 and not any(m.get("role") == "assistant" for m in messages)
    return f"m:{digest}", fresh


class ServedPromotions:
    def __init__(
        self,
        context: ServerContext,
        *,
        model_factory: ModelFactory | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        self.context = context
        settings = context.settings
        self.promotions = Promotions(
            settings,
            promotion_store(settings),
            EvalStore.for_settings(settings),
            model_factory=model_factory,
        )
        self.poll_s = poll_s
        self._live: dict[str, LivePromotion] = {}
        self._offline: dict[str, asyncio.Task[Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._lock = asyncio.Lock()
        self._loop: asyncio.Task[None] | None = None

    @property
    def store(self) -> PromotionStore:
        return self.promotions.store

    # --- the request path ---------------------------------------------------------------

    def in_canary(self, copilot: str) -> bool:
        live = self._live.get(copilot)
        return live is not None and live.live and live.record.stage == "canary"

    async def route(
        self, copilot: Copilot, data: Mapping[str, Any], principal: Principal, *, new: bool = False
    ) -> Routed | None:
        """How a request to `copilot` is answered under its promotion (None: no
        promotion is live for it). `new`: the request's conversation (its
        `pilothouse.conversation_id`) was made for it, so it starts here; the
        conversation its client may keep instead (resending the messages) is kept on
        the same model."""
        live = self._live.get(copilot.name)
        if live is None or not live.live:
            return None
        ext = data.get(EXTENSION) or {}
        run_id = ext.get("run_id") if isinstance(ext, dict) else None
        messages = data.get("messages") or []
        question = content_text(messages[-1].get("content")) if messages else ""
        if isinstance(ext, dict) and ("approve" in ext or "deny" in ext):
            paused = await copilot.paused.get(run_id) if isinstance(run_id, str) else None
            key = conversation_key(paused.conversation_id) if paused else None
            fresh = False
            if paused is not None:  # its answer is the paused run's, to its question
                question = paused.question
        else:
            key, fresh = sticky_key(data, principal)
            fresh = fresh or new
        if live.record.stage == "canary" and key and not fresh and not live.sticky.knows(key):
            await live.sticky.recall()  # begun on another server, or before this one started
        route = live.route(key, fresh=fresh)
        if not route.role:
            return None
        kept, _ = kept_key(data, principal) if new else (None, False)
        if kept is not None and route.stage == "canary":
            live.remember(kept, route.arm)
        candidate = live.hold() if route.arm == "candidate" else None
        return Routed(live, route, question, candidate)

    # --- following the store ------------------------------------------------------------

    async def start(self) -> None:
        """Pick up the promotions of the served copilots, then keep following them."""
        await self.poll()
        self._loop = asyncio.create_task(self._follow(), name="promotions")

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self.poll()
            except Exception:
                log.exception("following promotions failed; trying again")

    async def poll(self) -> None:
        async with self._lock:
            names = self.context.copilots.names()
            for name in names:
                record = await asyncio.to_thread(self.store.active, name)
                await self._sync(name, record)
            for name in [n for n in self._live if n not in names]:
                await self._detach(name)

    async def _sync(self, name: str, record: PromotionRecord | None) -> None:
        live = self._live.get(name)
        if live is not None and (
            record is None
            or record.promotion_id != live.record.promotion_id
            or record.stage not in ("shadow", "canary")
        ):
            final = await asyncio.to_thread(self.store.get, live.record.promotion_id)
            await self._ended(name, final)
            live = None
        if record is None:
            return
        if record.stage == "offline":
            self._resume_offline(record)
        elif live is None:
            await self._attach(name, record)
        else:
            await live.decide()  # changes made elsewhere, and the stage's time limit

    async def _attach(self, name: str, record: PromotionRecord) -> None:
        try:
            live = await LivePromotion.open(self.promotions, record, on_change=self._changed)
        except Exception as exc:
            log.error(
                "promotion %s of %s: the candidate %s does not open: %s",
                record.promotion_id,
                name,
                record.candidate,
                exc,
            )
            return
        self._live[name] = live
        log.info(
            "promotion %s of %s: %s (step %d), resumed with its stored counts",
            record.promotion_id,
            name,
            record.stage,
            record.step,
        )

    async def _changed(self, record: PromotionRecord) -> None:
        if record.stage == "done":  # not from inside the worker that decided it
            self._spawn(self._finish(record))

    async def _finish(self, record: PromotionRecord) -> None:
        async with self._lock:
            live = self._live.get(record.copilot)
            if live is not None and live.record.promotion_id == record.promotion_id:
                await self._ended(record.copilot, record)

    async def _ended(self, name: str, final: PromotionRecord) -> None:
        """The promotion is over (or no longer live here): detach it; a promoted copilot
        is opened again from its folder, on its new model."""
        await self._detach(name)
        if final.status != "promoted":
            return
        current = self.context.copilots.get(name)
        if current is None or str(current.folder.resolve()) != final.folder:
            return
        try:  # decided on another replica: this one's copy of the folder is not edited yet
            await asyncio.to_thread(follow_promoted, final)
        except OSError as exc:
            log.error("promoted copilot %s: copilot.yaml could not be edited: %s", name, exc)
        factory = self.promotions.model_factory
        try:
            await self.context.copilots.open(
                final.folder,
                models=factory(final.candidate) if factory else None,
                uploaded=current.uploaded,
            )
        except Exception as exc:
            log.error("promoted copilot %s does not open again: %s", name, exc)
            return
        log.info(
            "copilot %s now answers with %s (promotion %s)",
            name,
            final.candidate,
            final.promotion_id,
        )

    async def _detach(self, name: str) -> None:
        live = self._live.pop(name, None)
        if live is not None:
            await live.aclose()

    # --- the offline stage of promotions started here -------------------------------------

    def start_offline(self, record: PromotionRecord) -> None:
        self._resume_offline(record)

    def _resume_offline(self, record: PromotionRecord) -> None:
        if not (record.started_by or "").startswith(API_STARTER) or record.status != "running":
            return  # the CLI that started it runs it (and resumes it when run again)
        task = self._offline.get(record.promotion_id)
        if task is not None and not task.done():
            return
        self._offline[record.promotion_id] = asyncio.create_task(
            self._run_offline(record), name=f"promotion {record.promotion_id} offline"
        )

    async def _run_offline(self, record: PromotionRecord) -> None:
        try:
            moved = await self.promotions.run_offline(record)
        except Exception as exc:
            log.exception("promotion %s: the offline stage failed", record.promotion_id)
            latest = await asyncio.to_thread(self.store.get, record.promotion_id)
            if latest.active:
                await asyncio.to_thread(
                    self.promotions.flow.breach, latest, f"offline: the eval run failed: {exc}"
                )
            return
        if moved.stage in ("shadow", "canary"):
            async with self._lock:
                await self._sync(moved.copilot, moved)

    async def settle(self) -> None:
        """Wait until the live promotions have scored what they were given (and moved
        on where that decided a stage)."""
        for live in list(self._live.values()):
            await live.settle()
        await asyncio.sleep(0)
        await self.poll()

    # --- closing --------------------------------------------------------------------------

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        tasks = [t for t in (self._loop, *self._offline.values(), *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for name in list(self._live):
            await self._detach(name)
        self.promotions.store.close()
        self.promotions.evals.close()
