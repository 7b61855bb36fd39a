"""The runtime loop of one copilot run.

retrieve grounding → render the prompt for the model that answers → call the model →
run its tool calls (concurrently; those needing approval pause the run until a person
decides) → repeat up to the step limit → answer with citations.

Everything a run does is reported as typed events (copilot/events.py) and recorded as
spans of one trace (pilothouse.tracing).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any

from pilothouse.copilot.events import (
    Citation,
    ModelUsed,
    Retrieved,
    RunEvent,
    RunStarted,
    ToolCallFinished,
    ToolCallStarted,
    ToolOutcome,
    UsageUpdate,
)
from pilothouse.copilot.grounding import retrieve, user_turn
from pilothouse.copilot.prompt_settings import effective_settings
from pilothouse.copilot.prompting import PromptedModel
from pilothouse.copilot.run_endings import STEP_LIMIT_NOTE, fail, finish, pause
from pilothouse.copilot.run_record import RunRecord, record_approval, record_tool
from pilothouse.copilot.run_state import Parts, RunState
from pilothouse.copilot.tool_runner import (
    NO_CLIENT_TOOLS,
    ClientTools,
    Decision,
    needing_approval,
    run_calls,
    toolset_needs_approval,
)
from pilothouse.copilot.traced_model import TracedModel
from pilothouse.errors import PilothouseError
from pilothouse.models.base import Model, close_stream
from pilothouse.models.fallback import FallbackModel, reject_empty
from pilothouse.tracing import attributes as A
from pilothouse.tracing import current_span
from pilothouse.tracing.attributes import RunStatus
from pilothouse.types import (
    Message,
    ModelRequest,
    ModelResponse,
    StreamContinued,
    StreamEnd,
    StreamError,
    TextDelta,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)

log = logging.getLogger(__name__)

NOT_COVERED = "I could not find anything about this in the knowledge base, so I cannot answer it."


class Runtime:
    def __init__(self, parts: Parts):
        self.parts = parts
        self.definition = parts.definition
        self.settings = parts.settings or effective_settings(parts.definition, None)
        knowledge = parts.definition.knowledge
        self._strict = knowledge is not None and knowledge.grounding == "strict"

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
            conversation_id = conversation.id
        record.span.set(A.CONVERSATION_ID, conversation_id)
        yield RunStarted(record.run_id, conversation_id)
        for paused in await self.parts.paused.for_conversation(conversation_id):
            await self.parts.paused.take(paused.run_id)  # a new question abandons it
        memory = await self.parts.memory.context(conversation_id)
        citations, context = await self._retrieve(question)
        if citations:
            yield Retrieved(tuple(citations))
        state = RunState(
            record.run_id,
            conversation_id,
            question,
            context,
            citations,
            history=list(memory.messages),
            key_id=key_id,
        )
        if not citations and self._strict and not len(self.parts.toolset):
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
        )
        yield RunStarted(state.run_id, state.conversation_id)
        full = {c.id: decisions.get(c.id, Decision(False, "no decision")) for c in paused.pending}
        for call in paused.pending:
            if toolset_needs_approval(self.parts.toolset, call):
                record_approval(self.parts.tracer, call, full[call.id].approved, decided_by)
        handed = client.handed(paused.pending)
        if handed:  # the caller has yet to run these
            for event in await pause(self.parts, state, paused.pending, handed, True):
                yield event
            return
        async for event in self._after_tools(state, paused.pending, full, client):
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
        tools = (*(toolset.specs() if len(toolset) else ()), *client.specs)
        limit_hit = False
        while True:
            choice: ToolChoice = "auto" if tools and not limit_hit else "none"
            response: ModelResponse | None = None
            try:
                # Closed here, not left to the garbage collector: a consumer that stops
                # reading ends the model call (and its span) at once.
                async with aclosing(self._call_model(state, inputs, tools, choice)) as events:
                    async for event in events:
                        if isinstance(event, ModelResponse):
                            response = event
                        else:
                            yield event
            except PilothouseError as error:
                yield fail(state, error, redactor=self.parts.tracer.redactor)
                return
            if response is None:
                return  # the stream broke; _call_model reported it
            state.add_usage(response)
            yield ModelUsed(response.model)
            yield UsageUpdate(state.usage, state.cost)
            calls = response.tool_calls if choice == "auto" else []
            state.tail.append(response.message if calls else Message.assistant(response.text))
            if not calls:
                status: RunStatus = "step_limit" if limit_hit else "completed"
                for event in await finish(self.parts, state, response.text, status):
                    yield event
                return
            if state.steps >= limits.max_tool_steps:
                # The model wants more steps than allowed: answer its calls, then ask
                # for a final answer without tools.
                state.tail.append(Message.tool(*(_not_run(call) for call in calls)))
                state.tail.append(Message.user(STEP_LIMIT_NOTE))
                limit_hit = True
                continue
            state.steps += 1
            waiting = needing_approval(toolset, calls, decisions)
            handed = client.handed(calls)
            if waiting or handed:  # approvals first; the caller's tools after them
                for event in await pause(self.parts, state, calls, waiting or handed, not waiting):
                    yield event
                return
            async for event in self._after_tools(state, calls, decisions, client):
                yield event

    async def _after_tools(
        self,
        state: RunState,
        calls: Sequence[ToolCallPart],
        decisions: Mapping[str, Decision],
        client: ClientTools,
    ) -> AsyncIterator[RunEvent]:
        for call in calls:
            yield ToolCallStarted(call)
        outcomes = await run_calls(
            self.parts.toolset,
            calls,
            decisions=decisions,
            timeout_s=self.definition.limits.timeout_s,
            results=client.results,
        )
        for outcome in outcomes:
            record_tool(self.parts.tracer, outcome)
            state.outcomes.append(outcome)
            yield ToolCallFinished(outcome)
        state.tail.append(Message.tool(*(_result_part(o) for o in outcomes)))

    async def _call_model(
        self,
        state: RunState,
        inputs: Mapping[str, Any],
        tools: tuple[Any, ...],
        choice: ToolChoice,
    ) -> AsyncGenerator[RunEvent | ModelResponse, None]:
        request = ModelRequest(
            messages=tuple(state.tail),
            tools=tools,
            tool_choice=choice,
            **self.settings.request_fields(),  # copilot.yaml, then the Prompty (prompt_settings)
        )
        stream = self._chain(state, inputs).stream(request)
        try:
            async for event in stream:
                if isinstance(event, TextDelta):
                    state.text.append(event.text)
                    yield event
                elif isinstance(event, StreamContinued):
                    _note_continuation(event)
                elif isinstance(event, StreamEnd):
                    yield event.response
                elif isinstance(event, StreamError):
                    state.add_usage(event.partial)
                    yield fail(
                        state,
                        event.error,
                        partial_text="".join(state.text),
                        redactor=self.parts.tracer.redactor,
                    )
                    return
        finally:
            await close_stream(stream)

    def _chain(self, state: RunState, inputs: Mapping[str, Any]) -> Model:
        """The models of this copilot, each prompted for its own family and traced."""
        strict = self._strict
        has_tools = len(self.parts.toolset) > 0

        def head(family: str) -> list[Message]:
            values = {"question": state.question, "context": state.context or "", **inputs}
            rendered = self.parts.instructions.render(family, values)
            tail = list(rendered.tail) or [
                Message.user(
                    user_turn(state.question, state.context, strict=strict, tools=has_tools)
                )
            ]
            return [*rendered.system, *state.history, *tail]

        tracer, models = self.parts.tracer, self.parts.models
        if len(models) == 1:
            return PromptedModel(TracedModel(models[0], tracer), head)
        # Each attempt's span applies the chain's rule, so it can say "rejected".
        chain = [PromptedModel(TracedModel(m, tracer, accept=reject_empty), head) for m in models]
        return FallbackModel(
            chain, accept=reject_empty, continue_streams=self.definition.model.continue_streams
        )

    async def _retrieve(self, question: str) -> tuple[list[Citation], str | None]:
        settings = self.definition.knowledge
        if self.parts.knowledge is None or settings is None or settings.grounding == "off":
            return [], None
        return await retrieve(
            self.parts.knowledge,
            settings.retrieval,
            question,
            base=self.parts.instructions.folder,
            tracer=self.parts.tracer,
            source_id=self.definition.name,
            judge=self.parts.judge,
            # Cut for the first model of the chain (a fallback reads the same passages).
            passage_budget=self.parts.models[0].profile.passage_budget
            if self.parts.models
            else None,
        )


def _result_part(outcome: ToolOutcome) -> ToolResultPart:
    return ToolResultPart(outcome.call.id, outcome.call.name, outcome.content, outcome.is_error)


def _not_run(call: ToolCallPart) -> ToolResultPart:
    return ToolResultPart(
        call.id, call.name, "Error: not run: the tool step limit was reached.", True
    )


def _note_continuation(event: StreamContinued) -> None:
    """A broken answer carried on by another model: said in the trace of the step."""
    span = current_span()
    if span is not None:
        span.add_event(
            "model.continued",
            {"pilothouse.continued_on": event.model, "error.message": str(event.error)},
        )
