"""The stepped turn of models with emulated tools: the decision step's four outcomes
(answer, call, ask, not covered), tools held back when nothing the user gave could
fill their ids, the forced question after a blocked call, citations the model names
(made markers, validated), prompts that share their prefix, and the decision traced."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.copilot.answer_filter import NO_ANSWER_LEFT
from pilothouse.copilot.events import Decided, ToolCallBlocked
from pilothouse.copilot.shown_answer import NOT_COVERED
from pilothouse.models import FunctionModel
from pilothouse.models.profiles import ModelProfile
from pilothouse.storage.traces import TraceStore
from pilothouse.tracing import attributes as A
from pilothouse.types import ModelRequest, TextDelta
from tests.copilot.test_grounded_args import SHOP, SHOP_TOOLS, shop_state, tool_results

SMALL = ModelProfile(family="test", native_tools=False, json_schema=True, input_price=None)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    folder = tmp_path / "shop"
    (folder / "knowledge").mkdir(parents=True)
    (folder / "knowledge/shipping.md").write_text(
        "# Shipping\n\n## Express\n\nExpress delivery costs 6 pounds and arrives the next "
        "working day.\n\n## Returns\n\nReturns are free within 30 days of delivery.\n"
    )
    (folder / "tools.py").write_text(SHOP_TOOLS)
    (folder / "copilot.yaml").write_text(
        SHOP.format(extra="").replace("grounding: prefer", "grounding: strict")
    )
    return folder


def step_of(request: ModelRequest) -> str:
    """The step a request ends with (its last line)."""
    return request.messages[-1].text.rsplit("\n", 1)[-1]


Reply = Callable[[ModelRequest], str]


def small_model(decision: str, **replies: str) -> FunctionModel:
    """A small model: `decision` at the decision step, then `arguments`, `answer`."""

    def reply(request: ModelRequest) -> str:
        step = step_of(request)
        again = step.startswith("Step: answer again")
        assert (request.output_schema is None) == again, "every step but a retry is constrained"
        if step.startswith("Step: decide"):
            return json.dumps({"decision": decision})
        if step.startswith("Step: arguments"):
            return replies["arguments"]
        return replies.get("answer", '{"answer": "?"}')

    return FunctionModel(reply, model_id="local:small", profile=SMALL)


async def ask(
    folder: Path, settings: Settings, model: FunctionModel, question: str
) -> list[object]:
    copilot = await Copilot.open(folder, settings=settings, models=[model])
    try:
        return [e async for e in copilot.stream(question)]
    finally:
        await copilot.aclose()


async def test_answer_cites_the_passages_the_model_names(shop: Path, settings: Settings) -> None:
    model = small_model("answer", answer='{"sources": [1], "answer": "Express costs 6 pounds."}')
    events = await ask(shop, settings, model, "How much is express delivery for SO-1002?")
    answer = events[-1].answer  # type: ignore[attr-defined]
    assert answer.text == "Express costs 6 pounds. [1]"
    [citation] = answer.citations
    assert not citation.inferred and citation.headings[-1] == "Express"
    decide, answer_step = model.requests
    assert [d.decision for d in events if isinstance(d, Decided)] == ["answer"]
    # Constrained: the sources can only be passages the model was given.
    sources = answer_step.output_schema.schema["properties"]["sources"]  # type: ignore[union-attr]
    assert sources["minItems"] == 1 and set(sources["items"]["enum"]) <= {1, 2, 3, 4}
    # The two requests differ only in their last line: the prefix is reused.
    first, second = ([m.text for m in r.messages] for r in (decide, answer_step))
    assert first[:-1] == second[:-1]
    assert first[-1].rsplit("\n\n", 1)[0] == second[-1].rsplit("\n\n", 1)[0]
    assert "# Functions" in decide.messages[0].text and "SO-NNNN" in decide.messages[0].text
    assert "SO-1001" not in decide.messages[0].text  # nothing to copy


async def test_a_marker_to_no_passage_is_removed_and_counted(
    shop: Path, settings: Settings
) -> None:
    model = small_model(
        "answer", answer='{"sources": [1], "answer": "Express costs 6 pounds [1][7]."}'
    )
    events = await ask(shop, settings, model, "How much is express delivery?")
    answer = events[-1].answer  # type: ignore[attr-defined]
    assert answer.text == "Express costs 6 pounds [1]."
    store = TraceStore(settings.database_path)
    run = store.get_run(answer.run_id)
    store.close()
    assert run.spans[0].attributes[A.CITATIONS_INVALID] == 1
    assert run.spans[0].attributes[A.CITATIONS_MODEL] == [1]
    [guard] = [s for s in run.spans if s.kind == "guard"]
    assert guard.attributes[A.CITATIONS_INVALID] == [7]


async def test_call_then_answer_from_the_results(shop: Path, settings: Settings) -> None:
    model = small_model(
        "call:order_status",
        arguments='{"order_id": "SO-1002"}',
        answer='{"answer": "SO-1002 has shipped."}',
    )
    # The model decides: the message gives no id (its earlier turn is not there).
    events = await ask(shop, settings, model, "Could you check the order I placed for me?")
    decided = [(d.decision, d.tool) for d in events if isinstance(d, Decided)]
    assert decided == [("ask", None)]  # no id: asked for (test_asking_for_ids)
    # An id given: the lookup is called with it, decided and written by the runtime
    # (copilot/given_ids.py), and the answer step reads its result.
    model = small_model("answer", answer='{"answer": "SO-1002 has shipped."}')
    events = await ask(shop, settings, model, "Could you check SO-1002 for me?")
    answer = events[-1].answer  # type: ignore[attr-defined]
    assert shop_state(shop)["looked_up"] == ["SO-1002"]
    assert answer.text == "SO-1002 has shipped."
    [final] = model.requests
    assert "shipped" in tool_results(final)[0].content
    decided = [(d.decision, d.tool) for d in events if isinstance(d, Decided)]
    assert decided == [("call", "order_status")]


async def test_ask_writes_a_question_and_calls_nothing(shop: Path, settings: Settings) -> None:
    model = small_model("ask", answer='{"answer": "What is your order number?"}')
    events = await ask(shop, settings, model, "What should I do about SO-1002 and the other one?")
    answer = events[-1].answer  # type: ignore[attr-defined]
    assert answer.text == "What is your order number?" and answer.tool_calls == ()
    assert step_of(model.requests[-1]).startswith('Step: answer. Reply {"answer": "..."} with one')


async def test_not_covered_says_so_and_offers_what_it_can_do(
    shop: Path, settings: Settings
) -> None:
    model = small_model("not_covered")
    events = await ask(shop, settings, model, "Do you sell garden furniture?")
    answer = events[-1].answer  # type: ignore[attr-defined]
    assert answer.text.startswith(NOT_COVERED)
    assert "I can look up an order's status; start a return for an order" in answer.text
    assert len(model.requests) == 1 and answer.citations == ()


async def test_id_tools_are_not_offered_when_the_user_gave_no_id(
    shop: Path, settings: Settings
) -> None:
    model = small_model("ask", answer='{"answer": "Which order?"}')
    await ask(shop, settings, model, "Please add a note: express delivery cost too much.")
    choices = model.requests[0].output_schema.schema["properties"]["decision"]["enum"]  # type: ignore[union-attr]
    assert choices == ["answer", "call:add_note", "ask", "not_covered"]
    model = small_model("ask", answer='{"answer": "Which order?"}')
    await ask(shop, settings, model, "What should I do if SO-1002 is late?")
    choices = model.requests[0].output_schema.schema["properties"]["decision"]["enum"]  # type: ignore[union-attr]
    assert "call:order_status" in choices


def offered(request: ModelRequest) -> list[str]:
    return request.output_schema.schema["properties"]["decision"]["enum"]  # type: ignore[no-any-return,union-attr]


async def test_a_question_the_passages_answer_is_answered_without_a_decision(
    shop: Path, settings: Settings
) -> None:
    # Knowledge first. The 0.5B chose id-less tools (create_ticket, list_my_tickets) on
    # handbook questions, and `not_covered` or `ask` on some whose passages answered them.
    model = small_model("call:add_note", answer='{"sources": [1], "answer": "6 pounds."}')
    events = await ask(shop, settings, model, "How much does express delivery cost?")
    assert [step_of(r).split(".")[0] for r in model.requests] == ["Step: answer"]
    assert shop_state(shop)["notes"] == []
    answer = events[-1].answer  # type: ignore[attr-defined]
    assert answer.text == "6 pounds. [1]" and answer.tool_calls == ()
    assert [(d.decision, d.forced) for d in events if isinstance(d, Decided)] == [
        ("answer", "knowledge_first")
    ]
    store = TraceStore(settings.database_path)
    [decide] = [s for s in store.get_run(answer.run_id).spans if s.kind == "decision"]
    store.close()
    assert decide.attributes[A.DECISION_READING] == "question"
    assert decide.attributes[A.DECISION_HELD_BACK] == ["order_status", "request_return", "add_note"]
    assert decide.attributes[A.DECISION_FORCED] == "knowledge_first"


async def test_a_question_about_the_state_of_their_own_record_asks_for_its_id(
    shop: Path, settings: Settings
) -> None:
    # order_status is held back (no id): the turn asks for the order number, undecided.
    model = small_model("answer", answer='{"answer": "What is your order number?"}')
    events = await ask(shop, settings, model, "When does my order arrive by express delivery?")
    [request] = model.requests
    assert "one short question asking the user for the order id" in step_of(request)
    assert events[-1].answer.text == "What is your order number?"  # type: ignore[attr-defined]
    assert [(d.decision, d.forced) for d in events if isinstance(d, Decided)] == [
        ("ask", "missing_id")
    ]


async def test_a_question_is_offered_no_tool_it_does_not_ask_for(
    shop: Path, settings: Settings
) -> None:
    # Nothing relevant found (strict): a decision, but not for add_note.
    model = small_model("call:add_note")
    events = await ask(shop, settings, model, "What is the weather in Paris tomorrow?")
    assert offered(model.requests[0]) == ["ask", "not_covered"]
    assert shop_state(shop)["notes"] == []
    assert events[-1].answer.text.startswith(NOT_COVERED)  # type: ignore[attr-defined]


async def test_a_tool_that_changes_data_is_offered_only_for_a_request(
    shop: Path, settings: Settings
) -> None:
    # An id in a question offers the lookup, not the return.
    model = small_model("answer", answer='{"sources": [1], "answer": "Within 30 days."}')
    await ask(shop, settings, model, "I got SO-1002 last week. How long do I have to return it?")
    assert offered(model.requests[0]) == ["answer", "call:order_status", "ask", "not_covered"]
    model = small_model(
        "call:order_status",
        arguments='{"order_id": "SO-1002", "reason": "too big"}',
        answer='{"answer": "Waiting for approval."}',
    )
    events = await ask(shop, settings, model, "Please start a return for SO-1002, it is too big.")
    # The verb names the tool ("Start a return for an order."), the id is given: it is
    # called without a decision; the model writes the arguments (a reason too).
    decided = [(d.decision, d.tool, d.forced) for d in events if isinstance(d, Decided)]
    assert decided == [("call", "request_return", "given_id")]
    [arguments] = model.requests  # then the call waits for its approval
    schema = arguments.output_schema.schema  # type: ignore[union-attr]
    assert schema["properties"]["order_id"] == {
        "type": "string",
        "description": "The order number, e.g. SO-1001.",
    }


async def test_a_yes_to_the_copilots_offer_is_a_request(shop: Path, settings: Settings) -> None:
    decisions = iter(["ask", "call:add_note"])
    model = small_model("", arguments='{"summary": "Late parcel"}', answer='{"answer": "Noted."}')
    scripted = model.function

    def reply(request: ModelRequest) -> object:
        if step_of(request).startswith("Step: decide"):
            return json.dumps({"decision": next(decisions)})
        if "one short question" in step_of(request):
            return '{"answer": "Shall I add a note about it to your file?"}'
        return scripted(request)

    model.function = reply  # type: ignore[assignment]
    copilot = await Copilot.open(shop, settings=settings, models=[model])
    try:
        first = await copilot.ask("My parcel is late.")
        assert "call:add_note" not in offered(model.requests[0])  # a statement
        assert first.text == "Shall I add a note about it to your file?"
        model.requests.clear()
        second = await copilot.ask("Yes.", conversation_id=first.conversation_id)
    finally:
        await copilot.aclose()
    assert "call:add_note" in offered(model.requests[0])
    assert shop_state(shop)["notes"] == ["Late parcel"] and second.text == "Noted."


async def test_nothing_relevant_under_strict_grounding_offers_no_answer(
    shop: Path, settings: Settings
) -> None:
    model = small_model("not_covered")
    await ask(shop, settings, model, "What is the weather in Paris tomorrow?")
    decide = model.requests[0]
    assert "Passages from the knowledge base" not in json.dumps([m.text for m in decide.messages])
    choices = decide.output_schema.schema["properties"]["decision"]["enum"]  # type: ignore[union-attr]
    assert "answer" not in choices and "not_covered" in choices


RETURN_WITH_ODD_NUMBER = "Please start a return for order 1234 5678, it is broken."


async def test_a_blocked_call_is_followed_by_a_question_for_the_missing_id(
    shop: Path, settings: Settings
) -> None:
    model = small_model(
        "call:order_status",
        arguments='{"order_id": "SO-1001", "reason": "broken"}',
        answer='{"answer": "What is your order number?"}',
    )
    events = await ask(shop, settings, model, RETURN_WITH_ODD_NUMBER)
    answer = events[-1].answer  # type: ignore[attr-defined]
    assert shop_state(shop)["returns"] == []
    assert any(isinstance(e, ToolCallBlocked) for e in events)
    # A request with what may be an order number calls the return at once; the model
    # wrote another number into its arguments.
    assert [(d.decision, d.forced) for d in events if isinstance(d, Decided)] == [
        ("call", "given_id"),
        ("ask", "blocked_call"),
    ]
    assert "the order id" in step_of(model.requests[-1])
    assert answer.text == "What is your order number?"


async def test_the_decision_is_a_span_with_its_options(shop: Path, settings: Settings) -> None:
    model = small_model("answer", answer='{"sources": [1], "answer": "6 pounds."}')
    events = await ask(shop, settings, model, "How much is express delivery for SO-1002?")
    store = TraceStore(settings.database_path)
    run = store.get_run(events[-1].answer.run_id)  # type: ignore[attr-defined]
    store.close()
    [decide] = [s for s in run.spans if s.kind == "decision"]
    assert decide.attributes[A.DECISION] == "answer"
    assert decide.attributes[A.DECISION_HELD_BACK] == ["request_return", "add_note"]
    assert [s.kind for s in run.spans if s.parent_id == decide.span_id] == ["model"]
    assert run.spans[0].attributes[A.RUN_DECISIONS] == ["answer"]


async def test_native_models_keep_one_request_with_the_tools(
    shop: Path, settings: Settings
) -> None:
    model = FunctionModel(lambda r: "6 pounds [1].", model_id="openai:big")
    events = await ask(shop, settings, model, "How much is express delivery?")
    assert len(model.requests) == 1 and model.requests[0].output_schema is None
    assert {t.name for t in model.requests[0].tools} == {
        "order_status",
        "request_return",
        "add_note",
    }
    assert not any(isinstance(e, Decided) for e in events)


async def test_the_decision_step_can_be_turned_off(shop: Path, settings: Settings) -> None:
    text = (shop / "copilot.yaml").read_text()
    (shop / "copilot.yaml").write_text(text + "model: {decision_step: off}\n")
    model = FunctionModel(lambda r: "6 pounds [1].", model_id="local:small", profile=SMALL)
    await ask(shop, settings, model, "How much is express delivery?")
    assert len(model.requests) == 1 and model.requests[0].tools


async def test_an_answer_that_copies_the_step_is_asked_again(
    shop: Path, settings: Settings
) -> None:
    # The 0.5B once answered a lookup with the step's own wording; then nothing was left.
    replies = iter(
        ['{"answer": "your answer to the question, from the function results"}', "It shipped."]
    )
    model = small_model("call:order_status", arguments='{"order_id": "SO-1002"}')
    scripted = model.function

    def reply(request: ModelRequest) -> object:
        return next(replies) if step_of(request).startswith("Step: answer") else scripted(request)

    model.function = reply  # type: ignore[assignment]
    events = await ask(shop, settings, model, "Where is my order SO-1002?")
    answer = events[-1].answer  # type: ignore[attr-defined]
    shown = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert answer.text == shown == "It shipped."
    again = model.requests[-1]
    assert step_of(again).startswith("Step: answer again.")
    assert again.messages[-2].text.startswith('{"answer": "your answer to the question')
    assert again.output_schema is None  # plain text: constrained, it copies the same words


async def test_an_answer_of_punctuation_alone_is_asked_again_then_excused(
    shop: Path, settings: Settings
) -> None:
    model = small_model("answer", answer='{"sources": [1], "answer": "..."}')
    events = await ask(shop, settings, model, "How much is express delivery?")
    answer = events[-1].answer  # type: ignore[attr-defined]
    assert answer.text == NO_ANSWER_LEFT
    assert [step_of(r).split(".")[0] for r in model.requests] == [
        "Step: answer",
        "Step: answer again",
    ]


async def test_an_ask_that_asks_nothing_is_not_shown(shop: Path, settings: Settings) -> None:
    # The 0.5B "asked" about an off-topic question by making up an answer.
    model = small_model("ask", answer='{"answer": "Our phone number is 123-456-7890."}')
    events = await ask(shop, settings, model, "What is your phone number?")
    answer = events[-1].answer  # type: ignore[attr-defined]
    shown = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert answer.text == shown and answer.text.startswith(NOT_COVERED)
    assert "123-456-7890" not in shown
    store = TraceStore(settings.database_path)
    [guard] = [s for s in store.get_run(answer.run_id).spans if s.kind == "guard"]
    store.close()
    assert guard.attributes[A.GUARD_REASONS] == ["not_a_question"]


async def test_after_a_blocked_call_an_ask_that_asks_nothing_becomes_a_plain_question(
    shop: Path, settings: Settings
) -> None:
    model = small_model(
        "call:order_status",
        arguments='{"order_id": "SO-1001", "reason": "broken"}',
        answer='{"answer": "Your order SO-1001 has shipped."}',
    )
    events = await ask(shop, settings, model, RETURN_WITH_ODD_NUMBER)
    answer = events[-1].answer  # type: ignore[attr-defined]
    assert answer.text == "Could you give me the order id?"
    assert shop_state(shop)["returns"] == []


async def test_an_ask_that_repeats_the_question_answers_from_the_passages(
    shop: Path, settings: Settings
) -> None:
    replies = iter(
        [
            '{"answer": "How much does express delivery cost for SO-1002?"}',
            '{"sources": [1], "answer": "Express costs 6 pounds."}',
        ]
    )
    model = small_model("ask")
    scripted = model.function

    def reply(request: ModelRequest) -> object:
        return next(replies) if step_of(request).startswith("Step: answer") else scripted(request)

    model.function = reply  # type: ignore[assignment]
    events = await ask(shop, settings, model, "How much does express delivery cost for SO-1002?")
    answer = events[-1].answer  # type: ignore[attr-defined]
    assert answer.text == "Express costs 6 pounds. [1]"
    assert [c.inferred for c in answer.citations] == [False]
