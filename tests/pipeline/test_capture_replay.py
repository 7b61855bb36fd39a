"""Stored runs become eval cases (question, earlier turns, reference, cited sources,
tool calls), the captured suite runs, and a stored run is answered again on another
model."""

from __future__ import annotations

from pathlib import Path

import yaml

from pilothouse.config import Settings
from pilothouse.copilot.conversations import ConversationStore
from pilothouse.copilot.copilot import Copilot
from pilothouse.models import FunctionModel
from pilothouse.pipeline.capture import capture, dump_suite
from pilothouse.pipeline.replay import replay
from pilothouse.pipeline.runner import EvalPlan, EvalRunner
from pilothouse.pipeline.suite import parse_suite
from pilothouse.storage.evals import EvalStore
from pilothouse.storage.traces import TraceStore
from tests.pipeline.conftest import bad_answer, good_answer


async def stored_runs(copilot_dir: Path, settings: Settings) -> list[str]:
    copilot = await Copilot.open(
        copilot_dir, settings=settings, models=[FunctionModel(good_answer, model_id="test:good")]
    )
    first = await copilot.ask("Which VPN client do we use?")
    follow = await copilot.ask("And which port does it use?", conversation_id=first.conversation_id)
    status = await copilot.ask("What is the status of ticket HD-1001?")
    await copilot.aclose()
    return [first.run_id, follow.run_id, status.run_id]


async def test_stored_runs_become_cases_that_run(
    copilot_dir: Path, settings: Settings, store: EvalStore
) -> None:
    first, follow, status = await stored_runs(copilot_dir, settings)
    with (
        TraceStore.for_settings(settings) as traces,
        ConversationStore.for_settings(settings) as conversations,
    ):
        data = await capture(traces, conversations, "evaldesk")
        only = await capture(traces, conversations, "evaldesk", run_ids=[status[:10]])
        none = await capture(traces, conversations, "evaldesk", since=4e9)
    assert [c["id"] for c in only["cases"]] == [f"run-{status[:12]}"]
    assert none["cases"] == []
    text = dump_suite(data)
    suite = parse_suite(text, Path("captured.yaml"))  # the format's own model accepts it
    cases = {c.id: c for c in suite.cases}
    vpn = cases[f"run-{first[:12]}"]
    assert vpn.question == "Which VPN client do we use?"
    assert vpn.reference == "Use WireGuard [1]."
    assert [(s.file, s.heading) for s in vpn.expect.sources] == [("knowledge/vpn.md", "VPN")]
    port = cases[f"run-{follow[:12]}"]
    assert [(t.role, t.text) for t in port.conversation] == [
        ("user", "Which VPN client do we use?"),
        ("assistant", "Use WireGuard [1]."),
    ]
    ticket = cases[f"run-{status[:12]}"]
    [call] = ticket.expect.tool_calls
    assert call.name == "ticket_status" and call.arguments == {"ticket_id": "HD-1001"}

    (copilot_dir / "evals/captured.yaml").write_text(text)
    yaml_file = copilot_dir / "copilot.yaml"
    yaml_file.write_text(
        yaml_file.read_text().replace("[evals/basic.yaml]", "[evals/captured.yaml]")
    )
    runner = EvalRunner(
        settings,
        store,
        model_factory=lambda m: [
            FunctionModel(good_answer if m == "test:good" else bad_answer, model_id=m)
        ],  # type: ignore[arg-type]
    )
    run_id = await runner.start(EvalPlan(folder=str(copilot_dir), models=("test:good", "test:bad")))
    assert store.counts(run_id, 1) == {"passed": 3, "failed": 0, "error": 0}
    assert store.counts(run_id, 2)["failed"] >= 2
    assert yaml.safe_load(text)["suite"] == "captured"


async def test_replay_answers_a_stored_run_again_on_another_model(
    copilot_dir: Path, settings: Settings
) -> None:
    _, follow, _ = await stored_runs(copilot_dir, settings)
    seen: list[list[str]] = []

    def other(request):  # type: ignore[no-untyped-def]
        seen.append([m.text for m in request.messages])
        return "Port 51820, says the other model [1]."

    result = await replay(
        settings, follow[:12], "test:other", copilot_dir,
        models=[FunctionModel(other, model_id="test:other")],
    )  # fmt: skip
    assert result.original.answer == "It uses port 51820 [1]."
    assert result.outcome.text == "Port 51820, says the other model [1]."
    assert "Use WireGuard [1]." in seen[0]  # the earlier turns came along
    assert result.outcome.trace_id and result.outcome.trace_id != result.original.run_id
