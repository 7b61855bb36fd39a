"""One model turn of a copilot run: what the model says next, as an answer or as tool
calls.

- `native`: one request with the tools declared, for models whose tool calls are
  reliable (their profile says `native_tools = true`) or when `model.decision_step`
  is off;
- `stepped`: constrained steps (copilot/steps.py): decide, then the arguments or the
  answer. For models with emulated tools.

Either way the answer streams through the answer filter (copilot/answer_filter.py):
internal text never reaches the user, and [n] markers that point at no passage are
removed. The runtime (copilot/runtime.py) runs the calls a turn asks for.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from pilothouse.copilot import steps
from pilothouse.copilot.answer_filter import (
    NO_ANSWER_LEFT,
    AnswerFilter,
    InternalTexts,
    RunNotes,
)
from pilothouse.copilot.asked_slots import AskedFor
from pilothouse.copilot.events import Decided, RunEvent
from pilothouse.copilot.grounded_args import evidence_from
from pilothouse.copilot.grounding import NOTHING_FOUND, markers, user_turn
from pilothouse.copilot.run_endings import STEP_LIMIT_NOTE
from pilothouse.copilot.run_model import RunModel, StreamBroke
from pilothouse.models.emulation.decoder import stable_call_id
from pilothouse.models.emulation.instructions import (
    ANSWER_OR_CALL_REMINDER,
    CALL_REMINDER,
    ERROR_REMINDER,
    REQUIRED_REMINDER,
    RESULT_REMINDER,
)
from pilothouse.tracing import attributes as A
from pilothouse.types import (
    Message,
    ModelRequest,
    ModelResponse,
    TextDelta,
    ToolCallPart,
    ToolChoice,
    ToolSpec,
    Usage,
)

NOT_COVERED = "I could not find anything about this in the knowledge base, so I cannot answer it."
DECISION_TOKENS = 32


@dataclass(frozen=True, slots=True)
class TurnResult:
    """What the model said: `message` joins the run's messages; `calls` to run, or
    the answer `text` (as the user saw it) when there are none."""

    message: Message
    calls: list[ToolCallPart]
    text: str = ""


class Turns:
    """The model turns of one run (see the module doc)."""

    def __init__(self, model: RunModel):
        self.model = model
        self.parts, self.state = model.parts, model.state
        self.strict, self.stepped, self.tools = model.strict, model.stepped, model.tools
        self.decision: tuple[steps.Decision, str | None] = ("answer", None)
        self.offered = steps.Options(())
        """The options of the last decision step."""
        self._response = ModelResponse(Message.assistant(""), "stop", Usage(), "")
        self.internal = InternalTexts.of(
            [
                NOT_COVERED,
                STEP_LIMIT_NOTE,
                NOTHING_FOUND,
                ANSWER_OR_CALL_REMINDER,
                CALL_REMINDER,
                ERROR_REMINDER,
                REQUIRED_REMINDER,
                RESULT_REMINDER,
                user_turn("q", "c", strict=True, tools=True),
                user_turn("q", "c", strict=True),
                *steps.STEP_TEXTS,
                *steps.parameter_descriptions(self.tools),
            ],
            [tool.name for tool in self.tools],
        )

    # --- the turns ------------------------------------------------------------------

    def next(
        self, specs: tuple[ToolSpec, ...], limit_hit: bool
    ) -> AsyncGenerator[RunEvent | TurnResult, None]:
        if self.stepped:
            return self._stepped(specs, limit_hit)
        return self._native(specs, limit_hit)

    async def _native(
        self, specs: tuple[ToolSpec, ...], limit_hit: bool
    ) -> AsyncGenerator[RunEvent | TurnResult, None]:
        choice: ToolChoice = "auto" if specs and not limit_hit else "none"
        request = self.model.request(tuple(self.state.tail), specs, choice)
        answer = self._filter(structured=request.output_schema is not None)
        async with aclosing(self._shown_stream(request, answer, lambda text: text)) as running:
            async for event in running:
                yield event
        response = self._response
        calls = response.tool_calls if choice == "auto" else []
        for shown in self._emit(self._close(answer)):
            yield shown
        if calls:
            yield TurnResult(response.message, calls, answer.text)
            return
        for end in self._end(answer):
            yield end

    async def _stepped(
        self, specs: tuple[ToolSpec, ...], limit_hit: bool
    ) -> AsyncGenerator[RunEvent | TurnResult, None]:
        state = self.state
        after_results = bool(state.tail) and state.tail[-1].role == "tool"
        work: AsyncGenerator[RunEvent | TurnResult, None]
        if state.force_ask is not None:
            missing, state.force_ask = state.force_ask, None
            yield Decided("ask", forced="blocked_call")
            work = self._ask(specs, missing, forced=True)
        elif limit_hit or after_results or not self.tools:
            # Past the step limit, after function results (one call per turn: the
            # results are the answer), or without tools, there is nothing to decide.
            if limit_hit:
                yield Decided("answer", forced="step_limit")
            step = steps.LIMIT_STEP if limit_hit else self._answer_step(after_results)
            work = self._answer(specs, step, self._passages(after_results))
        else:
            async with aclosing(self._decide(specs)) as deciding:
                async for step_event in deciding:
                    yield step_event
            choice, tool_name = self.decision
            if choice == "not_covered":
                work = self._not_covered()
            elif choice == "call" and tool_name is not None:
                work = self._arguments(specs, tool_name)
            elif choice == "ask":
                offered = self.offered
                work = self._ask(specs, offered.ask_for, forced=offered.must_ask)
            else:
                work = self._answer(specs, self._answer_step(False), self._passages(False))
        async with aclosing(work) as running:
            async for event in running:
                yield event

    async def _not_covered(self) -> AsyncGenerator[RunEvent | TurnResult, None]:
        """Said without a model: nothing here covers it, and what the copilot can do."""
        for said in self._say(self._not_covered_text()):
            yield said

    def _not_covered_text(self) -> str:
        return " ".join(filter(None, [NOT_COVERED, steps.capabilities(self.tools)]))

    def _say(self, text: str, *, replied: bool = False) -> list[RunEvent | TurnResult]:
        """`text` as the answer; `replied`: it is what the last model call said (its
        reply, as written, stays the answer's sent form)."""
        if not replied:
            self.state.sent_reply = None
        return [*self._emit(text), TurnResult(Message.assistant(text), [], text)]

    async def _ask(
        self, specs: tuple[ToolSpec, ...], slots: tuple[AskedFor, ...], *, forced: bool
    ) -> AsyncGenerator[RunEvent | TurnResult, None]:
        """A question to the user for the asked-for `slots` (copilot/asked_slots.py),
        written by the model in the copilot's voice; once shown, the conversation
        remembers them. It is read whole before it is shown: a reply that asks nothing
        (a small model answers an out-of-scope question with something made up,
        "123-456-7890", or repeats the user's own question) is not shown. Instead, when
        the runtime asks (after a blocked call, or for a missing id), a plain question
        for the missing value; after the model's own `ask`, the answer step when there
        are passages, else "not covered" (nothing relevant was found and no tool could
        be offered)."""
        what = steps.ask_what(slots)
        step = steps.ASK_STEP.format(what=what)
        text = ""
        limit = self.model.max_tokens()
        async with aclosing(self._silent(specs, step, steps.answer_schema(()), limit)) as running:
            async for event in running:
                if isinstance(event, str):
                    text = event
                else:
                    yield event
        whole, _ = steps.parse_answer(text)
        answer = self._filter()
        question = (answer.feed(whole or "") + answer.finish()).strip()
        asks = "?" in question and not steps.repeats(question, self.state.question)
        if not asks:
            answer.dropped.append((whole or text, "not_a_question"))
        if answer.dropped or answer.invalid_markers:
            self._record_filter(answer)
        if asks or forced:
            self.state.asked = slots
        if asks:
            for said in self._say(question, replied=True):
                yield said
        elif forced:
            for said in self._say(f"Could you give me {what}?"):
                yield said
        else:  # nothing to ask: answer from the passages when there are some
            work = (
                self._answer(specs, self._answer_step(False), self._passages(False))
                if self.state.citations
                else self._not_covered()
            )
            async with aclosing(work) as instead:
                async for instead_event in instead:
                    yield instead_event

    # --- the steps ------------------------------------------------------------------

    async def _decide(self, specs: tuple[ToolSpec, ...]) -> AsyncGenerator[RunEvent, None]:
        """The decision step; what was decided is left in `self.decision`."""
        state = self.state
        evidence = evidence_from(state.question, state.evidence, state.tail)
        offered = steps.options(
            self.tools,
            state.question,
            state.evidence,
            has_identifier=evidence.has_identifier,
            passages=bool(state.citations),
            strict=self.strict,
            asked=state.asked_before,
        )
        self.offered = offered
        forced = _forced(offered)
        started = time.monotonic()
        parsed: tuple[steps.Decision, str | None] = ("answer", None)
        with self.parts.tracer.span("decide", kind="decision") as span:
            span.update(
                {A.DECISION_OPTIONS: list(offered.choices), A.DECISION_READING: offered.reading}
            )
            if offered.held_back:
                span.set(A.DECISION_HELD_BACK, list(offered.held_back))
            if offered.ask_for:
                span.set(A.DECISION_ASK_FOR, [slot.to_dict() for slot in offered.ask_for])
            if forced is not None:  # decided without the model (see `_forced`)
                span.set(A.DECISION_FORCED, forced)
                parsed = _FORCED[forced](offered)
            else:
                text = ""
                async with aclosing(
                    self._silent(specs, offered.step(), offered.schema(), DECISION_TOKENS)
                ) as running:
                    async for event in running:
                        if isinstance(event, str):
                            text = event
                        else:
                            yield event
                read = steps.parse_decision(text, offered)
                if read is None:  # not one of the options (cut off): the safe default
                    parsed = ("answer", None) if "answer" in offered.choices else ("ask", None)
                    span.set(A.DECISION_FORCED, "unreadable_decision")
                else:
                    parsed = read
            span.set(A.DECISION, parsed[0])
            if parsed[1] is not None:
                span.set(A.DECISION_TOOL, parsed[1])
        state.decisions.append(parsed[0] if parsed[1] is None else f"call:{parsed[1]}")
        self.decision = parsed
        yield Decided(parsed[0], parsed[1], time.monotonic() - started, forced)

    async def _arguments(
        self, specs: tuple[ToolSpec, ...], name: str
    ) -> AsyncGenerator[RunEvent | TurnResult, None]:
        tool = self.parts.toolset.get(name)
        assert tool is not None
        schema = tool.spec().parameters
        text = ""
        step = steps.ARGUMENTS_STEP.format(name=name)
        limit = self.model.max_tokens()
        async with aclosing(self._silent(specs, step, schema, limit)) as running:
            async for event in running:
                if isinstance(event, str):
                    text = event
                else:
                    yield event
        arguments, raw = steps.parse_arguments(text)
        index = sum(len(m.tool_calls) for m in self.state.tail)
        call = ToolCallPart(
            stable_call_id(self.state.run_id, index, name, arguments), name, arguments, raw
        )
        yield TurnResult(Message.assistant("", (call,)), [call])

    async def _answer(
        self,
        specs: tuple[ToolSpec, ...],
        step: str,
        passages: Sequence[int],
    ) -> AsyncGenerator[RunEvent | TurnResult, None]:
        """The answer step; when all of the answer was internal text (a small model
        copied the step's wording), asked once more in plain text (`_again`)."""
        schema = steps.answer_schema(passages)
        request = self.model.request(
            self._messages(step), specs, "none" if specs else "auto", schema
        )
        answer = self._filter()
        reader = steps.AnswerStream()
        async with aclosing(self._shown_stream(request, answer, reader.feed)) as running:
            async for event in running:
                yield event
        whole, sources = steps.parse_answer(self._response.text)
        if whole is not None and whole.startswith(reader.text):
            for rest in self._emit(answer.feed(whole[len(reader.text) :])):
                yield rest
        for shown in self._emit(self._close(answer, sources)):
            yield shown
        if answer.emptied:
            async with aclosing(self._again(specs, step)) as asked:
                async for again_event in asked:
                    yield again_event
            return
        for end in self._end(answer):
            yield end

    async def _again(
        self, specs: tuple[ToolSpec, ...], step: str
    ) -> AsyncGenerator[RunEvent | TurnResult, None]:
        """The answer asked once more, after the reply that was all internal text, as
        plain text: constrained the same way, a small model copies the same words."""
        replied = Message.assistant(self._response.text)
        messages = self._messages(step, (replied, Message.user(steps.AGAIN_STEP)))
        text = ""
        async with aclosing(self._silent(specs, "", None, 0, messages)) as running:
            async for event in running:
                if isinstance(event, str):
                    text = event
                else:
                    yield event
        whole, sources = steps.parse_answer(text)  # JSON all the same: its answer
        answer = self._filter()
        for shown in self._emit(answer.feed(text if whole is None else whole)):
            yield shown
        for shown in self._emit(self._close(answer, sources)):
            yield shown
        for end in self._end(answer):
            yield end

    async def _shown_stream(
        self, request: ModelRequest, answer: AnswerFilter, read: Callable[[str], str]
    ) -> AsyncGenerator[RunEvent, None]:
        """A request whose answer the user sees as it streams: each piece of text goes
        through `read` (the raw text, or the answer decoded out of a constrained reply),
        then the filter; the response is left in `self._response`. When the stream
        breaks, what the filter held is released first (the partial answer is kept)."""
        async with aclosing(self.model.call(request)) as events:
            try:
                async for event in events:
                    if isinstance(event, TextDelta):
                        for out in self._emit(answer.feed(read(event.text))):
                            yield out
                    elif isinstance(event, ModelResponse):
                        self._response = event
                    else:
                        yield event
            except StreamBroke:
                for held in self._emit(answer.finish()):
                    yield held
                raise

    async def _silent(
        self,
        specs: tuple[ToolSpec, ...],
        step: str,
        schema: dict[str, Any] | None,
        max_tokens: int,
        messages: tuple[Message, ...] | None = None,
    ) -> AsyncGenerator[RunEvent | str, None]:
        """A step the user does not see (constrained by `schema`); its whole text last.
        `messages`: already with their step (else the run's, ending with `step`)."""
        sent = self._messages(step) if messages is None else messages
        request = self.model.request(
            sent, specs, "none" if specs else "auto", schema, max_tokens or None
        )
        response: ModelResponse | None = None
        async with aclosing(self.model.call(request)) as events:
            async for event in events:
                if isinstance(event, ModelResponse):
                    response = event
                elif not isinstance(event, TextDelta):
                    yield event
        assert response is not None
        yield response.text

    # --- helpers --------------------------------------------------------------------

    def _answer_step(self, after_results: bool) -> str:
        if after_results:
            return steps.RESULTS_STEP
        return steps.ANSWER_CITED_STEP if self.state.citations else steps.ANSWER_STEP

    def _passages(self, after_results: bool) -> tuple[int, ...]:
        if after_results:
            return ()
        return tuple(c.number for c in self.state.citations)

    def _messages(self, step: str, after: tuple[Message, ...] = ()) -> tuple[Message, ...]:
        """The run's messages with the step last: in the head's user turn when the
        run has none yet (see `head`), else as a user message of its own; then `after`."""
        self.model.step = step
        if not self.state.tail:
            return after
        return (*self.state.tail, Message.user(step), *after)

    def _filter(self, *, structured: bool = False) -> AnswerFilter:
        passages = frozenset(c.number for c in self.state.citations)
        notes = RunNotes.of([*self.state.history, *self.state.tail])
        return AnswerFilter(self.internal, passages, structured, notes)

    def _emit(self, text: str) -> list[RunEvent]:
        """Shown text, as an event (and kept for a partial answer on failure)."""
        if not text:
            return []
        self.state.text.append(text)
        return [TextDelta(text)]

    def _close(self, answer: AnswerFilter, sources: Sequence[int] = ()) -> str:
        """The rest of the answer, and markers for the `sources` the model named but did
        not mark in its text; what the filter did goes to the trace."""
        rest = answer.finish()
        named = [n for n in dict.fromkeys(sources) if n in answer.passages]
        self.state.model_cited.extend(named)
        missing = [n for n in named if n not in markers(answer.text)]
        if missing and answer.text.strip():
            extra = " " + "".join(f"[{n}]" for n in missing)
            answer.kept.append(extra)
            rest += extra
        if answer.dropped or answer.invalid_markers:
            self._record_filter(answer)
        return rest

    def _end(self, answer: AnswerFilter) -> list[RunEvent | TurnResult]:
        """The answer's end: what was shown, or a plain sorry when every sentence of it
        was internal text."""
        if answer.emptied:
            return [
                *self._emit(NO_ANSWER_LEFT),
                TurnResult(Message.assistant(NO_ANSWER_LEFT), [], NO_ANSWER_LEFT),
            ]
        text = answer.text.strip()
        return [TurnResult(Message.assistant(text), [], text)]

    def _record_filter(self, answer: AnswerFilter) -> None:
        self.state.invalid_markers += len(answer.invalid_markers)
        self.parts.tracer.record_span(
            "answer_guard",
            kind="guard",
            start_time=time.time(),
            duration_s=0.0,
            attributes={
                A.GUARD_DROPPED: [sentence for sentence, _ in answer.dropped],
                A.GUARD_REASONS: [reason for _, reason in answer.dropped],
                A.CITATIONS_INVALID: answer.invalid_markers,
            },
        )


def _forced(offered: steps.Options) -> str | None:
    """Why the runtime decides without the model, when only one outcome is right: a
    question the passages answer and no tool is asked for ("knowledge_first"), a
    request whose id is missing ("missing_id": ask for it), the id asked for given,
    with one tool waiting for it ("resumed": call it), the id of the one lookup given
    in a request or a state question ("given_id": call it)."""
    if offered.knowledge_first:
        return "knowledge_first"
    if offered.must_ask:
        return "missing_id"
    if offered.resumed and len(offered.choices) == 1:
        return "resumed"
    if offered.call_now is not None:
        return "given_id"
    return None


_FORCED: dict[str, Callable[[steps.Options], tuple[steps.Decision, str | None]]] = {
    "knowledge_first": lambda _: ("answer", None),
    "missing_id": lambda _: ("ask", None),
    "resumed": lambda offered: ("call", offered.choices[0].removeprefix(steps.CALL_PREFIX)),
    "given_id": lambda offered: ("call", offered.call_now),
}
