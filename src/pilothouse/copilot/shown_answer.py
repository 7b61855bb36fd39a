"""What the user sees of a model turn's answer: each piece of it through the answer
filter (copilot/answer_filter.py: internal text never reaches the user, [n] markers
that point at no passage are removed), kept for a partial answer on failure, and
what the filter did recorded in the trace; the turn's result (`TurnResult`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from pilothouse.copilot import steps
from pilothouse.copilot.answer_filter import (
    NO_ANSWER_LEFT,
    AnswerFilter,
    InternalTexts,
    RunNotes,
)
from pilothouse.copilot.cited_figures import checked_sources
from pilothouse.copilot.events import RunEvent
from pilothouse.copilot.follow_ups import question_line
from pilothouse.copilot.grounding import NOTHING_FOUND, markers, user_turn
from pilothouse.copilot.run_endings import STEP_LIMIT_NOTE
from pilothouse.copilot.run_state import Parts, RunState
from pilothouse.models.emulation.instructions import (
    ANSWER_OR_CALL_REMINDER,
    CALL_REMINDER,
    ERROR_REMINDER,
    REQUIRED_REMINDER,
    RESULT_REMINDER,
)
from pilothouse.tools.base import Tool
from pilothouse.tracing import attributes as A
from pilothouse.types import Message, TextDelta, ToolCallPart

NOT_COVERED = "I could not find anything about this in the knowledge base, so I cannot answer it."


@dataclass(frozen=True, slots=True)
class TurnResult:
    """What the model said: `message` joins the run's messages; `calls` to run, or
    the answer `text` (as the user saw it) when there are none."""

    message: Message
    calls: list[ToolCallPart]
    text: str = ""


class ShownAnswer:
    """The answer of one run's turns as the user sees it (see the module doc)."""

    def __init__(self, parts: Parts, state: RunState, tools: Sequence[Tool]):
        self.parts, self.state = parts, state
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
                question_line("q", ("e",)),
                *steps.STEP_TEXTS,
                *steps.parameter_descriptions(tools),
            ],
            [tool.name for tool in tools],
        )

    def say(self, text: str, *, replied: bool = False) -> list[RunEvent | TurnResult]:
        """`text` as the answer; `replied`: it is what the last model call said (its
        reply, as written, stays the answer's sent form)."""
        if not replied:
            self.state.sent_reply = None
        return [*self.emit(text), TurnResult(Message.assistant(text), [], text)]

    def filter(self, *, structured: bool = False) -> AnswerFilter:
        passages = frozenset(c.number for c in self.state.citations)
        notes = RunNotes.of([*self.state.history, *self.state.tail])
        return AnswerFilter(self.internal, passages, structured, notes)

    def emit(self, text: str) -> list[RunEvent]:
        """Shown text, as an event (and kept for a partial answer on failure)."""
        if not text:
            return []
        self.state.text.append(text)
        return [TextDelta(text)]

    def close(self, answer: AnswerFilter, sources: Sequence[int] = ()) -> str:
        """The rest of the answer, and markers for the `sources` the model named but did
        not mark in its text; what the filter did goes to the trace."""
        rest = answer.finish()
        named = [n for n in dict.fromkeys(sources) if n in answer.passages]
        if named and not markers(answer.text):  # not yet shown: checked (cited_figures.py)
            named, put = checked_sources(answer.text, named, self.state.citations)
            self.state.runtime_cited.update(put)
        self.state.model_cited.extend(n for n in named if n not in self.state.runtime_cited)
        missing = [n for n in named if n not in markers(answer.text)]
        if missing and answer.text.strip():
            extra = " " + "".join(f"[{n}]" for n in missing)
            answer.kept.append(extra)
            rest += extra
        if answer.dropped or answer.invalid_markers:
            self.record_filter(answer)
        return rest

    def end(self, answer: AnswerFilter) -> list[RunEvent | TurnResult]:
        """The answer's end: what was shown, or a plain sorry when every sentence of it
        was internal text."""
        if answer.emptied:
            return [
                *self.emit(NO_ANSWER_LEFT),
                TurnResult(Message.assistant(NO_ANSWER_LEFT), [], NO_ANSWER_LEFT),
            ]
        text = answer.text.strip()
        return [TurnResult(Message.assistant(text), [], text)]

    def record_filter(self, answer: AnswerFilter) -> None:
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
