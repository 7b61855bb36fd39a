"""Checks of a multi-turn case's earlier turns: when they are asked of the copilot
(`earlier_turns: asked`), a user turn may expect things of its own answer, checked by
the same deterministic checks as the case's question."""

from __future__ import annotations

from pilothouse.pipeline.metrics.base import CaseContext, Metric, Score
from pilothouse.pipeline.metrics.checks import (
    ANSWER_INCLUDES,
    ANSWER_MATCHES,
    ANSWER_SCHEMA,
    NO_ANSWER,
    SOURCES,
    TOOL_CALLS,
    TOOL_RESTRAINT,
)

TURN_CHECKS = (
    ANSWER_INCLUDES,
    ANSWER_MATCHES,
    ANSWER_SCHEMA,
    SOURCES,
    TOOL_CALLS,
    TOOL_RESTRAINT,
    NO_ANSWER,
)


class EarlierTurns(Metric):
    name = "earlier_turns"
    description = "every earlier turn that expects something (asked turns) passed its checks"

    async def score(self, context: CaseContext) -> Score | None:
        case, outcome = context.case, context.outcome
        if not context.suite.asks_turns(case):
            return None
        failed: list[str] = []
        checked = False
        for number, (turn, answered) in enumerate(
            zip(case.conversation, outcome.turns, strict=True), 1
        ):
            if turn.expect is None:
                continue
            checked = True
            asked = case.model_copy(
                update={"question": turn.text, "expect": turn.expect, "conversation": []}
            )
            turn_context = CaseContext(
                context.suite, asked, answered, context.folder, context.services
            )
            for check in TURN_CHECKS:
                result = await check.score(turn_context)
                if isinstance(result, Score) and result.value == 0.0:
                    detail = f": {result.detail}" if result.detail else ""
                    failed.append(f"turn {number} {check.name}{detail}")
        if not checked:
            return None
        return Score(0.0 if failed else 1.0, "; ".join(failed))


EARLIER_TURNS = EarlierTurns()
