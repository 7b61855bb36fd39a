"""A choice the user did not make takes the tool's default (issue 20): the 0.5B wrote
`priority: critical` (the enum's first value) on the helpdesk's `create_ticket` for
problems that "only affect me"; a value of a parameter with a fixed set of values and a
default is the model's only where the user named it. Scripted models, the shop copilot."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot.unsaid_choices import defaulted
from tests.copilot.test_grounded_args import shop_state
from tests.copilot.test_stepped_turns import ask, shop, small_model

__all__ = ["shop"]  # the fixture

TICKETS = '''

STATE["tickets"] = []
Priority = Literal["critical", "high", "medium", "low"]


@tool(read_only=True)
def open_ticket(summary: str, priority: Priority = "medium") -> str:
    """Open a new helpdesk ticket.

    Args:
        summary: A short title you write from the user's words.
        priority: critical (site down or security), high (a team blocked), medium or low.
    """
    STATE["tickets"].append((summary, priority))
    return "HD-1010"
'''


@pytest.fixture
def desk(shop: Path) -> Path:
    tools = shop / "tools.py"
    tools.write_text("from typing import Literal\n" + tools.read_text() + TICKETS)
    definition = shop / "copilot.yaml"
    definition.write_text(definition.read_text().replace("add_note]", "add_note, open_ticket]"))
    return shop


@pytest.mark.parametrize(
    ("said", "priority"),
    [
        ("My monitor keeps flickering, it only affects me. Please open a ticket.", "medium"),
        ("Please open a ticket, critical: nobody can log in to the shop.", "critical"),
        ("Open a ticket for my monitor, Critical please.", "critical"),
    ],
)
async def test_a_priority_the_user_did_not_name_is_the_tools_default(
    desk: Path, settings: Settings, said: str, priority: str
) -> None:
    model = small_model(
        "call:open_ticket",
        arguments='{"summary": "Monitor flickers", "priority": "critical"}',
        answer='{"answer": "Opened HD-1010."}',
    )
    await ask(desk, settings, model, said)
    assert shop_state(desk)["tickets"] == [("Monitor flickers", priority)]


SCHEMA = {
    "type": "object",
    "properties": {
        "priority": {"type": "string", "enum": ["critical", "high", "medium"], "default": "medium"},
        "kind": {"type": "string", "enum": ["bug", "question"]},
        "speed": {"type": "string", "enum": ["next_day", "standard"], "default": "standard"},
        "note": {"type": "string", "default": "none"},
    },
}


def test_only_an_enum_with_a_default_that_nobody_named_is_defaulted() -> None:
    written = {"priority": "high", "kind": "bug", "speed": "next_day", "note": "x"}
    assert defaulted(written, SCHEMA, ["It is broken."]) == {
        "priority": "medium",  # not named: the default
        "kind": "bug",  # no default: the model must choose
        "speed": "standard",
        "note": "x",  # free text, not a choice
    }
    named = defaulted(written, SCHEMA, ["Can you send it next day?", "High, please."])
    assert named == written  # named, in any message of the conversation, any case
    assert defaulted({"priority": "low"}, SCHEMA, ["low"]) == {"priority": "low"}  # not a value
    assert defaulted({}, SCHEMA, ["x"]) == {}  # not written: the tool's default applies
