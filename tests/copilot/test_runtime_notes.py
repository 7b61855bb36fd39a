"""The runtime's notes never become the answer: a model that copies a note (a denied
approval, a blocked call, the step limit, a call that could not run) as its answer is
shown the note's plain sentence for the user instead, never the model-facing words;
streamed and not, on the native and the stepped path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.copilot import runtime_notes as notes
from pilothouse.copilot.answer_filter import AnswerFilter, InternalTexts, RunNotes
from pilothouse.copilot.events import RunEvent
from pilothouse.copilot.run_endings import STEP_LIMIT_NOTE
from pilothouse.copilot.tool_runner import Decision
from pilothouse.models import FunctionModel
from pilothouse.models.profiles import ModelProfile
from pilothouse.storage.traces import TraceStore
from pilothouse.tracing import attributes as A
from pilothouse.types import Message, ModelRequest, TextDelta, ToolCallPart, ToolResultPart
from tests.copilot.conftest import TOOLS
from tests.copilot.test_answer_filter import stream
from tests.copilot.test_grounded_args import SHOP, make_shop

SMALL = ModelProfile(family="test", native_tools=False, json_schema=True, input_price=None)

DENIED = "I did not start a return for an order, because it was declined (not needed)."
BLOCKED = "To look up an order's status, I need the order id from you. Could you give it to me?"
LIMIT = "I could not finish this: it needed more steps than I may take for one question."


def echo_model(call: ToolCallPart, *, stepped: bool = False) -> FunctionModel:
    """Asks for `call`, then answers with the newest runtime note it was sent, word for
    word (the tool result, or the step-limit message): what the 0.5B and 1.5B did."""

    def newest_note(request: ModelRequest) -> str:
        for message in reversed(request.messages):
            texts = [r.content for r in message.tool_results] or [message.text]
            for text in texts:
                if notes.notes_in(text):
                    return text
        return "No note."

    def native(request: ModelRequest) -> Message | str:
        if not any(m.tool_results for m in request.messages):
            return Message.assistant("", (call,))
        return newest_note(request)

    def steps(request: ModelRequest) -> str:
        step = request.messages[-1].text.rsplit("\n", 1)[-1]
        if step.startswith("Step: decide"):
            return json.dumps({"decision": f"call:{call.name}"})
        if step.startswith("Step: arguments"):
            return json.dumps(call.arguments)
        return json.dumps({"answer": newest_note(request)})

    if stepped:
        return FunctionModel(steps, model_id="local:small", profile=SMALL)
    return FunctionModel(native, model_id="test:echo")


async def answered(
    folder: Path, settings: Settings, model: FunctionModel, question: str, streamed: bool,
    deny: str | None = None,
) -> tuple[str, str, str]:  # fmt: skip
    """The answer's text, what the user was shown as it streamed, and the run id."""
    copilot = await Copilot.open(folder, settings=settings, models=[model])
    try:
        events: list[RunEvent] = []
        if deny is None and streamed:
            events = [e async for e in copilot.stream(question)]
            answer = events[-1].answer  # type: ignore[attr-defined]
        elif deny is None:
            answer = await copilot.ask(question)
        else:
            paused = await copilot.ask(question)
            assert paused.status == "awaiting_approval"
            call_id = paused.pending[0].call.id
            if streamed:
                decisions = {call_id: Decision(False, deny)}
                events = [e async for e in copilot.resume(paused.run_id, decisions)]
                answer = events[-1].answer  # type: ignore[attr-defined]
            else:
                answer = await copilot.approve(paused.run_id, deny=[call_id], note=deny)
    finally:
        await copilot.aclose()
    shown = "".join(e.text for e in events if isinstance(e, TextDelta))
    return answer.text, shown if streamed else answer.text, answer.run_id


@pytest.mark.parametrize("stepped", [False, True], ids=["native", "stepped"])
@pytest.mark.parametrize("streamed", [False, True], ids=["ask", "stream"])
async def test_a_denied_approval_echoed_is_said_plainly(
    tmp_path: Path, settings: Settings, streamed: bool, stepped: bool
) -> None:
    call = ToolCallPart("r1", "request_return", {"order_id": "SO-1002", "reason": "too big"})
    text, shown, run_id = await answered(
        make_shop(tmp_path), settings, echo_model(call, stepped=stepped),
        "Please return SO-1002, it is too big", streamed, deny="not needed",
    )  # fmt: skip
    assert text == shown == DENIED
    store = TraceStore(settings.database_path)
    spans = store.get_run(run_id).spans
    store.close()
    [guard] = [s for s in spans if s.kind == "guard"]
    assert guard.attributes[A.GUARD_REASONS] == ["runtime_note", "runtime_note"]


@pytest.mark.parametrize("stepped", [False, True], ids=["native", "stepped"])
@pytest.mark.parametrize("streamed", [False, True], ids=["ask", "stream"])
async def test_a_blocked_call_echoed_is_a_plain_question(
    tmp_path: Path, settings: Settings, streamed: bool, stepped: bool
) -> None:
    call = ToolCallPart("o1", "order_status", {"order_id": "SO-1001"})  # not the user's
    question, blocked = "Where is my order SO-1002?", BLOCKED
    if stepped:  # the runtime writes a lookup's id itself: the model writes a return's
        arguments = {"order_id": "SO-1001", "reason": "broken"}
        call = ToolCallPart("r1", "request_return", arguments)
        question = "Please start a return for SO-1002, it is broken."
        blocked = BLOCKED.replace("look up an order's status", "start a return for an order")
    text, shown, _ = await answered(
        make_shop(tmp_path), settings, echo_model(call, stepped=stepped), question, streamed
    )
    assert text == shown == blocked


