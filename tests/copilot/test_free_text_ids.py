"""Free text names no identifier nobody gave (issue 20, ninth round): the 1.5B wrote
"P2725H", a catalogue's desk monitor that the user never wrote, into a ticket's
description. One rule (copilot/grounded_args.py `invented`) for the runtime's check and
for the evals' count (the invented_arguments metric, benchmarks/grounded/run.py
`report`); the stepped turn leaves such identifiers out of the model's free text, a
native call that carries one is blocked. Scripted models, the shop copilot, real SQLite
stores."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.copilot.events import ToolCallBlocked
from pilothouse.copilot.grounded_args import Evidence, check_call, invented
from pilothouse.models import ScriptedModel, tool_call
from pilothouse.tools import tool
from pilothouse.tools.identifiers import identifiers_in_text
from pilothouse.types import ToolCallPart
from tests.copilot.test_grounded_args import shop_state, tool_results
from tests.copilot.test_stepped_turns import ask, shop, small_model

__all__ = ["shop"]  # the fixture

ROOT = Path(__file__).resolve().parents[2]


@tool(requires_approval=True)
def create_ticket(summary: str, description: str, count: int = 1) -> str:
    """Open a new helpdesk ticket.

    Args:
        summary: A short title.
        description: What is wrong, in the user's words.
        count: How many devices.
    """
    return "HD-1010"


SAID = "My monitor at my desk keeps flickering. Please open a ticket."


def test_identifiers_in_free_text_are_ids_and_emails_not_years_or_quantities() -> None:
    text = "Dell P2725H since 2024, order SO-1001 (ticket 1001), 120 pounds, £120.50, jo@x.example."
    assert identifiers_in_text(text) == ["P2725H", "SO-1001", "1001", "jo@x.example"]


@pytest.mark.parametrize(
    ("description", "given", "named"),
    [
        ("My Dell P2725H monitor keeps flickering.", [], ["P2725H"]),
        ("The monitor flickers since 2024; it cost £120.50 and weighs 5 kg.", [], []),
        ("Flickers; the user's asset tag is AT-55120.", ["AT-55120 is yours"], []),
        ("Monitor on desk 4 flickers.", [], []),
        ("Monitor flickers, see SO-1001 and mail jo@x.example.", [], ["SO-1001", "jo@x.example"]),
    ],
)
def test_free_text_passes_the_check_only_with_identifiers_someone_gave(
    description: str, given: list[str], named: list[str]
) -> None:
    evidence = Evidence([SAID], given)
    call = ToolCallPart("1", "create_ticket", {"summary": "Monitor", "description": description})
    problems = check_call(create_ticket, call, evidence)
    assert [(p.parameter, p.value, p.problem) for p in problems] == (
        [("description", ", ".join(named), "not_given_in_text")] if named else []
    )
    # The evals count the same identifiers with the same rule.
    assert invented(call.arguments, evidence, numbers=True) == named
    assert _report_count(call.arguments, given) == (
        [f"create_ticket: {n}" for n in named] if not given else []
    )


def test_a_number_that_is_no_identifying_parameter_is_not_checked() -> None:
    call = ToolCallPart(
        "1", "create_ticket", {"summary": "Monitor", "description": "x", "count": 250}
    )
    assert check_call(create_ticket, call, Evidence([SAID])) == []


def _report_count(arguments: dict[str, Any], given: list[str]) -> list[str]:
    """benchmarks/grounded/run.py's count of invented ids for one call (its stored
    details hold no tool results: `given` is left out there)."""
    spec = importlib.util.spec_from_file_location(
        "_grounded_run", ROOT / "benchmarks/grounded/run.py"
    )
    assert spec is not None and spec.loader is not None
    run: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    case = SimpleNamespace(question=SAID, conversation=[])
    found: list[str] = run._invented(case, [{"name": "create_ticket", "arguments": arguments}])
    return found if not given else []


async def test_the_stepped_turn_leaves_an_identifier_nobody_gave_out_of_free_text(
    shop: Path, settings: Settings
) -> None:
    model = small_model(
        "call:add_note",
        arguments='{"summary": "Dell P2725H monitor flickers (model P2725H)"}',
        answer='{"answer": "Noted."}',
    )
    await ask(shop, settings, model, "Please add a note: my monitor flickers.")
    assert shop_state(shop)["notes"] == ["Dell monitor flickers (model)"]


async def test_a_native_call_with_an_identifier_nobody_gave_in_free_text_is_blocked(
    shop: Path, settings: Settings
) -> None:
    model = ScriptedModel(
        [
            tool_call("request_return", {"order_id": "SO-1002", "reason": "Broken, see RMA-5001"}),
            "Why are you returning it?",
        ]
    )
    copilot = await Copilot.open(shop, settings=settings, models=[model])
    try:
        question = "Please start a return for SO-1002, it is broken."
        events = [e async for e in copilot.stream(question)]
    finally:
        await copilot.aclose()
    [blocked] = [e for e in events if isinstance(e, ToolCallBlocked)]
    assert blocked.call.name == "request_return"
    [result] = tool_results(model.requests[1])
    assert "reason (RMA-5001) names what the user did not give" in result.content
    assert shop_state(shop)["returns"] == []
