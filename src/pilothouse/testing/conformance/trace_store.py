"""The trace-store suite: what every store of runs and spans does (today the SQLite
`TraceStore`). Traces are made by a real `Tracer` writing to the store."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pilothouse.errors import NotFoundError
from pilothouse.storage.traces import TraceStore
from pilothouse.testing.conformance.stores import PERSISTENT, StoreSubject
from pilothouse.testing.conformance.suite import Suite, expect
from pilothouse.tracing import Span, Tracer
from pilothouse.tracing import attributes as attr

TRACE_STORES: Suite[StoreSubject[Any]] = Suite(
    "trace stores", "runs and their spans: written whole, read back, listed, pruned"
)

PRUNE = "prune"  # old runs can be deleted (`prune`)

Subject = StoreSubject[TraceStore]


def run(
    store: TraceStore,
    question: str,
    *,
    copilot: str = "helpdesk",
    fail: bool = False,
    promotion: tuple[str, str] | None = None,
) -> str:
    """One run: a root span with a retrieval and two model calls (the second failed
    over to another model); returns its run id. `promotion`: (id, role) it belongs to."""
    tracer = Tracer([store])
    with tracer.span("invoke_agent helpdesk", kind="run", root=True) as root:
        root.update({attr.AGENT_NAME: copilot, attr.RUN_QUESTION: question})
        if promotion is not None:
            root.update({attr.PROMOTION_ID: promotion[0], attr.PROMOTION_ROLE: promotion[1]})
        with tracer.span("retrieve", kind="retrieval") as retrieval:
            retrieval.add_event("passage", {"source": "vpn.md", "score": 0.8})
        for model, tokens in (("openai:gpt-4.1-mini", (120, 0)), ("local:qwen", (130, 12))):
            with tracer.span(f"chat {model}", kind="model") as call:
                call.update(
                    {
                        attr.RESPONSE_MODEL: model,
                        attr.USAGE_INPUT_TOKENS: tokens[0],
                        attr.USAGE_OUTPUT_TOKENS: tokens[1],
                    }
                )
                if tokens[1] == 0:
                    call.fail("HTTP 503 from the provider")
        if fail:
            root.fail("the step limit was reached")
        else:
            root.set(attr.RUN_ANSWER, "Use WireGuard [1].")
        run_id = root.trace_id
    return run_id


@TRACE_STORES.check()
async def check_a_run_reads_back_whole(subject: Subject) -> None:
    """A run's spans come back in start order with their kinds, parents, attributes,
    events and failures; its figures are derived from them."""
    with subject.opened() as store:
        run_id = run(store, "Which VPN client do we use?")
        detail = store.get_run(run_id)
    summary = detail.run
    assert (summary.run_id, summary.copilot, summary.status) == (run_id, "helpdesk", "completed")
    assert summary.question == "Which VPN client do we use?"
    assert summary.answer == "Use WireGuard [1]."
    assert summary.model == "local:qwen"
    assert (summary.input_tokens, summary.output_tokens) == (250, 12)
    assert summary.span_count == 4 == len(detail.spans)
    kinds = [s.kind for s in detail.spans]
    assert kinds == ["run", "retrieval", "model", "model"], kinds
    root = detail.spans[0]
    assert all(s.parent_id == root.span_id for s in detail.spans[1:])
    assert detail.spans[1].events[0].attributes == {"source": "vpn.md", "score": 0.8}
    assert detail.spans[2].status == "error" and "503" in str(detail.spans[2].error)
    assert [len(node.children) for node in detail.tree()] == [3]


@TRACE_STORES.check()
async def check_runs_are_listed_newest_first_and_by_copilot(subject: Subject) -> None:
    """`list_runs` gives the newest first, at most `limit`, optionally of one copilot;
    a failed run says so."""
    with subject.opened() as store:
        first = run(store, "first")
        await asyncio.sleep(0.01)
        second = run(store, "second", copilot="finance", fail=True)
        listed = store.list_runs(limit=10)
        assert [r.run_id for r in listed][:2] == [second, first]
        assert listed[0].status == "failed" and "step limit" in str(listed[0].error)
        assert [r.run_id for r in store.list_runs(copilot="helpdesk")] == [first]
        assert len(store.list_runs(limit=1)) == 1


@TRACE_STORES.check()
async def check_runs_are_listed_by_promotion(subject: Subject) -> None:
    """A run a promotion mirrored or routed names the promotion and its role there;
    `list_runs(promotion=...)` gives only that promotion's runs (an id prefix will do)."""
    with subject.opened() as store:
        plain = run(store, "plain")
        shadow = run(store, "mirrored", promotion=("pr-1a2b3c", "shadow"))
        run(store, "other", promotion=("pr-9f9f9f", "canary"))
        listed = store.list_runs(limit=10, promotion="pr-1a2b")
        assert [r.run_id for r in listed] == [shadow]
        assert (listed[0].promotion_id, listed[0].promotion_role) == ("pr-1a2b3c", "shadow")
        assert store.get_run(plain).run.promotion_id is None


@TRACE_STORES.check()
async def check_run_ids_resolve_from_an_unambiguous_prefix(subject: Subject) -> None:
    """A run id prefix finds its run; an unknown one raises `NotFoundError`."""
    with subject.opened() as store:
        run_id = run(store, "question")
        assert store.resolve_run_id(run_id[:12]) == run_id
        assert store.get_run(run_id[:12]).run.run_id == run_id
        with expect(NotFoundError):
            store.resolve_run_id("zzzz-no-such-run")
        with expect(NotFoundError):
            store.get_run("zzzz-no-such-run")


@TRACE_STORES.check()
async def check_a_late_span_joins_its_run(subject: Subject) -> None:
    """Spans delivered after their root (a second `export` of the same trace) are added
    to the run and its figures."""
    now = time.time()
    root = Span("ab" * 16, "1" * 16, None, "invoke_agent helpdesk", "run", now, now + 1, 1.0)
    root.attributes[attr.AGENT_NAME] = "helpdesk"
    late = Span("ab" * 16, "2" * 16, root.span_id, "chat m", "model", now, now + 2, 2.0)
    late.attributes.update({attr.RESPONSE_MODEL: "m", attr.USAGE_INPUT_TOKENS: 7})
    with subject.opened() as store:
        store.export([root])
        assert store.get_run(root.trace_id).run.span_count == 1
        store.export([late])
        detail = store.get_run(root.trace_id)
    assert detail.run.span_count == 2 and detail.run.input_tokens == 7
    assert detail.run.model == "m"


@TRACE_STORES.check(PRUNE)
async def check_prune_deletes_old_runs_only(subject: Subject) -> None:
    """`prune(older_than)` deletes runs that ended before the cut-off with their spans
    and keeps newer ones; a dry run deletes nothing."""
    with subject.opened() as store:
        old = run(store, "old")
        cut = time.time() + 0.001
        await asyncio.sleep(0.01)
        new = run(store, "new")
        dry = store.prune(cut, dry_run=True)
        assert dry.runs == 1 and store.get_run(old).run.run_id == old
        done = store.prune(cut)
        assert done.runs == 1
        with expect(NotFoundError):
            store.get_run(old)
        assert store.get_run(new).run.run_id == new


@TRACE_STORES.check(PERSISTENT)
async def check_runs_survive_reopening(subject: Subject) -> None:
    """A store opened again sees the runs an earlier one wrote."""
    with subject.opened() as store:
        run_id = run(store, "kept")
    with subject.opened() as again:
        assert again.get_run(run_id).run.question == "kept"
