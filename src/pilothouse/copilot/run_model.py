"""The model side of a run: its prompt (the head of each request, rendered for the
answering model's family), the chain of models it goes to (each prompted and traced),
and one request streamed through it, its usage counted as it ends.

Stepped turns (copilot/steps.py) add the tools and the steps to the system message
and end each request with its step, in the user's turn when the run has no messages
of its own yet: everything before the step stays the same from one request to the
next, so a local model reuses its cached prompt.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import replace
from typing import Any

from pilothouse.copilot import steps
from pilothouse.copilot.events import Continued, ModelUsed, RunEvent, UsageUpdate
from pilothouse.copilot.follow_ups import question_line
from pilothouse.copilot.grounding import PASSAGES, user_turn
from pilothouse.copilot.prompt_settings import effective_settings
from pilothouse.copilot.prompting import PromptedModel
from pilothouse.copilot.run_state import Parts, RunState
from pilothouse.copilot.traced_model import TracedModel
from pilothouse.models.base import Model, close_stream
from pilothouse.models.fallback import FallbackModel, reject_empty
from pilothouse.tools.base import Tool
from pilothouse.tracing import current_span
from pilothouse.types import (
    Message,
    ModelRequest,
    ModelResponse,
    OutputSchema,
    StreamContinued,
    StreamEnd,
    StreamError,
    TextDelta,
    TextPart,
    ToolChoice,
    ToolSpec,
)


class StreamBroke(Exception):
    """A model's stream broke after content was sent (`error` says why)."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


