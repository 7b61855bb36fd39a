"""Shadow and canary on a real server with scripted models: a better candidate is
promoted; a candidate worse in shadow, or in canary, is rolled back there; a breach
under `on_breach: hold` waits for a person; every mirrored and canary request is a run
linked to its promotion."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from pilothouse.config import Settings
from pilothouse.copilot.conversations import ConversationStore
from pilothouse.copilot.definition import load_definition
from pilothouse.pipeline.promotion import live as live_module
from pilothouse.pipeline.promotion.controller import Promotions
from pilothouse.pipeline.promotion.view import canary_verdict
from pilothouse.storage.traces import TraceStore
from tests.pipeline.promotion.conftest import ask, serve, started, wait_for, write_copilot

VPN = "Which VPN client do we use? (user {})"


def status(promotions: Promotions, promotion_id: str) -> tuple[str, str]:
    record = promotions.store.get(promotion_id)
    return record.stage, record.status


async def test_a_better_candidate_is_promoted_through_shadow_and_canary(
    promotions: Promotions, folder: Path, settings: Settings
) -> None:
    record = await started(promotions, folder, "test:better")
    pid = record.promotion_id
    assert status(promotions, pid) == ("shadow", "running")
    answered_by: set[str] = set()
    with serve(settings, folder) as (base, _):
        for user in range(3):
            answer = ask(base, VPN.format(user))
            assert answer["pilothouse"]["model"] == "test:current"  # shadow: never shown
            assert answer["choices"][0]["message"]["content"] == "Use WireGuard [1]."
        wait_for(lambda: status(promotions, pid)[0] != "shadow")
        user = 3
        while status(promotions, pid) == ("canary", "running") and user < 300:
            answered_by.add(ask(base, VPN.format(user))["pilothouse"]["model"])
            user += 1
        wait_for(lambda: status(promotions, pid) == ("done", "promoted"))
        wait_for(lambda: ask(base, VPN.format("after"))["pilothouse"]["model"] == "test:better")
    assert answered_by == {"test:current", "test:better"}
    definition, _ = load_definition(folder)
    assert definition.model.primary == "test:better"
    text = (folder / "copilot.yaml").read_text()
    assert "primary: test:better\n" in text and "promotion:\n  judge: test:judge" in text
    final = promotions.store.get(pid)
    assert final.report is not None
    report = (Path(final.report) / "report.md").read_text()
    for part in (
        "promoted",
        "## Offline gates",
        "## Shadow",
        "## Canary step 1 (50%)",
        "## Canary step 2 (75%)",
        "## Timeline",
        "agreement >= 0.8",
        "+  primary: test:better",
    ):
        assert part in report, part
    assert "Outcome: **promoted**.\n" in report  # said once
    kinds = [e.kind for e in promotions.store.events(pid)]
    assert kinds == [
        "started", "passed", "stage", "passed", "stage", "passed", "step", "passed", "promoted",
    ], kinds  # fmt: skip
    with TraceStore.for_settings(settings) as traces:
        runs = traces.list_runs(limit=500, promotion=pid)
    roles = {r.promotion_role for r in runs}
    assert roles == {"source", "shadow", "canary", "control"}, roles
    sources = {r.run_id for r in runs if r.promotion_role == "source"}
    shadows = [r for r in runs if r.promotion_role == "shadow"]
    assert len(shadows) >= 3 and all(r.model == "test:better" for r in shadows)
    with TraceStore.for_settings(settings) as traces:
        pairs = {
            traces.get_run(r.run_id).spans[0].attributes["pilothouse.promotion.pair"]
            for r in shadows
        }
    assert pairs <= sources
    with ConversationStore.for_settings(settings) as conversations:
        kept = await conversations.list(limit=1000)
    assert all(not c.metadata.get("promotion") for c in kept)  # shadow conversations are gone
    users = 0
    for conversation in kept:
        with ConversationStore.for_settings(settings) as store:
            messages = await store.messages(conversation.id)
        if messages[0].text.startswith("Which VPN client do we use? (user"):
            users += 1
            assert len(messages) == 2  # the user's turn only: a mirror never joins it
    assert users >= user


async def test_a_candidate_worse_in_shadow_is_rolled_back_there(
    promotions: Promotions, folder: Path, settings: Settings
) -> None:
    """test:verbose passes every eval check, but its live answers do not agree with the
    current model's (the judge says no): the shadow threshold breaches."""
    record = await started(promotions, folder, "test:verbose")
    pid = record.promotion_id
    assert status(promotions, pid) == ("shadow", "running")
    before = (folder / "copilot.yaml").read_text()
    with serve(settings, folder) as (base, _):
        user = 0
        while status(promotions, pid)[1] == "running" and user < 100:
            answer = ask(base, VPN.format(user))
            assert answer["choices"][0]["message"]["content"] == "Use WireGuard [1]."
            user += 1
        wait_for(lambda: status(promotions, pid) == ("done", "rolled_back"))
    final = promotions.store.get(pid)
    assert "shadow: agreement >= 0.8" in (final.reason or ""), final.reason
    assert (folder / "copilot.yaml").read_text() == before
    assert final.report is not None and (Path(final.report) / "report.html").is_file()
    assert promotions.store.count(pid, "canary", 0, "candidate") == 0


