"""Online scores of one live answer, without a reference answer (docs/promotion.md).

`error_rate` (1 when the model gave no answer), `latency_s`, `citations` (an [n] to a
retrieved passage, where passages came and the answer is not a refusal),
`tool_validity` (the share of its tool calls that name a known tool with arguments
valid against its schema), `refusal` (it says it cannot answer), `groundedness` (a
judge, against the retrieved passages) and, given the current model's answer to the
same request (shadow), `agreement` (a judge) and `similarity` (embeddings). A score
that does not apply, or an unusable verdict, is None.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pilothouse.copilot.events import Citation, ToolOutcome
from pilothouse.copilot.prompty import load_prompty
from pilothouse.knowledge.embeddings import Embedder
from pilothouse.models.base import Model
from pilothouse.pipeline.judge import RUBRICS_DIR, Judge, load_rubrics
from pilothouse.pipeline.metrics.checks import NOT_COVERED_PHRASES
from pilothouse.pipeline.metrics.similarity import cosine, without_markers
from pilothouse.tools.toolset import Toolset

log = logging.getLogger(__name__)

Values = dict[str, float | None]
_CANNOT = re.compile(
    r"(?i)\b(i (can(no|')t|am unable to|am not able to) (help|answer|assist)|"
    r"i do(n't| not) know)\b"
)


@dataclass(frozen=True, slots=True)
class Observation:
    """One model's answer to one live request, as the scorer sees it."""

    question: str
    text: str = ""
    error: str | None = None
    latency_s: float | None = None
    passages: tuple[Citation, ...] = ()
    """What retrieval gave the model."""
    citations: tuple[Citation, ...] = ()
    tool_calls: tuple[ToolOutcome, ...] = field(default_factory=tuple)
    run_id: str | None = None
    conversation_id: str | None = None


def is_refusal(text: str) -> bool:
    return not text.strip() or bool(NOT_COVERED_PHRASES.search(text) or _CANNOT.search(text))


def numbered(passages: Sequence[Citation]) -> str:
    return "\n\n".join(f"[{c.number}] ({c.where})\n{c.text or c.snippet}" for c in passages)


def online_judge(model: Model, folder: Path, overrides: dict[str, str], label: str) -> Judge:
    """A judge with the eval rubrics (the copilot's own where it names them) and the
    agreement rubric."""
    rubrics = load_rubrics(folder, overrides)
    rubrics["agreement"] = load_prompty(RUBRICS_DIR / "agreement.prompty")
    return Judge(model, rubrics, label=label)


class OnlineScorer:
    """Scores observations; `toolset` checks tool calls, `judge` and `embedder` are
    optional (their metrics are then not scored)."""

    def __init__(
        self,
        toolset: Toolset | None = None,
        judge: Judge | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.toolset = toolset
        self.judge = judge
        self.embedder = embedder

    async def score(
        self, observed: Observation, current: Observation | None = None, *, judged: bool = True
    ) -> Values:
        """The scores of `observed`; `current`: the current model's answer to the same
        request (agreement, similarity); `judged`: let the judge score (it is costly)."""
        if observed.error is not None:
            return {"error_rate": 1.0}
        values: Values = {"error_rate": 0.0, "latency_s": observed.latency_s}
        refused = is_refusal(observed.text)
        values["refusal"] = 1.0 if refused else 0.0
        if observed.passages and not refused:
            cited = any(not c.inferred for c in observed.citations)
            values["citations"] = 1.0 if cited else 0.0
        values["tool_validity"] = self._tool_validity(observed.tool_calls)
        if judged and self.judge is not None:
            values["groundedness"] = await self._groundedness(observed)
        usable = current is not None and current.error is None and current.text.strip()
        if current is not None and usable:
            if judged and self.judge is not None:
                values["agreement"] = await self._agreement(observed, current)
            if self.embedder is not None:
                values["similarity"] = await self._similarity(observed.text, current.text)
        return {k: v for k, v in values.items() if v is not None}

    def _tool_validity(self, calls: Sequence[ToolOutcome]) -> float | None:
        if not calls:
            return None
        valid = 0
        for outcome in calls:
            call = outcome.call
            tool = self.toolset.get(call.name) if self.toolset is not None else None
            if tool is None or call.raw_arguments is not None:
                continue
            if not tool.validate(call.arguments):
                valid += 1
        return valid / len(calls)

    async def _groundedness(self, observed: Observation) -> float | None:
        assert self.judge is not None
        chosen = observed.citations or observed.passages
        if not chosen or not observed.text.strip():
            return None
        verdict = await self.judge.judge(
            "groundedness",
            {
                "question": observed.question,
                "answer": observed.text,
                "passages": numbered(chosen),
                "reference": "",
            },
        )
        return verdict.value

    async def _agreement(self, observed: Observation, current: Observation) -> float | None:
        assert self.judge is not None
        verdict = await self.judge.judge(
            "agreement",
            {
                "question": observed.question,
                "answer": observed.text,
                "reference": current.text,
                "passages": numbered(observed.passages),
            },
        )
        return verdict.value

    async def _similarity(self, a: str, b: str) -> float | None:
        assert self.embedder is not None
        left, right = without_markers(a), without_markers(b)
        if not right:
            return None
        if not left:
            return 0.0
        try:
            x, y = await self.embedder.embed([left, right])
        except Exception as exc:  # an embedder failure leaves the score out, nothing else
            log.warning("similarity not scored: %s", exc)
            return None
        return cosine(x, y)
