"""The state of one copilot run, and the parts a runtime is composed of."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pilothouse.copilot.asked_slots import AskedFor
from pilothouse.copilot.conversations import ConversationStore
from pilothouse.copilot.definition import CopilotDefinition
from pilothouse.copilot.events import Citation, ToolOutcome
from pilothouse.copilot.memory import ConversationMemory
from pilothouse.copilot.paused_runs import PausedRunStore
from pilothouse.copilot.prompt_settings import PromptSettings
from pilothouse.copilot.prompting import Instructions
from pilothouse.copilot.quoted_answer import Quote
from pilothouse.knowledge.base import KnowledgeBase
from pilothouse.knowledge.rerank import RelevanceJudge
from pilothouse.models.base import Model
from pilothouse.tools.toolset import Toolset
from pilothouse.tracing import Tracer
from pilothouse.types import Message, ModelResponse, Usage


@dataclass
class RunState:
    """What one run knows; what a paused run stores to be resumed."""

    run_id: str
    conversation_id: str
    question: str
    context: str | None
    citations: list[Citation]
    history: list[Message] = field(default_factory=list)
    tail: list[Message] = field(default_factory=list)
    steps: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: float | None = None
    model: str | None = None
    outcomes: list[ToolOutcome] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    key_id: str | None = None
    """The server API key (its id) that started the run; None without a key."""
    evidence: list[Message] = field(default_factory=list)
    """The whole stored conversation: what the user wrote and tools returned in it are
    the evidence identifying arguments are checked against (copilot/grounded_args.py)."""
    limit_hit: bool = False
    force_ask: tuple[AskedFor, ...] | None = None
    """Every call of the last step was blocked: the next stepped turn asks the user for
    these (the values that were missing; empty: "the details you need") instead of
    deciding."""
    asked_before: tuple[AskedFor, ...] | None = None
    """What the conversation's last answer asked the user for, as stored (None: not
    stored, e.g. a conversation the client wrote; read from the conversation instead)."""
    asked: tuple[AskedFor, ...] = ()
    """What this run's answer asks the user for (stored with the conversation)."""
    quotes: tuple[Quote, ...] = ()
    """The passages' units nearest the question first, for a model whose answers quote
    them (copilot/quoted_answer.py); empty for the others."""
    decisions: list[str] = field(default_factory=list)
    model_cited: list[int] = field(default_factory=list)
    """Passage numbers the model named itself (a constrained answer's `sources`)."""
    runtime_cited: set[int] = field(default_factory=set)
    """Passages cited in place of a named source lacking the answer's figures
    (copilot/cited_figures.py): matched by the runtime, not cited by the model."""
    invalid_markers: int = 0
    """[n] markers removed from answers because they pointed at no passage."""
    sent_turn: tuple[Message, ...] | None = None
    """The user's turn as the last request sent it (passages, and a step, included)."""
    ahead: tuple[Message, ...] = ()
    """What was read ahead for this question (copilot/passages_ahead.py): the end of
    `history`, stored with the user's turn (its sent form begins with it)."""
    earlier: tuple[str, ...] = ()
    """The user's earlier questions the question follows (copilot/follow_ups.py)."""
    sent_reply: tuple[Message, ...] | None = None
    """The last request's messages after the run's own, and the model's reply as it
    wrote it; None when the answer is not that reply (said without a model)."""

    def add_usage(self, response: ModelResponse) -> None:
        self.usage = self.usage + response.usage
        if response.cost_usd is not None:
            self.cost = (self.cost or 0.0) + response.cost_usd
        self.model = response.model


@dataclass
class Parts:
    """What a runtime is composed of (the `Copilot` builds these once)."""

    definition: CopilotDefinition
    instructions: Instructions
    models: Sequence[Model]  # one hardened model per id: primary, then fallbacks
    toolset: Toolset
    knowledge: KnowledgeBase | None
    conversations: ConversationStore
    memory: ConversationMemory
    paused: PausedRunStore
    tracer: Tracer
    judge: RelevanceJudge | None = None  # reranks retrieved passages (retrieval.rerank)
    settings: PromptSettings | None = None
    """copilot.yaml merged with the instructions Prompty (None: copilot.yaml alone)."""