@pytest.mark.parametrize("deciding_s", [0.0, 0.3], ids=["idle", "slow-decision"])
async def test_a_candidate_worse_in_canary_is_rolled_back_at_once(
    promotions: Promotions,
    folder: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    deciding_s: float,
) -> None:
    """test:uncited passes offline and shadow (its answers agree), but cites nothing: the
    canary's citations guard breaches on the first requests it answers. slow-decision:
    each canary verdict takes 0.3 s, as on a busy CPU (a fresh-clone CI at load 3-5
    waited 60 s for a score that never came)."""

    def deciding(*args: Any, **kwargs: Any) -> Any:
        time.sleep(deciding_s)
        return canary_verdict(*args, **kwargs)

    monkeypatch.setattr(live_module, "canary_verdict", deciding)
    record = await started(promotions, folder, "test:uncited")
    pid = record.promotion_id
    with serve(settings, folder) as (base, _):
        user = asked = 0
        while status(promotions, pid)[1] == "running" and user < 200:
            if ask(base, VPN.format(user))["pilothouse"]["model"] == "test:uncited":
                # scored before the next question: the guard's pace, not the machine's (a
                # busy CPU let 7 candidate answers out before the scores caught up). An
                # answer routed while the guard was deciding is never scored: the
                # promotion is over before its sample is taken (live.py drops it).
                asked += 1
                scored = partial(promotions.store.count, pid, "canary", 0, "candidate")
                wait_for(lambda: scored() >= asked or status(promotions, pid)[1] != "running")  # noqa: B023 (called at once)
            user += 1
        wait_for(lambda: status(promotions, pid) == ("done", "rolled_back"))
        after = {ask(base, VPN.format(f"after {i}"))["pilothouse"]["model"] for i in range(6)}
    final = promotions.store.get(pid)
    assert "canary step 1: citations no worse than current - 0" in (final.reason or ""), (
        final.reason
    )
    samples = sorted(promotions.store.samples(pid, "canary", 0), key=lambda s: s.at)
    candidate = [s for s in samples if s.arm == "candidate"]
    assert candidate and asked - 1 <= len(candidate) <= asked  # one may come while deciding
    # At once: the guard judges from the first sample after which both arms have one; a
    # candidate answer after that is one the decision had not stopped yet. (Not a count
    # since the step began: the sticky hash sends the first six conversations all to the
    # candidate in one run of 64.)
    judgeable = next(s.at for s in samples if s.arm != samples[0].arm)
    assert len([s for s in candidate if s.at > judgeable]) <= 1, samples
    assert after == {"test:current"}


async def test_a_held_promotion_waits_for_a_person_then_goes_on_or_is_aborted(
    promotions: Promotions, tmp_path: Path, settings: Settings
) -> None:
    folder = write_copilot(tmp_path, on_breach="hold")
    record = await started(promotions, folder, "test:verbose")
    pid = record.promotion_id
    with serve(settings, folder) as (base, _):
        user = 0
        while status(promotions, pid)[1] == "running" and user < 100:
            ask(base, VPN.format(user))
            user += 1
        wait_for(lambda: status(promotions, pid) == ("shadow", "held"))
        held = [ask(base, VPN.format(f"held {i}"))["pilothouse"]["run_id"] for i in range(3)]
        with TraceStore.for_settings(settings) as traces:  # held: no candidate traffic
            assert all(traces.get_run(r).run.promotion_id is None for r in held)
        approved = promotions.approve("evaldesk", by="ops")
        assert (approved.stage, approved.status) == ("canary", "running")
        wait_for(lambda: ask(base, VPN.format("x"))["pilothouse"] is not None)
        aborted = promotions.abort("evaldesk", by="ops", reason="enough")
    assert (aborted.stage, aborted.status) == ("done", "rolled_back")
    kinds = [e.kind for e in promotions.store.events(pid)]
    assert kinds[-6:] == ["breach", "held", "approved", "passed", "stage", "rolled_back"], kinds
    assert aborted.reason == "aborted by ops: enough"
