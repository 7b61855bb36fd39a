"""Live traffic under a promotion, on a real server: a shadow candidate that fails or
hangs never changes the user's answer (nor holds it back: the answer is out while the
mirror still runs), approval-gated calls of a mirror are recorded and never run, and a
canary conversation keeps its model from its first turn to its last, across steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from pilothouse.config import Settings
from pilothouse.models.testing import Turn
from pilothouse.pipeline.promotion.controller import Promotions
from pilothouse.server.auth import ANONYMOUS
from pilothouse.server.promotions import sticky_key
from pilothouse.storage.promotion_records import PromotionRecord
from pilothouse.storage.traces import TraceStore
from pilothouse.types import ModelRequest
from tests.pipeline.conftest import good_answer
from tests.pipeline.promotion.conftest import (
    BODIES,
    POLICY,
    ask,
    serve,
    started,
    wait_for,
    write_copilot,
)

VPN = "Which VPN client do we use? (user {})"
MONITOR = "My monitor flickers, please open a ticket."
ANSWER = "Use WireGuard [1]."


async def in_shadow(promotions: Promotions, folder: Path, candidate: str) -> PromotionRecord:
    """A promotion put straight into shadow (its offline stage is not what is tested)."""
    record = promotions.start(await promotions.prepare(folder, candidate), started_by="test")
    moved = promotions.flow.enter(record, "shadow", 0, "test")
    assert moved is not None
    return moved


def quick_copilot(tmp_path: Path) -> Path:
    """The test copilot with a 1 s run time limit (a hanging mirror becomes an error)."""
    folder = write_copilot(tmp_path)
    definition = folder / "copilot.yaml"
    definition.write_text(
        definition.read_text().replace(
            "limits: {max_tool_steps: 2, max_output_tokens: 100}",
            "limits: {max_tool_steps: 2, max_output_tokens: 100, timeout_s: 1}",
        )
    )
    return folder


async def test_a_failing_shadow_candidate_never_changes_the_answer(
    promotions: Promotions, folder: Path, settings: Settings
) -> None:
    pid = (await in_shadow(promotions, folder, "test:failing")).promotion_id
    with serve(settings, folder) as (base, _):
        answers = [ask(base, VPN.format(i)) for i in range(4)]
        wait_for(lambda: promotions.store.get(pid).status == "rolled_back")
    assert {a["choices"][0]["message"]["content"] for a in answers} == {ANSWER}
    assert {a["pilothouse"]["model"] for a in answers} == {"test:current"}
    errors = [s.error for s in promotions.store.samples(pid, "shadow") if s.arm == "candidate"]
    assert errors and all("down" in (e or "") for e in errors), errors
    assert "error rate exceeds 0" in (promotions.store.get(pid).reason or "")


async def test_a_hanging_shadow_candidate_never_holds_the_answer_back(
    promotions: Promotions, tmp_path: Path, settings: Settings
) -> None:
    folder = quick_copilot(tmp_path)
    pid = (await in_shadow(promotions, folder, "test:hanging")).promotion_id
    with serve(settings, folder) as (base, _):
        first = ask(base, VPN.format(0))
        # The answer is out while its mirror still waits on the candidate: nothing of
        # the candidate's is recorded yet.
        assert promotions.store.count(pid, "shadow", 0, "candidate") == 0
        assert first["choices"][0]["message"]["content"] == ANSWER
        wait_for(lambda: promotions.store.get(pid).status == "rolled_back")
    samples = [s for s in promotions.store.samples(pid, "shadow") if s.arm == "candidate"]
    assert samples and samples[0].error == "no answer within 1s"


async def test_a_mirror_records_approval_gated_calls_and_never_runs_them(
    promotions: Promotions, folder: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = folder / "tools.py"
    marker = folder / "created.txt"
    tools.write_text(
        tools.read_text().replace(
            "    CREATED.append(summary)\n",
            f"    CREATED.append(summary)\n    open({str(marker)!r}, 'a').write(summary)\n",
        )
    )
    asked: list[list[str]] = []  # the user turns of each of the candidate's model calls

    def recording(request: ModelRequest) -> Turn:
        asked.append([m.text for m in request.messages if m.role == "user"])
        return good_answer(request)

    monkeypatch.setitem(BODIES, "test:recording", recording)
    pid = (await in_shadow(promotions, folder, "test:recording")).promotion_id
    with serve(settings, folder) as (base, _):
        paused = ask(base, MONITOR)
        assert paused["pilothouse"]["status"] == "awaiting_approval"  # the user decides
        calls = [p["call_id"] for p in paused["pilothouse"]["pending_approvals"]]
        decided = ask(base, MONITOR, run_id=paused["pilothouse"]["run_id"], deny=calls)
        assert decided["pilothouse"]["status"] == "completed"
        ask(base, VPN.format(0))  # mirrored after the monitor's (one worker, in order)
        wait_for(lambda: promotions.store.count(pid, "shadow", 0, "candidate") >= 2)
    assert not marker.exists()  # neither the user's pending call nor the mirror's ran
    # The paused run is no answer yet: the question is mirrored once, when the user has
    # decided, with the conversation as it was before the question, and paired with the
    # answer the user got after deciding.
    samples = promotions.store.samples(pid, "shadow")
    assert [s.arm for s in samples] == ["candidate", "current"] * 2, samples
    mirror, user = samples[0], samples[1]
    assert user.run_id == decided["pilothouse"]["run_id"] == mirror.pair
    assert user.values["refusal"] == 0.0
    assert mirror.values["tool_validity"] == 1.0
    assert len(asked[0]) == 1 and MONITOR in asked[0][0], asked  # asked once, no history
    with TraceStore.for_settings(settings) as traces:
        runs = traces.list_runs(limit=20, promotion=pid)
        shadow_runs = [traces.get_run(r.run_id) for r in runs if r.promotion_role == "shadow"]
    assert len(shadow_runs) == 3  # the monitor's mirror paused, then went on denied; the VPN's
    spans = [s for run in shadow_runs for s in run.spans]
    decisions = [
        s.attributes.get("pilothouse.approval.decision") for s in spans if s.kind == "approval"
    ]
    assert decisions == ["denied"], decisions
    tool = next(s for s in spans if s.kind == "tool")
    assert "denied" in str(tool.attributes.get("gen_ai.tool.call.result"))


def chat(base: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_a_canary_conversation_keeps_its_model_across_turns_and_steps(
    promotions: Promotions, tmp_path: Path, settings: Settings
) -> None:
    policy = POLICY.replace("steps: [0.5, 0.75]", "steps: [0.3, 0.6]").replace(
        "min_requests: 2", "min_requests: 1000"
    )
    folder = write_copilot(tmp_path, policy=policy)
    record = await started(promotions, folder, "test:better")
    pid = record.promotion_id
    with serve(settings, folder) as (base, server):
        user = 0
        while promotions.store.get(pid).stage == "shadow":
            ask(base, VPN.format(f"shadow {user}"))
            user += 1
        stored: dict[str, str] = {}  # conversation id -> model of its first turn
        for i in range(20):
            answer = ask(base, VPN.format(f"stored {i}"))
            stored[answer["pilothouse"]["conversation_id"]] = answer["pilothouse"]["model"]
        kept: dict[int, tuple[list[dict[str, str]], str]] = {}  # conversations the client keeps
        for i in range(10):
            messages = [{"role": "user", "content": VPN.format(f"kept {i}")}]
            answer = chat(base, {"model": "evaldesk", "messages": messages})
            reply = answer["choices"][0]["message"]["content"]
            kept[i] = (
                [*messages, {"role": "assistant", "content": reply}],
                answer["pilothouse"]["model"],
            )
        assert {*stored.values(), *(m for _, m in kept.values())} == {"test:current", "test:better"}

        def follow_up(turn: str) -> None:
            for conversation, model in stored.items():
                answer = ask(base, VPN.format(turn), conversation_id=conversation)
                assert answer["pilothouse"]["model"] == model, (conversation, turn)
            for i, (messages, model) in kept.items():
                messages.append({"role": "user", "content": VPN.format(f"{turn} {i}")})
                answer = chat(base, {"model": "evaldesk", "messages": messages})
                assert answer["pilothouse"]["model"] == model, (i, turn)
                messages.append(
                    {"role": "assistant", "content": answer["choices"][0]["message"]["content"]}
                )

        follow_up("second turn")
        follow_up("third turn")
        moved = promotions.flow.passed(promotions.store.get(pid), "the test moves it on")
        assert moved is not None and moved.step == 1
        live = server.config.app.context.promotions._live["evaldesk"]
        wait_for(lambda: live.record.step == 1)  # the server has seen step 2
        follow_up("after the step")
    assert promotions.store.get(pid).status == "running"


def test_a_conversation_the_client_keeps_is_one_per_end_user() -> None:
    """Two end users (OpenAI's `user` field) who ask the same first question hold two
    conversations for the canary; one user's later turns stay in the first one."""
    first = {"model": "evaldesk", "messages": [{"role": "user", "content": "VPN?"}]}
    alice, fresh = sticky_key({**first, "user": "alice"}, ANONYMOUS)
    bob, _ = sticky_key({**first, "user": "bob"}, ANONYMOUS)
    assert fresh and alice != bob
    later = {
        "user": "alice",
        "messages": [*first["messages"], {"role": "assistant", "content": "WireGuard."},
                     {"role": "user", "content": "Which port?"}],
    }  # fmt: skip
    assert sticky_key(later, ANONYMOUS) == (alice, False)
