"""Judged metrics: a model applies a rubric (pipeline/judge.py). With two judges each
gives its own score (the summary shows their agreement); a judge's unusable verdict is
an unjudged score (value None)."""

from __future__ import annotations

from collections.abc import Sequence

from pilothouse.pipeline.metrics.base import CaseContext, Metric, Score


def passages_text(context: CaseContext) -> str:
    """The passages the answer rests on (cited, else everything retrieved), numbered."""
    outcome = context.outcome
    chosen = outcome.citations or outcome.retrieved
    return "\n\n".join(f"[{c.number}] ({c.where})\n{c.text or c.snippet}" for c in chosen)


class _Judged(Metric):
    kind = "score"
    rubric: str

    def inputs(self, context: CaseContext) -> dict[str, str] | None:
        raise NotImplementedError

    async def score(self, context: CaseContext) -> Sequence[Score] | None:
        judges = context.services.judges
        inputs = self.inputs(context) if judges else None
        if inputs is None:
            return None
        scores = []
        for judge in judges:
            verdict = await judge.judge(self.rubric, inputs)
            scores.append(Score(verdict.value, verdict.reason, judge=judge.id))
        return scores


class Correctness(_Judged):
    name = "correctness"
    description = "a judge's verdict on the answer against the case's reference answer"
    rubric = "correctness"

    def inputs(self, context: CaseContext) -> dict[str, str] | None:
        reference = context.case.reference
        if reference is None or not context.outcome.text.strip():
            return None
        return {
            "question": context.case.question,
            "answer": context.outcome.text,
            "reference": reference,
            "passages": passages_text(context),
        }


class Groundedness(_Judged):
    name = "groundedness"
    description = "a judge's verdict on whether every claim is supported by the passages given"
    rubric = "groundedness"

    def inputs(self, context: CaseContext) -> dict[str, str] | None:
        passages = passages_text(context)
        if not passages or not context.outcome.text.strip():
            return None
        return {
            "question": context.case.question,
            "answer": context.outcome.text,
            "passages": passages,
            "reference": context.case.reference or "",
        }


CORRECTNESS = Correctness()
GROUNDEDNESS = Groundedness()
