"""Any chat model as the knowledge layer's relevance judge (`RelevanceJudge`).

The model is asked one constrained yes/no question per passage: the answer must be
the JSON object {"relevant": true|false} (an `OutputSchema`, so local models get it
by constrained decoding and cloud models by their structured-output modes). Anything
else is a `ResponseRejectedError`, which the rerank step reports and never turns
into a silent drop.

The system prompt and the question come first and the passage last, so a local
model's prompt cache reuses the shared prefix across the passages of one query. The
closing question is worded "Does the passage answer the question?": on six hand-made
pairs the embedded 0.5B model judged all six right with it, and called an unrelated
passage relevant when asked "Is the passage relevant?".
"""

from __future__ import annotations

import json

from pilothouse.errors import ResponseRejectedError
from pilothouse.models.base import Model
from pilothouse.types import Message, ModelRequest, OutputSchema

RELEVANCE_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {"relevant": {"type": "boolean"}},
    "required": ["relevant"],
    "additionalProperties": False,
}

INSTRUCTIONS = (
    "You judge search results. Given a question and a passage, decide whether the "
    "passage contains information that helps answer the question. Reply with JSON "
    'only: {"relevant": true} or {"relevant": false}.'
)


CLOSING = "Does the passage answer the question?"


class ModelRelevanceJudge:
    """`judge(query, passage)` -> 1.0 (relevant) or 0.0 (not), asked of `model`."""

    def __init__(self, model: Model, *, max_passage_chars: int = 2000):
        self.model = model
        self.max_passage_chars = max_passage_chars

    def request(self, query: str, passage: str) -> ModelRequest:
        text = (
            passage
            if len(passage) <= self.max_passage_chars
            else (passage[: self.max_passage_chars] + " …")
        )
        return ModelRequest(
            messages=(
                Message.system(INSTRUCTIONS),
                Message.user(f"Question: {query}\n\nPassage:\n{text}\n\n{CLOSING}"),
            ),
            output_schema=OutputSchema(RELEVANCE_SCHEMA, name="relevance"),
            temperature=0.0,
            max_output_tokens=16,
        )

    async def judge(self, query: str, passage: str) -> float:
        response = await self.model.complete(self.request(query, passage))
        try:
            verdict = json.loads(response.text)
        except json.JSONDecodeError:
            verdict = None
        if not isinstance(verdict, dict) or not isinstance(verdict.get("relevant"), bool):
            raise ResponseRejectedError(
                f'the relevance judge answered {response.text[:80]!r}, not {{"relevant": '
                "true|false}; use a model that supports structured output",
                model=response.model,
            )
        return 1.0 if verdict["relevant"] else 0.0
