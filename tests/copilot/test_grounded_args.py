"""Grounded arguments: a call whose identifying value nobody gave never runs, is never
offered for approval, and the model is told which value was missing; values the user
gave (in any spelling), earlier tool results and bindings pass; warn and off modes;
every problem is a span."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.copilot.events import ApprovalRequired, ToolCallBlocked, ToolCallFinished
from pilothouse.copilot.grounded_args import Evidence, check_call, evidence_from
from pilothouse.models import FunctionModel, ScriptedModel, tool_call
from pilothouse.storage.traces import TraceStore
from pilothouse.tools import tool
from pilothouse.tracing import attributes as A
from pilothouse.types import Message, ModelRequest, ToolCallPart, ToolResultPart
from tests.copilot.conftest import ask_in_turn

SHOP_TOOLS = '''
from pilothouse.tools import tool

STATE = {"looked_up": [], "returns": [], "notes": []}


@tool(read_only=True)
def order_status(order_id: str) -> dict:
    """Look up an order's status.

    Args:
        order_id: The order number, e.g. SO-1001.
    """
    STATE["looked_up"].append(order_id)
    return {"order_id": order_id, "status": "shipped", "next": "SO-2002"}


@tool(requires_approval=True)
def request_return(order_id: str, reason: str) -> str:
    """Start a return for an order.

    Args:
        order_id: The order number, e.g. SO-1001.
        reason: Why, in the customer's words.
    """
    STATE["returns"].append(order_id)
    return "RMA-5001"


@tool(read_only=True)
def add_note(summary: str) -> str:
    """Add a note to the customer's file.

    Args:
        summary: A short title you write from the user's words.
    """
    STATE["notes"].append(summary)
    return "noted"
'''

SHOP = """\
name: shop
instructions: You are the shop assistant.
knowledge:
  sources: [knowledge]
  grounding: prefer
tools:
  - python: tools.py
    functions: [order_status, request_return, add_note]
    {extra}
