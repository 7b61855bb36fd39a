"""The replies of a stepped turn's other steps (copilot/steps.py): the answer's
schema over the passages given, the answer read as it streams (`AnswerStream`) and
whole (`parse_answer`), a question back that only repeats the user's (`repeats`), and
the arguments of an arguments step (`parse_arguments`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pilothouse.models.emulation.decoder import JsonStringReader


def answer_schema(passages: Sequence[int]) -> dict[str, Any]:
    """`{"sources": [...], "answer": ...}` over these passage numbers (at least one),
    or `{"answer": ...}` when there are none."""
    answer = {"type": "string", "minLength": 1}
    if not passages:
        return {
            "type": "object",
            "properties": {"answer": answer},
            "required": ["answer"],
            "additionalProperties": False,
        }
    return {
        "type": "object",
        "properties": {
            "sources": {
                "type": "array",
                "items": {"type": "integer", "enum": sorted(set(passages))},
                "minItems": 1,
                "maxItems": min(3, len(set(passages))),
            },
            "answer": answer,
        },
        "required": ["sources", "answer"],
        "additionalProperties": False,
    }


def parse_answer(text: str) -> tuple[str | None, list[int]]:
    """The answer and the passage numbers of a constrained answer; (None, []) when
    the reply is not that JSON (cut off, for one)."""
    try:
        value = json.loads(text)
    except ValueError:
        return None, []
    if not isinstance(value, dict) or not isinstance(value.get("answer"), str):
        return None, []
    sources = value.get("sources")
    numbers = [n for n in sources if isinstance(n, int)] if isinstance(sources, list) else []
    return value["answer"], numbers


def repeats(reply: str, question: str) -> bool:
    """Whether `reply` only says the user's `question` again (a small model's "ask"
    for a knowledge question: "Do you need the original box to send something
    back?"): most of its words are the question's."""
    said = _words(reply)
    asked = set(_words(question)) | {"you", "your", "i", "my", "me", "do", "does", "is"}
    if len(said) < 3:
        return False
    return sum(1 for w in said if w in asked) / len(said) >= 0.75


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


class AnswerStream:
    """Reads the `"answer"` string out of a constrained answer as it streams, so the
    user sees it token by token (the keys before it wait)."""

    _KEY = re.compile(r'"answer"\s*:\s*"')

    def __init__(self) -> None:
        self.raw = ""
        self.text = ""
        """The answer decoded so far."""
        self._reader: JsonStringReader | None = None
        self._done = False

    def feed(self, text: str) -> str:
        self.raw += text
        if self._done:
            return ""
        if self._reader is None:
            match = self._KEY.search(self.raw)
            if match is None:
                return ""
            self._reader = JsonStringReader()
            pending = self.raw[match.end() :]
        else:
            pending = self._reader.rest + text
        piece, self._done = self._reader.read(pending)
        self.text += piece
        return piece


def parse_arguments(text: str) -> tuple[dict[str, Any], str | None]:
    """The arguments of an arguments step, or ({}, the raw text) when they are not a
    JSON object (the tool then reports the error to the model)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}, text
    return (value, None) if isinstance(value, dict) else ({}, text)
