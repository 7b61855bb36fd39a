"""What a case cost: time, tokens, dollars. Lower is better for each. Latency is the
whole case (retrieval, every model call, tools, approvals) as the eval runner saw it,
so it includes waiting for a model that other cases keep busy: measure speed with
`--concurrency 1`."""

from __future__ import annotations

from pilothouse.pipeline.metrics.base import CaseContext, Metric, Score


class _Measure(Metric):
    kind = "measure"
    direction = "lower"


class Latency(_Measure):
    name = "latency_s"
    description = "seconds from asking to the whole answer"
    unit = "s"

    async def score(self, context: CaseContext) -> Score:
        return Score(context.outcome.latency_s)


class TimeToFirstToken(_Measure):
    name = "ttft_s"
    description = "seconds from asking to the first streamed text (none for answers without text)"
    unit = "s"

    async def score(self, context: CaseContext) -> Score | None:
        ttft = context.outcome.ttft_s
        return None if ttft is None else Score(ttft)


class InputTokens(_Measure):
    name = "input_tokens"
    description = "prompt tokens over every model call of the case"
    unit = "tokens"

    async def score(self, context: CaseContext) -> Score:
        return Score(float(context.outcome.usage.input_tokens))


class OutputTokens(_Measure):
    name = "output_tokens"
    description = "generated tokens over every model call of the case"
    unit = "tokens"

    async def score(self, context: CaseContext) -> Score:
        return Score(float(context.outcome.usage.output_tokens))


class Cost(_Measure):
    name = "cost_usd"
    description = "US dollars at the model profile's prices (none where prices are unknown)"
    unit = "$"

    async def score(self, context: CaseContext) -> Score | None:
        cost = context.outcome.cost_usd
        return None if cost is None else Score(cost)


LATENCY = Latency()
TTFT = TimeToFirstToken()
INPUT_TOKENS = InputTokens()
OUTPUT_TOKENS = OutputTokens()
COST = Cost()
