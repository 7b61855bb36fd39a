"""The model calls of a model turn: a request whose answer the user sees as it
streams (`shown_stream`), a reply the runtime gives in its place (`given`), a step the
user does not see (`silent`), and the run's messages with the step last (`messages`;
copilot/steps.py).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import replace
from typing import Any

from pilothouse.copilot import answer_opening
from pilothouse.copilot.answer_filter import AnswerFilter
from pilothouse.copilot.events import RunEvent
from pilothouse.copilot.run_model import RunModel, StreamBroke
from pilothouse.copilot.shown_answer import ShownAnswer
from pilothouse.tracing import attributes as A
from pilothouse.types import Message, ModelRequest, ModelResponse, TextDelta, ToolSpec, Usage


class StepCalls:
    """One run's model calls for its turns; the last shown response is `response`."""

    def __init__(self, model: RunModel, shown: ShownAnswer):
        self.model, self.state, self.shown = model, model.state, shown
        self.response = ModelResponse(Message.assistant(""), "stop", Usage(), "")

    async def shown_stream(
        self, request: ModelRequest, answer: AnswerFilter, read: Callable[[str], str]
    ) -> AsyncGenerator[RunEvent, None]:
        """A request whose answer the user sees as it streams: each piece of text goes
        through `read` (the raw text, or the answer decoded out of a constrained reply),
        then the filter; the response is left in `self.response`. When the stream
        breaks, what the filter held is released first (the partial answer is kept)."""
        async with aclosing(self.model.call(request)) as events:
            try:
                async for event in events:
                    if isinstance(event, TextDelta):
                        for out in self.shown.emit(answer.feed(read(event.text))):
                            yield out
                    elif isinstance(event, ModelResponse):
                        self.response = event
                    else:
                        yield event
            except StreamBroke:
                for held in self.shown.emit(answer.finish()):
                    yield held
                raise

    def given(
        self,
        messages: tuple[Message, ...],
        reply: str,
        start: str,
        answer: AnswerFilter,
        read: Callable[[str], str],
    ) -> list[RunEvent]:
        """`reply`, the only text the request after `messages` could have decoded
        (copilot/quoted_answer.py), given without a request: its text after `start`
        through `read` and the filter as a streamed reply's, the span `answer_given`,
        and kept as the request's reply would be (`self.response`, `sent_reply`)."""
        whole = Message.assistant(reply)
        self.response = ModelResponse(whole, "stop", Usage(), self.state.model or "")
        self.state.sent_reply = (*messages[len(self.state.tail) :], whole)
        self.model.parts.tracer.record_span(
            "answer_given",
            start_time=time.time(),
            duration_s=0.0,
            attributes={A.ANSWER_GIVEN: reply},
        )
        return self.shown.emit(answer.feed(read(reply[len(start) :])))

    async def silent(
        self,
        specs: tuple[ToolSpec, ...],
        step: str,
        schema: dict[str, Any] | None,
        max_tokens: int,
        messages: tuple[Message, ...] | None = None,
    ) -> AsyncGenerator[RunEvent | str, None]:
        """A step the user does not see (constrained by `schema`); its whole text last.
        `messages`: already with their step (else the run's, ending with `step`)."""
        sent = self.messages(step) if messages is None else messages
        request = self.model.request(
            sent, specs, "none" if specs else "auto", schema, max_tokens or None
        )
        async with aclosing(self.silent_request(request)) as running:
            async for event in running:
                yield event

    async def sources(
        self, specs: tuple[ToolSpec, ...], messages: tuple[Message, ...], passages: Sequence[int]
    ) -> AsyncGenerator[RunEvent | list[int], None]:
        """The passage numbers an answer cites, asked for alone after the reply's given
        start (copilot/answer_opening.py); the numbers last (none when it was cut)."""
        start = Message.assistant(answer_opening.SOURCES_START)
        request = replace(
            self.model.request((*messages, start), specs, "none" if specs else "auto"),
            grammar=answer_opening.sources_grammar(passages),
            stop=(answer_opening.SOURCES_STOP,),
            max_output_tokens=16,
        )
        text = ""
        async with aclosing(self.silent_request(request)) as running:
            async for event in running:
                if isinstance(event, str):
                    text = event
                else:
                    yield event
        yield answer_opening.read_sources(text[len(start.text) :], passages)

    async def silent_request(self, request: ModelRequest) -> AsyncGenerator[RunEvent | str, None]:
        """`request` as a step the user does not see; its whole text last."""
        response: ModelResponse | None = None
        async with aclosing(self.model.call(request)) as events:
            async for event in events:
                if isinstance(event, ModelResponse):
                    response = event
                elif not isinstance(event, TextDelta):
                    yield event
        assert response is not None
        yield response.text

    def messages(self, step: str, after: tuple[Message, ...] = ()) -> tuple[Message, ...]:
        """The run's messages with the step last: in the head's user turn when the
        run has none yet (see `head`), else as a user message of its own; then `after`."""
        self.model.step = step
        if not self.state.tail:
            return after
        return (*self.state.tail, Message.user(step), *after)
