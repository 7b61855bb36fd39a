"""The copilot runtime loop with test doubles: grounding, citations, tools, approval,
step limit, fallback with per-family prompts, conversations, failures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot.copilot import Copilot
from pilothouse.copilot.events import (
    ApprovalRequired,
    RunFinished,
    ToolCallFinished,
    ToolCallStarted,
)
from pilothouse.copilot.runtime import NOT_COVERED, STEP_LIMIT_NOTE
from pilothouse.errors import UnavailableError
from pilothouse.models import FunctionModel, ScriptedModel, tool_call
from pilothouse.models.profiles import ModelProfile
from pilothouse.tracing import attributes as A
from pilothouse.types import Message, ModelRequest, ToolCallPart


def last_user(request: ModelRequest) -> str:
    return next(m.text for m in reversed(request.messages) if m.role == "user")


def tools_state(folder: Path) -> dict:  # type: ignore[type-arg]
    module = next(
        m
        for n, m in sys.modules.items()
        if getattr(m, "__file__", None) == str(folder / "tools.py")
    )
    return module.STATE  # type: ignore[no-any-return]


async def open_copilot(folder: Path, settings: Settings, *models) -> Copilot:  # type: ignore[no-untyped-def]
    return await Copilot.open(folder, settings=settings, models=list(models))


async def test_grounded_answer_cites_file_and_heading(
    copilot_dir: Path, settings: Settings
) -> None:
    def answer(request: ModelRequest) -> str:
        prompt = last_user(request)
        assert "[1] (" in prompt and "WireGuard" in prompt
        assert request.messages[0].text.startswith("You are the test helpdesk")
        return "Use WireGuard and connect to vpn.testcorp.example [1]."

    copilot = await open_copilot(
        copilot_dir, settings, FunctionModel(answer, model_id="local:qwen")
    )
    result = await copilot.ask("Which VPN client do we use?")
    await copilot.aclose()
    assert result.status == "completed"
    assert "WireGuard" in result.text
    [citation] = result.citations
    assert citation.source.endswith("vpn.md")
    assert "VPN" in citation.headings
    assert citation.number == 1


async def test_strict_grounding_says_so_when_nothing_is_found(
    copilot_dir: Path, settings: Settings
) -> None:
    (copilot_dir / "copilot.yaml").write_text(
        (copilot_dir / "copilot.yaml")
        .read_text()
        .replace(
            "tools:\n  - python: tools.py\n    functions: [lookup, create_ticket, explode]\n", ""
        )
        .replace("top_k: 2}", "top_k: 2, min_score: 0.99}")
    )
    model = ScriptedModel([])
    copilot = await open_copilot(copilot_dir, settings, model)
    result = await copilot.ask("What is the airspeed of an unladen swallow?")
    await copilot.aclose()
    assert result.text == NOT_COVERED
    assert model.requests == []  # no model was asked, so nothing could be invented


async def test_a_tool_call_runs_and_the_model_answers_with_its_result(
    copilot_dir: Path, settings: Settings
) -> None:
    model = ScriptedModel([tool_call("lookup", {"term": "laptop-42"}), "laptop-42 is registered."])
    copilot = await open_copilot(copilot_dir, settings, model)
    events = [e async for e in copilot.stream("Is laptop-42 registered?")]
    await copilot.aclose()
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert [e.call.name for e in started] == ["lookup"]
    assert finished[0].outcome.content.strip('"') == "laptop-42: asset found"
    assert isinstance(events[-1], RunFinished)
    assert events[-1].answer.text == "laptop-42 is registered."
    second = model.requests[1]
    assert second.messages[-1].role == "tool"
    assert second.messages[-2].tool_calls[0].name == "lookup"
    assert {t.name for t in second.tools} == {"lookup", "create_ticket", "explode"}


async def test_independent_tool_calls_run_concurrently(
    copilot_dir: Path, settings: Settings
) -> None:
    both = Message.assistant(
        "",
        (
            ToolCallPart("a", "lookup", {"term": "one"}),
            ToolCallPart("b", "lookup", {"term": "two"}),
        ),
    )
    copilot = await open_copilot(copilot_dir, settings, ScriptedModel([both, "done"]))
    await copilot.ask("Look up one and two")
    assert tools_state(copilot_dir)["most"] == 2
    await copilot.aclose()


async def test_approval_pauses_and_resumes(copilot_dir: Path, settings: Settings) -> None:
    model = ScriptedModel(
        [
            tool_call("create_ticket", {"summary": "screen broken"}, id="t1"),
            "Ticket HD-1001 is open.",
        ]
    )
    copilot = await open_copilot(copilot_dir, settings, model)
    events = [e async for e in copilot.stream("My screen is broken, open a ticket")]
    paused = next(e for e in events if isinstance(e, ApprovalRequired))
    answer = events[-1].answer  # type: ignore[union-attr]
    assert answer.status == "awaiting_approval"
    assert paused.pending[0].call.name == "create_ticket"
    assert "screen broken" in paused.pending[0].description
    assert tools_state(copilot_dir)["created"] == []
    await copilot.aclose()

    # Another process decides: a new Copilot on the same data directory.
    again = await open_copilot(copilot_dir, settings, model)
    resumed = await again.approve(answer.run_id, approve=["t1"])
    assert resumed.status == "completed"
    assert resumed.text == "Ticket HD-1001 is open."
    assert tools_state(copilot_dir)["created"] == ["screen broken"]
    assert resumed.tool_calls[0].approved is True
    history = await again.conversations.messages(answer.conversation_id)
    assert [m.role for m in history] == ["user", "assistant", "tool", "assistant"]
    await again.aclose()


async def test_a_denied_call_is_reported_to_the_model(
    copilot_dir: Path, settings: Settings
) -> None:
    model = ScriptedModel([tool_call("create_ticket", {"summary": "x"}, id="t1"), "OK, no ticket."])
    copilot = await open_copilot(copilot_dir, settings, model)
    paused = await copilot.ask("open a ticket")
    result = await copilot.approve(paused.run_id, deny=["t1"], note="not needed")
    await copilot.aclose()
    assert result.text == "OK, no ticket."
    tool_message = model.requests[1].messages[-1]
    assert "denied" in tool_message.tool_results[0].content
    assert "not needed" in tool_message.tool_results[0].content


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (ToolCallPart("c", "explode", {}), "RuntimeError"),
        (ToolCallPart("c", "lookup", {}, raw_arguments="{term: oops"), "not a JSON object"),
        (ToolCallPart("c", "lookup", {"term": 5}), "do not match"),
        (ToolCallPart("c", "no_such_tool", {}), "no function named"),
    ],
    ids=["raises", "malformed-json", "wrong-type", "unknown-tool"],
)
async def test_tool_problems_become_error_results_and_the_run_goes_on(
    copilot_dir: Path, settings: Settings, call: ToolCallPart, expected: str
) -> None:
    model = ScriptedModel([Message.assistant("", (call,)), "Sorry, that did not work."])
    copilot = await open_copilot(copilot_dir, settings, model)
    result = await copilot.ask("do it")
    await copilot.aclose()
    assert result.status == "completed"
    assert result.tool_calls[0].is_error
    assert expected in model.requests[1].messages[-1].tool_results[0].content


async def test_step_limit_ends_gracefully(copilot_dir: Path, settings: Settings) -> None:
    model = ScriptedModel(
        [
            tool_call("lookup", {"term": "a"}),
            tool_call("lookup", {"term": "b"}),
            tool_call("lookup", {"term": "c"}, id="over"),
            "I ran out of steps.",
        ]
    )
    copilot = await open_copilot(copilot_dir, settings, model)
    result = await copilot.ask("keep looking")
    await copilot.aclose()
    assert result.status == "step_limit"
    assert result.text == "I ran out of steps."
    assert len(result.tool_calls) == 2  # the call over the limit never ran
    final = model.requests[3]
    assert final.tool_choice == "none"
    assert final.messages[-1].text == STEP_LIMIT_NOTE
    unanswered = final.messages[-2].tool_results[0]
    assert unanswered.tool_call_id == "over" and "more steps than" in unanswered.content


async def test_a_final_answer_after_the_last_allowed_step_is_complete(
    copilot_dir: Path, settings: Settings
) -> None:
    model = ScriptedModel(
        [tool_call("lookup", {"term": "a"}), tool_call("lookup", {"term": "b"}), "Both found."]
    )
    copilot = await open_copilot(copilot_dir, settings, model)
    result = await copilot.ask("look up a then b")
    await copilot.aclose()
    assert result.status == "completed"
    assert model.requests[2].tool_choice == "auto"


async def test_the_fallback_model_gets_its_own_family_prompt(
    copilot_dir: Path, settings: Settings
) -> None:
    claude = ScriptedModel(
        [UnavailableError("overloaded")],
        model_id="anthropic:claude-x",
        profile=ModelProfile(family="claude"),
    )
    qwen = ScriptedModel(
        ["Printers are on floor 3 [1]."], model_id="local:qwen", profile=ModelProfile(family="qwen")
    )
    copilot = await open_copilot(copilot_dir, settings, claude, qwen)
    result = await copilot.ask("Where are the printers?")
    await copilot.aclose()
    assert claude.requests[0].messages[0].text == "Claude, you are the test helpdesk."
    assert qwen.requests[0].messages[0].text.startswith("You are the test helpdesk")
    assert result.model == "local:qwen"
    assert result.citations[0].headings[-1] == "Printing"


async def test_conversations_carry_history(copilot_dir: Path, settings: Settings) -> None:
    model = ScriptedModel(["WireGuard [1].", "Port 51820 [1]."])
    copilot = await open_copilot(copilot_dir, settings, model)
    first = await copilot.ask("Which VPN client?")
    second = await copilot.ask("Which port does it use?", conversation_id=first.conversation_id)
    await copilot.aclose()
    assert second.conversation_id == first.conversation_id
    texts = [m.text for m in model.requests[1].messages]
    # The first turn as it was sent: with its passages (the model reads what [1] was).
    assert texts[1].startswith("Passages from the knowledge base:\n\n[1] (knowledge/vpn.md")
    assert texts[1].endswith("Question: Which VPN client?") and texts[2] == "WireGuard [1]."


async def test_when_every_model_fails_the_run_fails_cleanly(
    copilot_dir: Path, settings: Settings
) -> None:
    copilot = await open_copilot(
        copilot_dir, settings, ScriptedModel([UnavailableError("down")], model_id="p:a")
    )
    result = await copilot.ask("Which VPN client?")
    await copilot.aclose()
    assert result.status == "failed"
    assert "down" in (result.error or "")


async def test_every_run_is_traced_with_the_exact_messages(
    copilot_dir: Path, settings: Settings
) -> None:
    from pilothouse.storage.traces import TraceStore

    model = ScriptedModel([tool_call("lookup", {"term": "x"}), "done [1]"])
    copilot = await open_copilot(copilot_dir, settings, model)
    result = await copilot.ask("Which VPN client?")
    await copilot.aclose()
    store = TraceStore(settings.database_path)
    run = store.get_run(result.run_id)
    store.close()
    kinds = [s.kind for s in run.spans]
    assert kinds.count("model") == 2 and "tool" in kinds and "retrieval" in kinds
    model_span = next(s for s in run.spans if s.kind == "model")
    sent = json.dumps(model_span.attributes[A.REQUEST_MESSAGES])
    assert "Which VPN client?" in sent
    assert "You are the test helpdesk" in sent  # the system prompt as actually sent
    assert model_span.attributes[A.RESPONSE_MODEL] == "test:scripted"
    assert run.run.question == "Which VPN client?"
