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
from tests.copilot.test_grounded_args import SHOP_TOOLS
from tests.copilot.test_stepped_turns import ask, offered, shop, small_model
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
    assert "call:list_my_tickets" in found.choices
    assert "not_covered" not in found.choices
    assert not found.knowledge_first  # the handbook does not know the user's tickets


@pytest.mark.parametrize("question", ["Can I raise a ticket by email?", "What is the dress code?"])
def test_other_questions_may_still_be_not_covered(question: str) -> None:
    found = options(TOOLS, question, [], has_identifier=False, passages=False, strict=True)
    assert "not_covered" in found.choices


async def test_a_small_model_cannot_say_not_covered_to_it(
    listing: Path, settings: Settings
) -> None:
    model = small_model("not_covered", answer='{"answer": "You have SO-1002, shipped."}')
    events = await ask(listing, settings, model, "What orders have I got open at the moment?")
    assert "not_covered" not in offered(model.requests[0])
    assert "call:list_my_orders" in offered(model.requests[0])
    decided = [(d.decision, d.tool) for d in events if isinstance(d, Decided)]
    assert decided != [("not_covered", None)]

    model = small_model(
        "call:list_my_orders", arguments="{}", answer='{"answer": "You have SO-1002, shipped."}'
    )
    events = await ask(listing, settings, model, "What orders have I got open at the moment?")
    decided = [(d.decision, d.tool) for d in events if isinstance(d, Decided)]
    assert decided[0] == ("call", "list_my_orders")
    assert events[-1].answer.text == "You have SO-1002, shipped."  # type: ignore[attr-defined]
