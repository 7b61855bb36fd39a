"""Acting only on what the user said (docs/evals.md): identifiers the copilot invented,
calls the grounded-argument check stopped, citations the model made itself, and the
time its decision step took."""

from __future__ import annotations

from pilothouse.copilot.grounded_args import Evidence, invented
from pilothouse.pipeline.metrics.base import CaseContext, Metric, Score


class InventedArguments(Metric):
    name = "invented_arguments"
    description = (
        "a tool call that ran or was offered for approval carried an identifier (3+ digits "
        "or an @, in any argument, free text too) that the user never wrote and no earlier "
        "tool result held"
    )
    kind = "rate"
    direction = "lower"

    async def score(self, context: CaseContext) -> Score:
        case, outcome = context.case, context.outcome
        said = [case.question, *(t.text for t in case.conversation if t.role == "user")]
        found: list[str] = []
        for index, made in enumerate(outcome.tool_calls):
            # The runtime's own rule (copilot/grounded_args.py `invented`).
            evidence = Evidence(said, [o.content for o in outcome.tool_calls[:index]])
            for value in invented(made.call.arguments, evidence, numbers=True):
                found.append(f"{made.call.name}: {value}")
        return Score(1.0 if found else 0.0, "; ".join(found))


class BlockedCalls(Metric):
    name = "blocked_calls"
    description = "the grounded-argument check stopped a call the model wanted to make"
    kind = "rate"
    direction = "lower"

    async def score(self, context: CaseContext) -> Score:
        blocked = context.outcome.blocked
        shown = "; ".join(f"{b.name}({b.arguments_json})" for b in blocked)
        return Score(1.0 if blocked else 0.0, shown)


class ModelCited(Metric):
    name = "model_cited"
    description = "an answer that should cite sources cites at least one passage itself with [n]"
    kind = "rate"

    async def score(self, context: CaseContext) -> Score | None:
        if not context.case.expect.sources:
            return None
        made = [c.number for c in context.outcome.citations if not c.inferred]
        return Score(1.0 if made else 0.0, "" if made else "no [n] from the model")


class DecisionTime(Metric):
    name = "decision_s"
    description = "seconds spent in decision steps (models that decide in a step of their own)"
    kind = "measure"
    direction = "lower"
    unit = "s"

    async def score(self, context: CaseContext) -> Score | None:
        decisions = context.outcome.decisions
        if not decisions:
            return None
        return Score(sum(d.seconds for d in decisions), ", ".join(d.decision for d in decisions))


INVENTED_ARGUMENTS = InventedArguments()
BLOCKED_CALLS = BlockedCalls()
MODEL_CITED = ModelCited()
DECISION_TIME = DecisionTime()