class RunModel:
    """The copilot's models as one run calls them (see the module doc)."""

    def __init__(
        self,
        parts: Parts,
        state: RunState,
        inputs: Mapping[str, Any],
        *,
        strict: bool,
        stepped: bool,
    ):
        self.parts = parts
        self.definition = parts.definition
        self.state = state
        self.inputs = inputs
        self.strict = strict
        self.stepped = stepped
        self.tools: list[Tool] = list(parts.toolset)
        self.settings = parts.settings or effective_settings(parts.definition, None)
        self.step = ""
        """The step the next request ends with (stepped turns)."""

    def request(
        self,
        messages: tuple[Message, ...],
        specs: tuple[ToolSpec, ...],
        choice: ToolChoice,
        schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> ModelRequest:
        """A request with the copilot's options (copilot.yaml, then the instructions
        Prompty); `schema` constrains the reply of a step."""
        request = ModelRequest(
            messages=messages, tools=specs, tool_choice=choice, **self.settings.request_fields()
        )
        if schema is None:
            return request
        return replace(
            request,
            output_schema=OutputSchema(schema, name="step", strict=True),
            max_output_tokens=max_tokens or self.max_tokens(),
        )

    def max_tokens(self) -> int:
        return int(self.settings.value("max_output_tokens") or 1024)

    def writes_openings(self) -> bool:
        """Whether a stepped answer's fixed JSON is written for the model rather than
        decoded (copilot/answer_opening.py): every model of the chain takes a grammar
        and continues a final assistant message."""
        models = self.parts.models
        return bool(models) and all(m.profile.grammar and m.continues_assistant() for m in models)

    async def call(self, request: ModelRequest) -> AsyncGenerator[RunEvent | ModelResponse, None]:
        """Stream one request through the copilot's chain; the response last. Usage
        is counted as each call ends, and what the request sent after the run's own
        messages is kept with the reply (`RunState.sent_reply`); a stream that breaks
        raises `StreamBroke`. A request that ends with an assistant message is continued
        from it: the response's text is that message's and the continuation."""
        stream = self.chain().stream(request)
        try:
            async for event in stream:
                if isinstance(event, TextDelta):
                    yield event
                elif isinstance(event, StreamContinued):
                    error = self.parts.tracer.redactor.scrub_text(str(event.error))
                    _note_continuation(event.model, error)
                    yield Continued(event.model, error)
                elif isinstance(event, StreamEnd):
                    sent, response = _whole_reply(request, event.response)
                    self.state.sent_reply = (*sent[len(self.state.tail) :], response.message)
                    self.state.add_usage(response)
                    yield ModelUsed(response.model)
                    yield UsageUpdate(self.state.usage, self.state.cost)
                    yield response
                elif isinstance(event, StreamError):
                    self.state.add_usage(event.partial)
                    raise StreamBroke(event.error)
        finally:
            await close_stream(stream)

    def head(self, family: str) -> list[Message]:
        """The system messages, the conversation and the user's turn, rendered for the
        answering model's family; stepped turns add the tools and steps to the system
        message and end the user's turn with the step when the run has no messages."""
        state = self.state
        values = {"question": state.question, "context": state.context or "", **self.inputs}
        rendered = self.parts.instructions.render(family, values)
        system = list(rendered.system)
        if self.stepped:
            system = _with_suffix(system, steps.system_suffix(self.tools))
        tail = list(rendered.tail) or [Message.user(self._user_turn())]
        if self.stepped and not state.tail and self.step and tail[-1].role == "user":
            last = tail[-1]
            tail[-1] = Message("user", (*last.parts, TextPart(f"\n\n{self.step}")))
        state.sent_turn = tuple(tail)
        return [*system, *state.history, *tail]

    def _user_turn(self) -> str:
        state = self.state
        if not self.stepped:
            return user_turn(
                state.question, state.context, strict=self.strict, tools=bool(self.tools)
            )
        asked = question_line(state.question, state.earlier)
        if state.context:
            return f"{PASSAGES}\n\n{state.context}\n\n{asked}"
        if self.strict:
            return f"No passage of the knowledge base is about this.\n\n{asked}"
        return state.question

    def chain(self) -> Model:
        """The models of this copilot, each prompted for its own family and traced."""
        tracer, models = self.parts.tracer, self.parts.models
        if len(models) == 1:
            return PromptedModel(TracedModel(models[0], tracer), self.head)
        # Each attempt's span applies the chain's rule, so it can say "rejected".
        chain = [
            PromptedModel(TracedModel(m, tracer, accept=reject_empty), self.head) for m in models
        ]
        return FallbackModel(
            chain, accept=reject_empty, continue_streams=self.definition.model.continue_streams
        )


def uses_steps(parts: Parts) -> bool:
    """Whether this copilot's turns are stepped: `model.decision_step` on, or auto and
    the primary model's tools are emulated with constrained decoding."""
    setting = parts.definition.model.decision_step
    if parts.settings is not None and parts.settings.value("output_schema") is not None:
        return False  # the answer has a shape of its own (the Prompty's structured output)
    if setting != "auto":
        return setting == "on"
    profile = parts.models[0].profile if parts.models else None
    return profile is not None and not profile.native_tools and profile.json_schema


def _whole_reply(
    request: ModelRequest, response: ModelResponse
) -> tuple[tuple[Message, ...], ModelResponse]:
    """The messages sent before the reply, and the reply whole: a request ending with
    an assistant message was continued from it, so that message starts the reply."""
    messages = request.messages
    if not messages or messages[-1].role != "assistant":
        return messages, response
    calls = tuple(response.message.tool_calls)
    whole = Message.assistant(messages[-1].text + response.text, calls)
    return messages[:-1], replace(response, message=whole)


def _with_suffix(system: list[Message], suffix: str) -> list[Message]:
    if not system:
        return [Message.system(suffix)]
    first = system[0]
    return [Message.system(f"{first.text}\n\n{suffix}"), *system[1:]]


def _note_continuation(model: str, error: str) -> None:
    """A broken answer carried on by another model: said in the trace of the step (and
    to the caller, by a `Continued` event)."""
    span = current_span()
    if span is not None:
        span.add_event(
            "model.continued", {"pilothouse.continued_on": model, "error.message": error}
        )