@pytest.mark.parametrize("streamed", [False, True], ids=["ask", "stream"])
async def test_the_step_limit_echoed_is_said_plainly(
    tmp_path: Path, settings: Settings, streamed: bool
) -> None:
    shop = make_shop(
        tmp_path, SHOP.format(extra="").replace("max_tool_steps: 3", "max_tool_steps: 0")
    )
    call = ToolCallPart("n1", "add_note", {"summary": "late parcel"})
    text, shown, _ = await answered(
        shop, settings, echo_model(call), "Note that my parcel is late", streamed
    )
    assert text == shown == LIMIT


@pytest.mark.parametrize(
    ("call", "said"),
    [
        (
            ToolCallPart("c", "lookup", {}, raw_arguments="{term: oops"),
            "I could not look a term up in the asset register this time.",
        ),
        (
            ToolCallPart("c", "no_such_tool", {}),
            "I could not do that: it is not something I can do here.",
        ),
    ],
    ids=["not-json", "unknown-tool"],
)
@pytest.mark.parametrize("streamed", [False, True], ids=["ask", "stream"])
async def test_a_call_that_could_not_run_echoed_is_said_plainly(
    tmp_path: Path, settings: Settings, call: ToolCallPart, said: str, streamed: bool
) -> None:
    shop = make_shop(tmp_path)
    (shop / "tools.py").write_text(TOOLS)
    (shop / "copilot.yaml").write_text(
        SHOP.format(extra="").replace("order_status, request_return, add_note", "lookup, explode")
    )
    text, shown, _ = await answered(shop, settings, echo_model(call), "do it", streamed)
    assert text == shown == said


# --- the notes and the filter -------------------------------------------------------

WRITTEN = [
    notes.DENIED.write(action="open a helpdesk ticket", why=" (not now)"),
    notes.BLOCKED_NOT_GIVEN.write(
        action="look up a ticket", named="ticket_id 'HD-1001'", asks="ticket id"
    ),
    notes.BLOCKED_IN_TEXT.write(action="open a helpdesk ticket", named="description (P2725H)"),
    notes.BLOCKED_DESCRIPTION.write(action="open a helpdesk ticket", named="summary"),
    notes.NOT_RUN.write(action="open a helpdesk ticket"),
    STEP_LIMIT_NOTE,
    notes.UNKNOWN_TOOL.write(name="'x'", known="lookup"),
    notes.NOT_JSON.write(action="look a term up", excerpt="'{term: oops'"),
    notes.TIMED_OUT.write(action="look a term up", seconds="30"),
    notes.FAILED.write(action="look a term up", error="RuntimeError: the database\nis down"),
]


def test_every_kind_is_read_back_with_its_fields_and_its_plain_sentence_is_no_note() -> None:
    assert len(WRITTEN) == len(notes.KINDS)
    for text in WRITTEN:
        [note] = notes.notes_in(text)
        assert note.text == text and "\n" not in text
        run = RunNotes.of([Message.tool(ToolResultPart("c", "t", text, True))])
        assert run.find(note.said) is None, note.said  # the plain sentence is not the note
        assert "{" not in note.said and "Not done" not in note.said
    assert {n.kind for t in WRITTEN for n in notes.notes_in(t)} == set(notes.KINDS)


@pytest.mark.parametrize("text", WRITTEN)
def test_a_note_streamed_as_the_answer_becomes_its_plain_sentence(text: str) -> None:
    [note] = notes.notes_in(text)
    run = RunNotes.of([Message.user(text)])
    answer = AnswerFilter(InternalTexts.of([]), notes=run)
    stream(answer, text)
    assert answer.text == note.said and not answer.emptied


def test_an_answer_mostly_a_note_keeps_the_rest_and_says_the_note_once() -> None:
    text = notes.DENIED.write(action="open a helpdesk ticket", why="")
    run = RunNotes.of([Message.tool(ToolResultPart("c", "create_ticket", text, True))])
    answer = AnswerFilter(InternalTexts.of([]), notes=run)
    stream(answer, f"Error: {text} Anything else I can help with?")
    assert answer.text == (
        "I did not open a helpdesk ticket, because it was declined. Anything else I can help with?"
    )
    answer = AnswerFilter(InternalTexts.of([]), notes=run)
    stream(answer, "I did not open the ticket, since you said no. Anything else?")
    assert answer.text == "I did not open the ticket, since you said no. Anything else?"


def test_the_action_is_the_descriptions_first_sentence_when_it_reads_as_an_order() -> None:
    assert (
        notes.action_of("Open a new helpdesk ticket. Only when asked.")
        == "open a new helpdesk ticket"
    )
    assert notes.action_of("Look up an order's status.\n\nArgs: ...") == "look up an order's status"
    assert notes.action_of("Returns the order's status.") == "do that"
    assert notes.action_of("") == "do that"
    assert notes.action_of("Lists the user's tickets.") == "do that"
