"""A message that gives an identifier (issue 20, fifth round): a lookup or an action on
that thing is what the user wants unless the message also asks how things work; which
of the tools that take the id is chosen by meaning (the knowledge embedder), leaning
to the lookup; the call's arguments are the message's own values when they are all it
needs. Scripted small models, the shop copilot, the real local embedder."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot import given_ids
from pilothouse.copilot.asked_slots import values
from pilothouse.copilot.events import Decided
from pilothouse.copilot.user_intent import asks_how_it_works
from pilothouse.knowledge.embeddings import Vector
from pilothouse.storage.traces import TraceStore
from pilothouse.tools import tool
from pilothouse.tracing import attributes as A
from tests.copilot.test_asking_for_ids import order_status
from tests.copilot.test_grounded_args import shop_state
from tests.copilot.test_stepped_turns import ask, shop, small_model, step_of

__all__ = ["shop"]  # the fixture


def decided(events: Sequence[object]) -> list[tuple[str, str | None, str | None]]:
    return [(d.decision, d.tool, d.forced) for d in events if isinstance(d, Decided)]


@pytest.mark.parametrize(
    ("message", "how"),
    [
        # A lookup or an action on the thing.
        ("Where have we got to with HD-2001?", False),
        ("Could you chase SO-2002 for me? It is late.", False),
        ("Tell me what's going on with SO-2003.", False),
        ("I logged HD-2001 yesterday - can you check if someone is on it?", False),
        ("so-2002 please", False),
        ("Has SO-2002 left the warehouse?", False),
        # The thing's name before its id is no kind of thing ("are returns ...").
        ("Has order SO-2002 been delivered yet?", False),
        ("Is ticket HD-2001 closed?", False),
        # A question about how things work that names the thing.
        ("SO-2002 came today. Are returns free?", True),
        ("HD-2001 is a P3. How soon should someone call me?", True),
        ("What does the status 'on hold' mean on HD-2001?", True),
        ("Which courier do you use for orders like SO-2002?", True),
        ("If SO-2002 arrives damaged, what do I do?", True),
        ("Can I still return SO-2002?", True),
    ],
)
def test_a_message_with_an_id_asks_how_things_work_only_in_a_question_about_them(
    message: str, how: bool
) -> None:
    assert asks_how_it_works(message) is how


# --- choosing among the tools that take the id -------------------------------------


@tool(requires_approval=True)
def refund(order_id: str) -> str:
    """Refund an order.

    Args:
        order_id: The order number, e.g. SO-1001.
    """
    return "refunded"


@tool(requires_approval=True)
def exchange(order_id: str) -> str:
    """Exchange an order.

    Args:
        order_id: The order number, e.g. SO-1001.
    """
    return "exchanged"


class Planar:
    """An embedder on a plane: the message at a fixed angle, each tool's text where
    `place` puts it (cosine = the dot product of unit vectors)."""

    model_id, dimensions = "planar", 2

    def __init__(self, place: dict[str, float]):
        self.place = place  # tool name -> cosine with the message

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        vectors: list[Vector] = []
        for text in texts:
            name = next((n for n in self.place if text.startswith(n.replace("_", " "))), None)
            if name is None:
                vectors.append([1.0, 0.0])
            else:
                cosine = self.place[name]
                vectors.append([cosine, (1 - cosine**2) ** 0.5])
        return vectors


async def test_an_action_is_chosen_over_the_lookup_only_when_clearly_nearer() -> None:
    both = [order_status, refund]
    near = Planar({"order_status": 0.30, "refund": 0.30 + given_ids.MARGIN + 0.02})
    chosen = await given_ids.choose("Money back for SO-2002 please", both, near)
    assert (chosen.tool, chosen.why) == (refund, "nearest")
    # Nearer, but by less than the margin: the lookup (a wrong refund costs more).
    weak = Planar({"order_status": 0.30, "refund": 0.30 + given_ids.MARGIN - 0.02})
    chosen = await given_ids.choose("SO-2002 please", both, weak)
    assert (chosen.tool, chosen.why) == (order_status, "lookup")
    assert chosen.similarities == pytest.approx(weak.place)
    # The lookup nearest: the lookup.
    chosen = await given_ids.choose("SO-2002?", both, Planar({"order_status": 0.5, "refund": 0.2}))
    assert chosen.tool is order_status


async def test_without_an_embedder_the_lookup_or_else_the_model_chooses() -> None:
    chosen = await given_ids.choose("SO-2002", [order_status, refund], None)
    assert (chosen.tool, chosen.why) == (order_status, "lookup")
    chosen = await given_ids.choose("SO-2002", [refund, exchange], None)
    assert (chosen.tool, chosen.why) == (None, "model")
    # Two actions and no lookup: the nearer one, whatever the margin.
    chosen = await given_ids.choose(
        "SO-2002", [refund, exchange], Planar({"refund": 0.2, "exchange": 0.21})
    )
    assert chosen.tool is exchange


def test_a_bare_year_is_not_an_id() -> None:
    message = "I bought it in 2025, is it under warranty?"
    assert given_ids.wanted(message, "question", [order_status, refund], set()) == ()
    assert given_ids.wanted("Is 3031 here yet?", "question", [order_status], set()) == (
        order_status,
    )


@pytest.mark.parametrize(
    "message",
    [
        "It weighs 120 pounds. Can it hang on a plasterboard wall?",
        "Does the 2400 model work with a heat pump?",
        "Is model 2400 still sold?",
        "I paid £120 for it, and it stopped working.",
        "It cost 1,250 dollars, so I want it fixed.",
        "The battery is 2400mAh, how long will it last?",
        "Will it heat a room of 300 square feet?",
        "Please send back the 500 ml bottle.",
        "It ran for 720 hours before it failed.",
    ],
)
def test_a_quantity_a_price_or_a_model_number_is_no_id(message: str) -> None:
    assert given_ids.wanted(message, "question", [order_status, refund], set()) == ()
    assert given_ids.wanted(message, "request", [order_status, refund], set()) == ()


@pytest.mark.parametrize(
    ("message", "given"),
    [
        ("Is 3031 here yet?", ["3031"]),
        ("Where is order 2400?", ["2400"]),
        ("What about 4501?", ["4501"]),
        ("1002 please", ["1002"]),
        ("My order 2400 weighs 120 pounds and has not come.", ["2400"]),
        ("The order for the 2400 model is 3310.", ["3310"]),
    ],
)
def test_a_bare_number_where_an_id_is_asked_about_is_one(message: str, given: list[str]) -> None:
    assert values(message, order_status, "order_id") == given
    assert given_ids.wanted(message, "question", [order_status], set()) == (order_status,)


def test_the_calls_arguments_are_the_messages_own_values_when_they_are_all_it_needs() -> None:
    assert given_ids.arguments("Please check so-2001 and SO-2003.", order_status) == [
        {"order_id": "so-2001"},
        {"order_id": "SO-2003"},
    ]
    assert given_ids.arguments("Please check my order.", order_status) is None


# --- through the stepped turn (the shop: order_status, request_return, add_note) ----


async def test_a_synonym_of_a_return_reaches_the_return_and_waits_for_approval(
    shop: Path, settings: Settings
) -> None:
    model = small_model(
        "call:order_status",  # what the 0.5B chose, were it asked
        arguments='{"order_id": "SO-2002", "reason": "it arrived broken"}',
        answer='{"answer": "Waiting for approval."}',
    )
    events = await ask(shop, settings, model, "Could you take SO-2002 back? It arrived broken.")
    assert decided(events) == [("call", "request_return", "given_id")]
    [pending] = events[-1].answer.pending  # type: ignore[attr-defined]
    assert pending.call.name == "request_return"
    assert pending.call.arguments["order_id"] == "SO-2002"
    store = TraceStore(settings.database_path)
    [decide] = [s for s in store.get_run(events[-1].answer.run_id).spans if s.kind == "decision"]  # type: ignore[attr-defined]
    store.close()
    assert decide.attributes[A.DECISION_OPTIONS] == ["call:order_status", "call:request_return"]
    assert decide.attributes[A.DECISION_CHOSEN_BY] == "nearest"
    near = json.loads(str(decide.attributes[A.DECISION_SIMILARITY]))
    assert near["request_return"] - near["order_status"] >= given_ids.MARGIN


async def test_a_request_that_names_no_tools_action_is_a_lookup(
    shop: Path, settings: Settings
) -> None:
    model = small_model("answer", answer='{"answer": "It has shipped."}')
    events = await ask(shop, settings, model, "Could you chase SO-2002 for me?")
    assert decided(events) == [("call", "order_status", "given_id")]
    assert shop_state(shop)["looked_up"] == ["SO-2002"] and shop_state(shop)["returns"] == []
    # No decision and no arguments step: the answer step is the only model request.
    assert [step_of(r).split(".")[0] for r in model.requests] == ["Step: answer"]


async def test_two_ids_are_two_lookups(shop: Path, settings: Settings) -> None:
    model = small_model("answer", answer='{"answer": "Both have shipped."}')
    events = await ask(shop, settings, model, "Please look at so-2001 and SO-2003 for me.")
    assert shop_state(shop)["looked_up"] == ["so-2001", "SO-2003"]
    assert [o.call.arguments for o in events[-1].answer.tool_calls] == [  # type: ignore[attr-defined]
        {"order_id": "so-2001"},
        {"order_id": "SO-2003"},
    ]


@pytest.mark.parametrize(
    ("message", "decision", "untouched"),
    [
        # A state question is a lookup, even when it mentions the action.
        (
            "Where has SO-2002 got to? I may want to send it back.",
            ("call", "order_status", "given_id"),
            "returns",
        ),
        # A question about how things work that names an id is the model's to decide.
        (
            "SO-2002 is late. How much does express delivery cost?",
            ("answer", None, None),
            "looked_up",
        ),
    ],
)
async def test_what_a_question_that_names_an_id_is_decided_as(
    shop: Path, settings: Settings, message: str, decision: tuple[str, ...], untouched: str
) -> None:
    model = small_model("answer", answer='{"sources": [1], "answer": "It has shipped."}')
    events = await ask(shop, settings, model, message)
    assert decided(events) == [decision]
    assert shop_state(shop)[untouched] == []