limits: {{max_tool_steps: 3}}
memory: {{window: 6, summarize: false}}
"""


def make_shop(tmp_path: Path, definition: str = SHOP.format(extra="")) -> Path:
    """The shop copilot: a returns FAQ and the order tools."""
    folder = tmp_path / "shop"
    (folder / "knowledge").mkdir(parents=True)
    (folder / "knowledge/returns.md").write_text("# Returns\n\nReturns are free within 30 days.\n")
    (folder / "tools.py").write_text(SHOP_TOOLS)
    (folder / "copilot.yaml").write_text(definition)
    return folder


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return make_shop(tmp_path)


def shop_state(folder: Path) -> dict[str, list[str]]:
    module = next(
        m for m in sys.modules.values() if getattr(m, "__file__", None) == str(folder / "tools.py")
    )
    return module.STATE  # type: ignore[no-any-return]


def tool_results(request: ModelRequest) -> list[ToolResultPart]:
    return [r for m in request.messages for r in m.tool_results]


# --- the check itself ---------------------------------------------------------------


def test_values_match_whatever_the_spelling_and_numbers_keep_their_prefix() -> None:
    evidence = Evidence(["where is my order so 1002?", "ticket 1001 please", "mail jo@x.example"])
    for given in ("SO-1002", "so1002", "SO 1002", "HD-1001", "1001", "jo@x.example"):
        assert evidence.gives(given), given
    for invented in ("SO-1003", "12345", "SO-10021", "ann@x.example", "HD-100"):
        assert not evidence.gives(invented), invented
    assert evidence.has_identifier
    assert not Evidence(["How long does installation of the T2 on floor 4 take?"]).has_identifier
    # A quantity, a price or a model number is no identifier; a bare number asked about is.
    assert not Evidence(["Does the 2400 model fit? It weighs 120 pounds."]).has_identifier
    assert Evidence(["Is 3031 here yet?"]).has_identifier


def test_a_quantity_the_user_wrote_grounds_no_id() -> None:
    # An identifying value must be one the user gave; "120 pounds" is a weight.
    said = ["It weighs 120 pounds.", "I paid £120.50 for it.", "It cost 1,250 dollars."]
    evidence = evidence_from(said[2], [Message.user(t) for t in said[:2]], ())
    for value in ("120", "SO-120", "120.50", "50", "1250", "250", "SO-1250"):
        assert not evidence.gives(value), value
    # A bare number with no unit, price or model word is one, in any spelling.
    evidence = evidence_from("Is 3031 here yet? Where is order 2400?", [], ())
    for value in ("3031", "SO-3031", "2400", "SO-2400"):
        assert evidence.gives(value), value
    # A tool's result is taken as written: a number it returned may be looked up.
    run = [Message.tool(ToolResultPart("c1", "list_orders", "Order 4501 weighs 120 kg"))]
    evidence = evidence_from("And that one?", [], run)
    assert evidence.gives("4501") and evidence.gives("120")


def test_the_assistants_words_are_not_evidence_but_users_and_tool_results_are() -> None:
    conversation = [
        Message.user("Where is my order?"),
        Message.assistant("Please give me your order number, like SO-1234."),
    ]
    run = [
        Message.tool(ToolResultPart("c1", "list_orders", '{"orders": ["SO-7788"]}')),
    ]
    evidence = evidence_from("It is the one from May.", conversation, run, bindings=["ACME-9"])
    assert not evidence.gives("SO-1234")
    assert evidence.gives("SO-7788") and evidence.gives("ACME-9")


async def test_descriptions_used_as_values_are_caught_but_quoted_examples_are_not(
    shop: Path, settings: Settings
) -> None:
    copilot = await Copilot.open(shop, settings=settings, models=[ScriptedModel([])])
    try:
        note = copilot.toolset.get("add_note")
        status = copilot.toolset.get("order_status")
        assert note is not None and status is not None
        evidence = Evidence(["please note that my parcel is late, order SO-1001"])
        copied = ToolCallPart(
            "1", "add_note", {"summary": "A short title you write from the user's words."}
        )
        fine = ToolCallPart("2", "add_note", {"summary": "Parcel is late"})
        example = ToolCallPart("3", "order_status", {"order_id": "SO-1001"})
        assert [p.problem for p in check_call(note, copied, evidence)] == ["description"]
        assert check_call(note, fine, evidence) == []
        assert check_call(status, example, evidence) == []  # the user did give it here
    finally:
        await copilot.aclose()


# --- in a run ----------------------------------------------------------------------


async def test_an_invented_id_never_reaches_the_tool_and_the_model_hears_why(
    shop: Path, settings: Settings
) -> None:
    model = ScriptedModel(
        [tool_call("order_status", {"order_id": "SO-1001"}), "What is your order number?"]
    )
    copilot = await Copilot.open(shop, settings=settings, models=[model])
    try:
        events = [e async for e in copilot.stream("Where is my order?")]
    finally:
        await copilot.aclose()
    assert shop_state(shop)["looked_up"] == []
    assert not any(isinstance(e, ToolCallFinished) for e in events)
    [blocked] = [e for e in events if isinstance(e, ToolCallBlocked)]
    assert blocked.call.arguments == {"order_id": "SO-1001"}
    [result] = tool_results(model.requests[1])
    assert result.is_error and "did not give order_id 'SO-1001'" in result.content
    assert "Ask the user for the order id" in result.content
    answer = events[-1].answer  # type: ignore[union-attr]
    assert answer.text == "What is your order number?" and answer.tool_calls == ()
    store = TraceStore(settings.database_path)
    run = store.get_run(answer.run_id)
    store.close()
    [span] = [s for s in run.spans if s.attributes.get(A.TOOL_BLOCKED)]
    assert span.name == "blocked_tool order_status" and span.status == "error"
    assert span.attributes[A.GROUNDED_PROBLEMS] == [
        {"parameter": "order_id", "value": "SO-1001", "problem": "not_given"}
    ]


async def test_a_quantity_given_as_an_order_number_never_reaches_the_tool(
    shop: Path, settings: Settings
) -> None:
    model = ScriptedModel(
        [tool_call("order_status", {"order_id": "120"}), "What is your order number?"]
    )
    copilot = await Copilot.open(shop, settings=settings, models=[model])
    try:
        events = [e async for e in copilot.stream("It weighs 120 pounds. Where is my order?")]
    finally:
        await copilot.aclose()
    assert shop_state(shop)["looked_up"] == []
    [blocked] = [e for e in events if isinstance(e, ToolCallBlocked)]
    assert blocked.call.arguments == {"order_id": "120"}
    [result] = tool_results(model.requests[1])
    assert "did not give order_id '120'" in result.content


async def test_an_invented_id_is_never_offered_for_approval(shop: Path, settings: Settings) -> None:
    model = ScriptedModel(
        [
            tool_call("request_return", {"order_id": "SO-1001", "reason": "too big"}),
            "Which order would you like to return?",
        ]
    )
    copilot = await Copilot.open(shop, settings=settings, models=[model])
    try:
        events = [e async for e in copilot.stream("How much does express delivery cost?")]
    finally:
        await copilot.aclose()
    assert not any(isinstance(e, ApprovalRequired) for e in events)
    assert events[-1].answer.status == "completed"  # type: ignore[union-attr]
    assert shop_state(shop)["returns"] == []


async def test_ids_the_user_gave_run_and_need_approval_as_usual(
    shop: Path, settings: Settings
) -> None:
    model = ScriptedModel(
        [
            tool_call("order_status", {"order_id": "SO-1002"}),
            "It has shipped.",
            tool_call("request_return", {"order_id": "so-1002", "reason": "too big"}, id="r"),
        ]
    )
    _, second = await ask_in_turn(
        shop, settings, model, "Where is my order so 1002?", "Return it please, it is too big"
    )
    assert shop_state(shop)["looked_up"] == ["SO-1002"]
    assert second.status == "awaiting_approval"  # the id is in the conversation
    assert [p.call.arguments["order_id"] for p in second.pending] == ["so-1002"]


async def test_ids_from_an_earlier_tool_result_pass(shop: Path, settings: Settings) -> None:
    model = ScriptedModel(
        [
            tool_call("order_status", {"order_id": "SO-1002"}),
            tool_call("order_status", {"order_id": "SO-2002"}, id="next"),
            "Both shipped.",
        ]
    )
    copilot = await Copilot.open(shop, settings=settings, models=[model])
    try:
        answer = await copilot.ask("Where is SO-1002, and the order after it?")
    finally:
        await copilot.aclose()
    assert shop_state(shop)["looked_up"] == ["SO-1002", "SO-2002"]
    assert answer.text == "Both shipped."


@pytest.mark.parametrize(("mode", "runs"), [("warn", True), ("off", True), ("strict", False)])
async def test_warn_runs_and_traces_off_runs_strict_blocks(
    shop: Path, settings: Settings, mode: str, runs: bool
) -> None:
    (shop / "copilot.yaml").write_text(SHOP.format(extra=f"grounded: {{order_status: {mode}}}"))
    model = ScriptedModel([tool_call("order_status", {"order_id": "SO-1001"}), "ok"])
    copilot = await Copilot.open(shop, settings=settings, models=[model])
    try:
        answer = await copilot.ask("Where is my order?")
    finally:
        await copilot.aclose()
    assert (shop_state(shop)["looked_up"] == ["SO-1001"]) is runs
    store = TraceStore(settings.database_path)
    spans = [s for s in store.get_run(answer.run_id).spans if A.GROUNDED_MODE in s.attributes]
    store.close()
    assert [s.attributes[A.GROUNDED_MODE] for s in spans] == ([] if mode == "off" else [mode])


async def test_a_bound_value_is_never_checked(shop: Path, settings: Settings) -> None:
    (shop / "copilot.yaml").write_text(
        SHOP.format(extra="bindings: {order_id: SO-4242}").replace(
            "functions: [order_status, request_return, add_note]", "functions: [order_status]"
        )
    )
    model = FunctionModel(
        lambda r: "done" if tool_results(r) else tool_call("order_status", {}), model_id="t:f"
    )
    copilot = await Copilot.open(shop, settings=settings, models=[model])
    try:
        await copilot.ask("What's up with my order?")
    finally:
        await copilot.aclose()
    assert shop_state(shop)["looked_up"] == ["SO-4242"]


def test_the_tool_decorator_keeps_the_mode() -> None:
    @tool(read_only=True, grounded="off")
    def anything(order_id: str) -> Any:
        """Anything."""
        return order_id

    assert anything.grounded == "off"
