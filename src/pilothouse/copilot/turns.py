"""One model turn of a copilot run: what the model says next, as an answer or as tool
calls.

- `native`: one request with the tools declared, for models whose tool calls are
  reliable (their profile says `native_tools = true`) or when `model.decision_step`
  is off;
- `stepped`: constrained steps (copilot/steps.py): decide, then the arguments or the
  answer. For models with emulated tools.

Either way the answer streams through the answer filter (copilot/shown_answer.py):
internal text never reaches the user, and [n] markers that point at no passage are
removed; the model calls are copilot/step_calls.py's. The runtime (copilot/runtime.py)
runs the calls a turn asks for.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import replace

from pilothouse.copilot import (
    answer_opening,
    argument_words,
    decision_options,
    given_ids,
    quoted_answer,
    step_replies,
    steps,
)
from pilothouse.copilot.asked_slots import AskedFor
from pilothouse.copilot.events import Decided, RunEvent
from pilothouse.copilot.forced_decisions import FORCED_DECISIONS, forced_decision
from pilothouse.copilot.grounded_args import evidence_from
from pilothouse.copilot.grounding import markers
from pilothouse.copilot.run_model import RunModel
from pilothouse.copilot.shown_answer import NOT_COVERED, ShownAnswer, TurnResult
from pilothouse.copilot.step_calls import StepCalls
from pilothouse.models.emulation.decoder import stable_call_id
from pilothouse.tracing import attributes as A
from pilothouse.types import Message, ToolCallPart, ToolChoice, ToolSpec

DECISION_TOKENS = 32


class Turns:
    """The model turns of one run (see the module doc)."""

    def __init__(self, model: RunModel):
        self.model = model
        self.parts, self.state = model.parts, model.state
        self.strict, self.stepped, self.tools = model.strict, model.stepped, model.tools
        self.decision: tuple[decision_options.Decision, str | None] = ("answer", None)
        self.offered = decision_options.Options(())
        """The options of the last decision step."""
        self.nearest: str | None = None
        """For a request on the id given before that the model decides: the tool the
        embedder found nearest, called when the model asks nothing (`_ask`)."""
        self.shown = ShownAnswer(model.parts, model.state, self.tools)
        self.calls = StepCalls(model, self.shown)

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
        answer = self.shown.filter(structured=request.output_schema is not None)
        async with aclosing(self.calls.shown_stream(request, answer, lambda text: text)) as running:
            async for event in running:
                yield event
        response = self.calls.response
        calls = response.tool_calls if choice == "auto" else []
        for shown in self.shown.emit(self.shown.close(answer)):
            yield shown
        if calls:
            yield TurnResult(response.message, calls, answer.text)
            return
        for end in self.shown.end(answer):
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
        for said in self.shown.say(self._not_covered_text()):
            yield said

    def _not_covered_text(self) -> str:
        return " ".join(filter(None, [NOT_COVERED, steps.capabilities(self.tools)]))

    async def _ask(
        self, specs: tuple[ToolSpec, ...], slots: tuple[AskedFor, ...], *, forced: bool
    ) -> AsyncGenerator[RunEvent | TurnResult, None]:
        """A question to the user for the asked-for `slots` (copilot/asked_slots.py),
        written by the model in the copilot's voice; once shown, the conversation
        remembers them. It is read whole before it is shown: a reply that asks nothing
        (a small model answers an out-of-scope question with something made up,
        "123-456-7890", or repeats the user's own question) is not shown. Instead, when
        the runtime asks (after a blocked call, or for a missing id), a plain question
        for the missing value; after the model's own `ask`, for a request on the id
        the user gave before, the call of the tool the embedder found nearest (an action
        offered for approval: a request that acts gets the action or a question, never
        "not covered"); else the answer step when there are passages, else "not
        covered" (nothing relevant was found and no tool could be offered)."""
        what = steps.ask_what(slots)
        step = steps.ASK_STEP.format(what=what)
        text = ""
        limit = self.model.max_tokens()
        async with aclosing(
            self.calls.silent(specs, step, step_replies.answer_schema(()), limit)
        ) as running:
            async for event in running:
                if isinstance(event, str):
                    text = event
                else:
                    yield event
        whole, _ = step_replies.parse_answer(text)
        answer = self.shown.filter()
        question = (answer.feed(whole or "") + answer.finish()).strip()
        asks = "?" in question and not step_replies.repeats(question, self.state.question)
        if not asks:
            answer.dropped.append((whole or text, "not_a_question"))
        if answer.dropped or answer.invalid_markers:
            self.shown.record_filter(answer)
        if asks or forced:
            self.state.asked = slots
        if asks:
            for said in self.shown.say(question, replied=True):
                yield said
        elif forced:
            for said in self.shown.say(f"Could you give me {what}?"):
                yield said
        elif self.nearest is not None:  # a request on the id given before: its tool
            self.state.decisions.append(f"call:{self.nearest}")
            yield Decided("call", self.nearest, forced="asked_nothing")
            async with aclosing(self._arguments(specs, self.nearest)) as calling:
                async for call_event in calling:
                    yield call_event
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
        offered = decision_options.options(
            self.tools,
            state.question,
            state.evidence,
            has_identifier=evidence.has_identifier,
            passages=bool(state.citations),
            strict=self.strict,
            asked=state.asked_before,
        )
        self.offered = offered
        forced = forced_decision(offered)
        started = time.monotonic()
        chosen = await self._choose(offered.given) if forced == "given_id" else None
        if chosen is not None and chosen.tool is None:
            forced = None  # the model decides among the tools given the id only
        self.nearest = None
        if forced is None and offered.given_before:  # an action on the id given before
            chosen = await self._choose(offered.given_before)
            if chosen.tool is None or chosen.tool.read_only:
                self.nearest = chosen.nearest
                chosen = None  # a lookup: the model decides
            else:
                forced = "earlier_id"
        parsed: tuple[decision_options.Decision, str | None] = ("answer", None)
        with self.parts.tracer.span("decide", kind="decision") as span:
            span.update(
                {A.DECISION_OPTIONS: list(offered.choices), A.DECISION_READING: offered.reading}
            )
            if offered.held_back:
                span.set(A.DECISION_HELD_BACK, list(offered.held_back))
            if offered.ask_for:
                span.set(A.DECISION_ASK_FOR, [slot.to_dict() for slot in offered.ask_for])
            if chosen is not None:
                span.set(A.DECISION_CHOSEN_BY, chosen.why)
                if chosen.similarities:
                    span.set(A.DECISION_SIMILARITY, json.dumps(chosen.similarities))
            if forced is not None:  # decided without the model (copilot/forced_decisions.py)
                span.set(A.DECISION_FORCED, forced)
                parsed = FORCED_DECISIONS[forced](offered)
                if chosen is not None and chosen.tool is not None:
                    parsed = ("call", chosen.tool.name)
            else:
                text = ""
                async with aclosing(
                    self.calls.silent(specs, offered.step(), offered.schema(), DECISION_TOKENS)
                ) as running:
                    async for event in running:
                        if isinstance(event, str):
                            text = event
                        else:
                            yield event
                read = decision_options.parse_decision(text, offered)
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

    async def _choose(self, names: tuple[str, ...]) -> given_ids.Choice:
        """Which of the tools that take the id given (copilot/given_ids.py)."""
        tools = [t for t in self.tools if t.name in names]
        knowledge = self.parts.knowledge
        asked = self.offered.read_as or self.state.question
        return await given_ids.choose(asked, tools, knowledge.recent if knowledge else None)

    async def _arguments(
        self, specs: tuple[ToolSpec, ...], name: str
    ) -> AsyncGenerator[RunEvent | TurnResult, None]:
        tool = self.parts.toolset.get(name)
        assert tool is not None
        given = given_ids.arguments(self.state.question, tool) if self.offered.given else None
        if given:  # the message holds them: its own values, one call each
            index = sum(len(m.tool_calls) for m in self.state.tail)
            calls = [
                ToolCallPart(stable_call_id(self.state.run_id, index + i, name, a), name, a)
                for i, a in enumerate(given)
            ]
            yield TurnResult(Message.assistant("", tuple(calls)), calls)
            return
        schema = tool.spec().parameters
        text = ""
        step = steps.ARGUMENTS_STEP.format(name=name)
        limit = self.model.max_tokens()
        async with aclosing(self.calls.silent(specs, step, schema, limit)) as running:
            async for event in running:
                if isinstance(event, str):
                    text = event
                else:
                    yield event
        arguments, raw = step_replies.parse_arguments(text)
        # The user's request is the call itself, not a free-text value of it.
        arguments = argument_words.without_the_request(
            arguments, tool, self.state.question, self.tools
        )
        # Nor ids nobody gave, nor a script nothing here is in (a stray "我").
        arguments = argument_words.as_given(arguments, tool, self.state, self.parts.toolset)
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
        schema = step_replies.answer_schema(passages)
        messages = self.calls.messages(step)
        request = self.model.request(messages, specs, "none" if specs else "auto", schema)
        reader = step_replies.AnswerStream()
        given: str | None = None
        opened: answer_opening.Given | None = None  # the reply's start, given
        writes = self.model.writes_openings()
        if writes and not passages:
            opened = answer_opening.given((), self.state)
        elif writes:  # the JSON around the numbers given
            sources: list[int] = []
            async with aclosing(self.calls.sources(specs, messages, passages)) as choosing:
                async for chosen in choosing:
                    if isinstance(chosen, list):
                        sources = chosen
                    else:
                        yield chosen
            if sources:  # else (cut off) the answer as one constrained reply
                opened = answer_opening.given(sources, self.state)
                quoted = quoted_answer.best(self.state.quotes, sources)
                given = None if quoted is None else quoted_answer.reply(sources, quoted)
        if opened is not None:
            request = replace(
                request,
                messages=(*messages, Message.assistant(opened.text)),
                output_schema=None,
                grammar=opened.grammar,
            )
            reader.feed(opened.text)
        answer = self.shown.filter()
        if given is not None:  # the one text it could decode (copilot/quoted_answer.py)
            for event in self.calls.given(messages, given, reader.raw, answer, reader.feed):
                yield event
        else:
            async with aclosing(self.calls.shown_stream(request, answer, reader.feed)) as running:
                async for event in running:
                    yield event
        whole, sources = step_replies.parse_answer(self.calls.response.text)
        if given is not None:  # a quote cites the passages of its units, not all those named
            sources = markers(whole or "")
        if whole is not None and whole.startswith(reader.text):
            for rest in self.shown.emit(answer.feed(whole[len(reader.text) :])):
                yield rest
        for shown in self.shown.emit(self.shown.close(answer, sources)):
            yield shown
        if answer.emptied:
            async with aclosing(self._again(specs, step)) as asked:
                async for again_event in asked:
                    yield again_event
            return
        for end in self.shown.end(answer):
            yield end

    async def _again(
        self, specs: tuple[ToolSpec, ...], step: str
    ) -> AsyncGenerator[RunEvent | TurnResult, None]:
        """The answer asked once more, after the reply that was all internal text, as
        plain text: constrained the same way, a small model copies the same words."""
        replied = Message.assistant(self.calls.response.text)
        messages = self.calls.messages(step, (replied, Message.user(steps.AGAIN_STEP)))
        text = ""
        async with aclosing(self.calls.silent(specs, "", None, 0, messages)) as running:
            async for event in running:
                if isinstance(event, str):
                    text = event
                else:
                    yield event
        whole, sources = step_replies.parse_answer(text)  # JSON all the same: its answer
        answer = self.shown.filter()
        for shown in self.shown.emit(answer.feed(text if whole is None else whole)):
            yield shown
        for shown in self.shown.emit(self.shown.close(answer, sources)):
            yield shown
        for end in self.shown.end(answer):
            yield end

    # --- helpers --------------------------------------------------------------------

    def _answer_step(self, after_results: bool) -> str:
        if after_results:
            return steps.RESULTS_STEP
        return steps.ANSWER_CITED_STEP if self.state.citations else steps.ANSWER_STEP

    def _passages(self, after_results: bool) -> tuple[int, ...]:
        if after_results:
            return ()
        return tuple(c.number for c in self.state.citations)
