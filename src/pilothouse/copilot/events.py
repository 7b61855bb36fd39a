"""The typed events of a copilot run, and its final answer.

A run streams: `RunStarted`, `Retrieved`, `Decided` (models that decide in a step of
their own), `TextDelta`s, `ToolCallStarted` / `ToolCallFinished` (or `ToolCallBlocked`),
`ApprovalRequired` (the run pauses), `Continued` (a broken answer carried on by another
model), `ModelUsed`, `UsageUpdate`, `Citations`, and finally `RunFinished` (with the
`Answer`) or `RunFailed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from pilothouse.tracing.attributes import RunStatus
from pilothouse.types import TextDelta, ToolCallPart, Usage


@dataclass(frozen=True, slots=True)
class Citation:
    """A passage the answer rests on. `number` is the [n] the model saw and cited."""

    number: int
    source: str
    title: str
    page: int | None
    headings: tuple[str, ...]
    snippet: str
    chunk_id: int
    score: float
    inferred: bool = False
    """True when the model gave no [n] and Pilothouse matched the answer to this passage."""
    text: str = field(default="", repr=False, compare=False)
    """The whole passage (for matching; not part of `to_dict`)."""

    @property
    def where(self) -> str:
        """File, then page or heading path, for a person."""
        parts = [self.source]
        if self.page is not None:
            parts.append(f"page {self.page}")
        if self.headings:
            parts.append(" > ".join(self.headings))
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "source": self.source,
            "title": self.title,
            "page": self.page,
            "headings": list(self.headings),
            "snippet": self.snippet,
            "chunk_id": self.chunk_id,
            "score": self.score,
            "inferred": self.inferred,
        }


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    call: ToolCallPart
    content: str
    is_error: bool
    duration_s: float
    approved: bool | None = None  # None: no approval was needed
    started_at: float = 0.0  # wall-clock epoch seconds


@dataclass(frozen=True, slots=True)
class PendingApproval:
    """A tool call waiting for a person's decision."""

    run_id: str
    call: ToolCallPart
    description: str


@dataclass(frozen=True, slots=True)
class Answer:
    run_id: str
    conversation_id: str
    status: RunStatus
    text: str
    citations: tuple[Citation, ...] = ()
    tool_calls: tuple[ToolOutcome, ...] = ()
    pending: tuple[PendingApproval, ...] = ()
    handed: tuple[ToolCallPart, ...] = ()
    """Calls of the caller's own tools (status awaiting_tool_output): their results,
    given to `resume`, continue the run."""
    model: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RunStarted:
    run_id: str
    conversation_id: str
    kind: Literal["run_started"] = "run_started"


@dataclass(frozen=True, slots=True)
class Retrieved:
    passages: tuple[Citation, ...]
    kind: Literal["retrieved"] = "retrieved"


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    call: ToolCallPart
    kind: Literal["tool_call_started"] = "tool_call_started"


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    outcome: ToolOutcome
    kind: Literal["tool_call_finished"] = "tool_call_finished"


@dataclass(frozen=True, slots=True)
class Decided:
    """The decision step of a stepped turn (copilot/steps.py): what was decided
    (answer, call, ask, not_covered), the tool of a call, how long the step took, and
    `forced` when the runtime decided without asking the model (why)."""

    decision: str
    tool: str | None = None
    seconds: float = 0.0
    forced: str | None = None
    kind: Literal["decided"] = "decided"


@dataclass(frozen=True, slots=True)
class ToolCallBlocked:
    """A call that did not run (nor was offered for approval) because an identifying
    argument was not given by the user (copilot/grounded_args.py). `reason` is what
    the model was told instead of a result."""

    call: ToolCallPart
    reason: str
    kind: Literal["tool_call_blocked"] = "tool_call_blocked"


@dataclass(frozen=True, slots=True)
class ApprovalRequired:
    pending: tuple[PendingApproval, ...]
    kind: Literal["approval_required"] = "approval_required"


@dataclass(frozen=True, slots=True)
class Continued:
    """The answer's stream broke after text was sent and `model` carries it on from
    that text (`continue_streams`): the `TextDelta`s that follow are its."""

    model: str
    error: str
    """What broke the stream (scrubbed of secrets)."""
    kind: Literal["continued"] = "continued"


@dataclass(frozen=True, slots=True)
class ModelUsed:
    model: str
    kind: Literal["model_used"] = "model_used"


@dataclass(frozen=True, slots=True)
class UsageUpdate:
    usage: Usage
    cost_usd: float | None
    kind: Literal["usage"] = "usage"


@dataclass(frozen=True, slots=True)
class Citations:
    citations: tuple[Citation, ...]
    kind: Literal["citations"] = "citations"


@dataclass(frozen=True, slots=True)
class RunFinished:
    answer: Answer
    kind: Literal["run_finished"] = "run_finished"


@dataclass(frozen=True, slots=True)
class RunFailed:
    error: Exception
    answer: Answer
    kind: Literal["run_failed"] = "run_failed"


RunEvent: TypeAlias = (
    RunStarted
    | Retrieved
    | Decided
    | TextDelta
    | ToolCallStarted
    | ToolCallFinished
    | ToolCallBlocked
    | ApprovalRequired
    | Continued
    | ModelUsed
    | UsageUpdate
    | Citations
    | RunFinished
    | RunFailed
)
