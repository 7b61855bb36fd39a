"""A question for the state of the user's own things that a read-only tool without ids
lists ("What tickets have I got open at the moment?": `list_my_tickets`) is covered by
that tool: the decision offers no "not covered" (issue 20, ninth round; the 1.5B said
"not covered" to it on benchmarks/grounded/followups-fresh5). Scripted small models, the
shop copilot with a list of the customer's orders, real SQLite stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot.decision_options import options
from pilothouse.copilot.events import Decided
from pilothouse.tools import tool
from tests.copilot.test_grounded_args import SHOP_TOOLS, shop_state
from tests.copilot.test_stepped_turns import ask, shop, small_model, step_of
from tests.copilot.test_user_intent import TOOLS

__all__ = ["shop"]  # the fixture

LIST_TOOL = '''

@tool(read_only=True)
def list_my_orders() -> list:
    """List the customer's own orders."""
    STATE["looked_up"].append("*")
    return [{"order_id": "SO-1002", "status": "shipped"}]
'''


@pytest.fixture
def listing(shop: Path) -> Path:
    """The shop (strict grounding) with a list of the customer's own orders."""
    (shop / "tools.py").write_text(SHOP_TOOLS + LIST_TOOL)
    definition = shop / "copilot.yaml"
    definition.write_text(definition.read_text().replace("add_note]", "add_note, list_my_orders]"))
    return shop


@pytest.mark.parametrize(
    "question",
    [
        "What tickets have I got open at the moment?",
        "Do I have any open tickets?",
        "Which of my tickets are still open?",
    ],
)
@pytest.mark.parametrize("passages", [True, False])
def test_the_list_of_their_own_things_covers_the_question(question: str, passages: bool) -> None:
    found = options(TOOLS, question, [], has_identifier=False, passages=passages, strict=True)
    assert found.choices == ("call:list_my_tickets",)  # called, without a decision
    assert found.listed == "list_my_tickets"
    assert not found.knowledge_first  # the handbook does not know the user's tickets


@pytest.mark.parametrize("question", ["Can I raise a ticket by email?", "What is the dress code?"])
def test_other_questions_may_still_be_not_covered(question: str) -> None:
    found = options(TOOLS, question, [], has_identifier=False, passages=False, strict=True)
    assert "not_covered" in found.choices


async def test_the_list_is_called_without_a_decision(listing: Path, settings: Settings) -> None:
    # The 1.5B, offered the list, said "not covered", asked for a ticket number, or
    # answered "you have no open tickets" from the handbook.
    model = small_model(
        "not_covered", arguments="{}", answer='{"answer": "You have SO-1002, shipped."}'
    )
    events = await ask(listing, settings, model, "What orders have I got open at the moment?")
    decided = [(d.decision, d.tool, d.forced) for d in events if isinstance(d, Decided)]
    assert decided[0] == ("call", "list_my_orders", "their_own")
    assert not [r for r in model.requests if step_of(r).startswith("Step: decide")]
    assert shop_state(listing)["looked_up"] == ["*"]
    assert events[-1].answer.text == "You have SO-1002, shipped."  # type: ignore[attr-defined]


def test_of_several_lists_the_model_chooses_but_not_not_covered() -> None:
    found = options(
        [*TOOLS, list_my_tickets_too],
        "What tickets have I got open at the moment?",
        [],
        has_identifier=False,
        passages=True,
        strict=True,
    )
    assert found.listed is None
    assert {"call:list_my_tickets", "call:list_my_open_tickets"} <= set(found.choices)
    assert "not_covered" not in found.choices


@tool(read_only=True, name="list_my_open_tickets")
def list_my_tickets_too() -> list[str]:
    """List the user's own open tickets."""
    return []
