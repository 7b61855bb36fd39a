"""The paused-run suite: what every store of runs paused for approval does (the SQLite
`PausedRunStore`, the PostgreSQL one): a paused run reads back whole, and one decider
only can take it, whichever process (or server replica) it runs in."""

from __future__ import annotations

import asyncio
from typing import Any

from pilothouse.copilot.events import Citation
from pilothouse.copilot.paused_runs import PausedRun, PausedRunStore
from pilothouse.errors import NotFoundError
from pilothouse.testing.conformance.stores import PERSISTENT, StoreSubject
from pilothouse.testing.conformance.suite import Suite, expect
from pilothouse.types import Message, ToolCallPart

PAUSED_RUN_STORES: Suite[StoreSubject[Any]] = Suite(
    "paused-run stores", "runs waiting for an approval decision: stored whole, taken once"
)

Subject = StoreSubject[PausedRunStore]


def paused(run_id: str, *, conversation: str = "c-1", copilot: str = "helpdesk") -> PausedRun:
    call = ToolCallPart("call_1", "reset_password", {"user": "ana 🔑"})
    return PausedRun(
        run_id=run_id,
        conversation_id=conversation,
        copilot=copilot,
        question="Reset Ana's password",
        context="[1] Passwords are reset by the desk.",
        citations=(
            Citation(1, "/kb/pw.md", "pw.md", None, ("Passwords",), "reset by", 7, 0.8, text="x"),
        ),
        tail=(Message.user("Reset Ana's password"), Message.assistant("", (call,))),
        pending=(call,),
        steps=1,
        key_id="key_1",
    )


@PAUSED_RUN_STORES.check()
async def check_a_paused_run_reads_back_whole(subject: Subject) -> None:
    """What was saved comes back: question, grounding, citations, the messages so far,
    the pending tool calls, steps and the key; listed by conversation and copilot."""
    with subject.opened() as store:
        await store.save(paused("r1"))
        await store.save(paused("r2", conversation="c-2", copilot="finance"))
        found = await store.get("r1")
        assert found is not None and found == paused("r1"), found
        assert [r.run_id for r in await store.for_conversation("c-1")] == ["r1"]
        assert [r.run_id for r in await store.all("finance")] == ["r2"]
        assert sorted(r.run_id for r in await store.all()) == ["r1", "r2"]
        assert await store.get("r") is None  # a prefix never matches


@PAUSED_RUN_STORES.check()
async def check_a_paused_run_is_taken_once(subject: Subject) -> None:
    """Of several deciders taking the same run at once, exactly one gets it; the others
    hear it was decided already, and it is gone."""
    with subject.opened() as store, subject.opened() as other:
        await store.save(paused("r1"))

        async def take(which: PausedRunStore) -> str:
            try:
                return (await which.take("r1")).run_id
            except NotFoundError:
                return "gone"

        results = await asyncio.gather(*(take(s) for s in (store, other, store, other)))
        assert sorted(results) == ["gone", "gone", "gone", "r1"], results
        assert await store.get("r1") is None
        with expect(NotFoundError, match="decided already"):
            await other.take("r1")


@PAUSED_RUN_STORES.check()
async def check_saving_again_replaces(subject: Subject) -> None:
    """Saving a run id again replaces the earlier state (a run paused a second time)."""
    with subject.opened() as store:
        await store.save(paused("r1"))
        again = paused("r1")
        await store.save(PausedRun(**{**_fields(again), "steps": 3}))
        found = await store.get("r1")
        assert found is not None and found.steps == 3
        assert len(await store.all()) == 1


@PAUSED_RUN_STORES.check(PERSISTENT)
async def check_paused_runs_survive_reopening(subject: Subject) -> None:
    """A store opened again (another process, another replica) sees the paused run."""
    with subject.opened() as store:
        await store.save(paused("r1"))
    with subject.opened() as again:
        assert (await again.take("r1")).question == "Reset Ana's password"


def _fields(run: PausedRun) -> dict[str, Any]:
    return {name: getattr(run, name) for name in PausedRun.__dataclass_fields__}
