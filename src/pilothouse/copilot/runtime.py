"""The runtime loop of one copilot run.

retrieve grounding (a follow-up with its previous turn; under strict grounding, below
the relevance floor nothing is found) → a model turn (copilot/turns.py: one request with
the tools, or constrained steps that decide first for models with emulated tools) →
check the identifying arguments of its tool calls (copilot/grounded_args.py: a call
with a value nobody gave never runs) → run them (concurrently; those needing approval
pause the run until a person decides) → repeat up to the step limit → answer with
citations.

Everything a run does is reported as typed events (copilot/events.py) and recorded as
spans of one trace (pilothouse.tracing).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any

from pilothouse.copilot import passages_ahead, quoted_answer
from pilothouse.copilot import runtime_notes as notes
from pilothouse.copilot.asked_slots import AskedFor
from pilothouse.copilot.events import (
    Retrieved,
    RunEvent,
    RunStarted,
    ToolCallBlocked,
    ToolCallFinished,
    ToolCallStarted,
    ToolOutcome,
)
from pilothouse.copilot.follow_ups import earlier_questions, last_answer
from pilothouse.copilot.grounded_args import blocked_result, check_call, evidence_from
from pilothouse.copilot.grounding import Retrieval, follow_up_query, retrieve
from pilothouse.copilot.looked_up import about_a_result
from pilothouse.copilot.prompt_settings import effective_settings
from pilothouse.copilot.relevance import floor_for
from pilothouse.copilot.run_endings import STEP_LIMIT_NOTE, fail, finish, pause
from pilothouse.copilot.run_model import RunModel, StreamBroke, uses_steps
from pilothouse.copilot.run_record import RunRecord, record_approval, record_blocked, record_tool
from pilothouse.copilot.run_state import Parts, RunState
from pilothouse.copilot.sent_passages import unseen
from pilothouse.copilot.shown_answer import NOT_COVERED, TurnResult
from pilothouse.copilot.tool_runner import (
    NO_CLIENT_TOOLS,
    ClientTools,
    Decision,
    needing_approval,
    run_calls,
    toolset_needs_approval,
)
from pilothouse.copilot.turns import Turns
from pilothouse.errors import PilothouseError
from pilothouse.tools.toolset import Toolset
from pilothouse.tracing import attributes as A
from pilothouse.tracing.attributes import RunStatus
from pilothouse.types import Message, ToolCallPart, ToolResultPart

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, parts: Parts):
        self.parts = parts
        self.definition = parts.definition
        self.settings = parts.settings or effective_settings(parts.definition, None)
        knowledge = parts.definition.knowledge
        self._strict = knowledge is not None and knowledge.grounding == "strict"
        self.reads_ahead = True
        """Whether a turn that keeps the rest of its passages for the next one
        (copilot/passages_ahead.py) reads it into the model's cache while the user
        reads (the latency benchmark's cold turns switch it off)."""
        self._reading = passages_ahead.Reading()

    async def aclose(self) -> None:
        """Stop what runs in the background (a read ahead)."""
        await self._reading.aclose()

    # --- entry points -------------------------------------------------------------

    def run(
        self,
        question: str,
        *,
        conversation_id: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        key_id: str | None = None,
        client: ClientTools = NO_CLIENT_TOOLS,
        attributes: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[RunEvent]:
        """A new run for `question` in a conversation (a new one when None). `key_id`:
        the server API key that asks (recorded on the run, a new conversation and a
        paused run); `client`: the caller's own tools, offered beside the copilot's;
        `attributes`: more attributes of the run span (a promotion's link)."""
        span: dict[str, Any] = {
            **(attributes or {}),
            A.AGENT_NAME: self.definition.name,
            A.RUN_QUESTION: question,
        }
        if key_id is not None:
            span[A.RUN_KEY_ID] = key_id
        record = RunRecord(self.parts.tracer, f"invoke_agent {self.definition.name}", span)
        return record.follow(
            self._run(record, question, conversation_id, dict(inputs or {}), key_id, client)
        )

    async def _run(
        self,
        record: RunRecord,
        question: str,
        conversation_id: str | None,
        inputs: dict[str, Any],
        key_id: str | None,
        client: ClientTools,
    ) -> AsyncGenerator[RunEvent, None]:
        if conversation_id is None:
            conversation = await self.parts.conversations.create(
                self.definition.name, key_id=key_id
            )
        else:
            conversation = await self.parts.conversations.get(conversation_id)
        conversation_id = conversation.id
        record.span.set(A.CONVERSATION_ID, conversation_id)
        yield RunStarted(record.run_id, conversation_id)
        for paused in await self.parts.paused.for_conversation(conversation_id):
            await self.parts.paused.take(paused.run_id)  # a new question abandons it
        memory = await self.parts.memory.context(conversation_id)
        # What was read ahead for this question, if it was read, begins its turn.
        ahead = await self._reading.settle(conversation_id)
        history = [*memory.messages, *ahead]
        # Passages the history holds (as it was sent) are not sent again.
        found = unseen(await self._retrieve(question, memory.window), history, grouped=bool(ahead))
        if found.citations:
            yield Retrieved(tuple(found.citations))
        earlier = earlier_questions(memory.window)
        evidence = await self.parts.conversations.messages(conversation_id)
        state = RunState(
            record.run_id,
            conversation_id,
            question,
            found.context,
            found.citations,
            history=history,
            ahead=ahead,
            key_id=key_id,
            evidence=evidence,
            asked_before=conversation.asked or None,
            earlier=earlier,
            quotes=await quoted_answer.for_turn(
                question,
                # none where the result of the lookup before answers it (copilot/looked_up.py)
                () if about_a_result(question, evidence) else found.citations,
                self.parts.models,
                None if self.parts.knowledge is None else self.parts.knowledge.recent,
                earlier=earlier,
                previous=last_answer(memory.messages),
            ),
        )
        if not found.citations and self._strict and not len(self.parts.toolset):
            # Nothing to answer from and nothing to do: say so instead of inventing.
            state.tail.append(Message.assistant(NOT_COVERED))
            for event in await finish(self.parts, state, NOT_COVERED, "completed"):
                yield event
            return
        async with aclosing(self._loop(state, inputs, {}, client)) as events:
            async for event in events:
                yield event

    def resume(
        self,
        run_id: str,
        decisions: Mapping[str, Decision],
        *,
        decided_by: str | None = None,
        client: ClientTools = NO_CLIENT_TOOLS,
        attributes: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[RunEvent]:
        """Continue a paused run (its exact id) with a decision for each pending tool
        call (a call without a decision is denied) and the results of the caller's own
        tools (`client.results`). The continuation is a run of its own (its own id and
        trace, `pilothouse.run.resumes` naming the run that paused), owned by the key that
        started the paused one. `decided_by`: the server API key that decided (recorded
        on the approval spans); `attributes`: more attributes of the run span."""
        record = RunRecord(
            self.parts.tracer,
            f"invoke_agent {self.definition.name}",
            {**(attributes or {}), A.AGENT_NAME: self.definition.name, A.RUN_RESUMES: run_id},
        )
        return record.follow(self._resume(record, run_id, decisions, decided_by, client))

    async def _resume(
        self,
        record: RunRecord,
        run_id: str,
        decisions: Mapping[str, Decision],
        decided_by: str | None,
        client: ClientTools,
    ) -> AsyncGenerator[RunEvent, None]:
        paused = await self.parts.paused.take(run_id)
        record.span.update(
            {A.RUN_QUESTION: paused.question, A.CONVERSATION_ID: paused.conversation_id}
        )
        if paused.key_id is not None:
            record.span.set(A.RUN_KEY_ID, paused.key_id)
        memory = await self.parts.memory.context(paused.conversation_id)
        state = RunState(
            record.run_id,
            paused.conversation_id,
            paused.question,
            paused.context,
            list(paused.citations),
            history=list(memory.messages),
            tail=list(paused.tail),
            steps=paused.steps,
            key_id=paused.key_id,
            evidence=await self.parts.conversations.messages(paused.conversation_id),
            earlier=earlier_questions(memory.window),  # the turn as it was sent before
        )
        yield RunStarted(state.run_id, state.conversation_id)
        await self._reading.settle(state.conversation_id)
        full = {c.id: decisions.get(c.id, Decision(False, "no decision")) for c in paused.pending}
        blocked = self._check_calls(state, paused.pending)
        for call in paused.pending:
            if toolset_needs_approval(self.parts.toolset, call) and call.id not in blocked:
                record_approval(self.parts.tracer, call, full[call.id].approved, decided_by)
        handed = client.handed(paused.pending)
        if handed:  # the caller has yet to run these
            for event in await pause(self.parts, state, paused.pending, handed, True):
                yield event
            return
        async for event in self._after_tools(state, paused.pending, full, client, blocked):
            yield event
        async with aclosing(self._loop(state, {}, full, client)) as events:
            async for event in events:
                yield event

    # --- the loop -----------------------------------------------------------------

    async def _loop(
        self,
        state: RunState,
        inputs: dict[str, Any],
        decisions: Mapping[str, Decision],
        client: ClientTools,
    ) -> AsyncGenerator[RunEvent, None]:
        limits = self.definition.limits
        toolset = self.parts.toolset
        # The tools stay declared to the end: vendors refuse a history with tool calls
        # when no tools are declared. Past the step limit, tool_choice says "none".
        specs = (*(toolset.specs() if len(toolset) else ()), *client.specs)
        # The caller's own tools are offered the native way (the stepped turn decides
        # among the copilot's tools only).
        stepped = uses_steps(self.parts) and not client.specs
        turns = Turns(RunModel(self.parts, state, inputs, strict=self._strict, stepped=stepped))
        redactor = self.parts.tracer.redactor
        while True:
            result: TurnResult | None = None
            try:
                # Closed here, not left to the garbage collector: a consumer that stops
                # reading ends the model call (and its span) at once.
                async with aclosing(turns.next(specs, state.limit_hit)) as events:
                    async for event in events:
                        if isinstance(event, TurnResult):
                            result = event
                        else:
                            yield event
            except StreamBroke as broke:
                yield fail(state, broke.error, "".join(state.text), redactor=redactor)
                return
            except PilothouseError as error:
                yield fail(state, error, redactor=redactor)
                return
            assert result is not None
            calls = result.calls
            state.tail.append(result.message)
            if not calls:
                status: RunStatus = "step_limit" if state.limit_hit else "completed"
                ending = await finish(self.parts, state, result.text, status)
                # The rest of the passages, read while the user reads the answer.
                if self.reads_ahead and status == "completed":  # while the user reads it
                    self._reading.after(self.parts, state)
                for event in ending:
                    yield event
                return
            if state.steps >= limits.max_tool_steps:
                # The model wants more steps than allowed: answer its calls, then ask
                # for a final answer without tools.
                state.tail.append(Message.tool(*(_not_run(toolset, call) for call in calls)))
                if not stepped:
                    state.tail.append(Message.user(STEP_LIMIT_NOTE))
                state.limit_hit = True
                continue
            state.steps += 1
            blocked = self._check_calls(state, calls)
            for call in calls:
                if call.id in blocked:
                    yield ToolCallBlocked(call, blocked[call.id])
            allowed = [call for call in calls if call.id not in blocked]
            waiting = needing_approval(toolset, allowed, decisions)
            handed = client.handed(allowed)
            if waiting or handed:  # approvals first; the caller's tools after them
                for event in await pause(self.parts, state, calls, waiting or handed, not waiting):
                    yield event
                return
            async for event in self._after_tools(state, calls, decisions, client, blocked):
                yield event

    def _check_calls(self, state: RunState, calls: Sequence[ToolCallPart]) -> dict[str, str]:
        """The grounded-argument check of a step's calls (each problem a span): the
        blocked ones (strict) by id, with what the model is told instead of a result.
        When every call was blocked, the next stepped turn asks the user."""
        toolset = self.parts.toolset
        bound = [value for tool in toolset for value in tool.bindings.values()]
        evidence = evidence_from(state.question, state.evidence, state.tail, bound)
        blocked: dict[str, str] = {}
        missing: list[AskedFor] = []
        for call in calls:
            tool = toolset.get(call.name)
            if tool is None or tool.grounded == "off" or call.raw_arguments is not None:
                continue
            problems = check_call(tool, call, evidence)
            if not problems:
                continue
            note = blocked_result(tool, call, problems)
            record_blocked(
                self.parts.tracer, call, tool.grounded, [p.to_dict() for p in problems], note
            )
            if tool.grounded == "strict":
                blocked[call.id] = note
                missing.extend(
                    AskedFor(call.name, p.parameter) for p in problems if p.problem == "not_given"
                )
        if calls and len(blocked) == len(calls):
            state.force_ask = tuple(dict.fromkeys(missing))
        return blocked

    async def _after_tools(
        self,
        state: RunState,
        calls: Sequence[ToolCallPart],
        decisions: Mapping[str, Decision],
        client: ClientTools,
        blocked: Mapping[str, str],
    ) -> AsyncIterator[RunEvent]:
        runnable = [call for call in calls if call.id not in blocked]
        for call in runnable:
            yield ToolCallStarted(call)
        outcomes = await run_calls(
            self.parts.toolset,
            runnable,
            decisions=decisions,
            timeout_s=self.definition.limits.timeout_s,
            results=client.results,
        )
        by_id: dict[str, ToolResultPart] = {}
        for outcome in outcomes:
            record_tool(self.parts.tracer, outcome)
            state.outcomes.append(outcome)
            by_id[outcome.call.id] = _result_part(outcome)
            yield ToolCallFinished(outcome)
        results = [
            by_id.get(call.id) or ToolResultPart(call.id, call.name, blocked[call.id], True)
            for call in calls
        ]
        state.tail.append(Message.tool(*results))

    async def _retrieve(self, question: str, recent: Sequence[Message]) -> Retrieval:
        settings = self.definition.knowledge
        if self.parts.knowledge is None or settings is None or settings.grounding == "off":
            return Retrieval([], None)
        retrieval = settings.retrieval
        context = follow_up_query(question, recent) if retrieval.follow_up == "context" else None
        return await retrieve(
            self.parts.knowledge,
            retrieval,
            question,
            base=self.parts.instructions.folder,
            tracer=self.parts.tracer,
            source_id=self.definition.name,
            judge=self.parts.judge,
            # Cut for the first model of the chain (a fallback reads the same passages).
            passage_budget=self.parts.models[0].profile.passage_budget
            if self.parts.models
            else None,
            context_query=context,
            floor=floor_for(settings) if self._strict else None,
        )


def _result_part(outcome: ToolOutcome) -> ToolResultPart:
    return ToolResultPart(outcome.call.id, outcome.call.name, outcome.content, outcome.is_error)


def _not_run(toolset: Toolset, call: ToolCallPart) -> ToolResultPart:
    tool = toolset.get(call.name)
    note = notes.NOT_RUN.write(action=notes.action_of(tool.description if tool else ""))
    return ToolResultPart(call.id, call.name, note, True)
