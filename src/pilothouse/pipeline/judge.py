"""LLM judges: a model (any model) applies a rubric to one answer and returns a verdict.

A rubric is a Prompty file (built-ins in pipeline/rubrics/, replaceable per copilot in
copilot.yaml `evals.rubrics`). It receives `question`, `answer`, `reference` and
`passages`, and must ask for a JSON object `{"reason": "...", "verdict": "yes" |
"partly" | "no"}`; the request asks for exactly that shape (constrained decoding where
the model supports it). A verdict becomes 1, 0.5 or 0. Anything else, a failed call
included, is *unjudged*: recorded with what the judge said, never a pass or a fail.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pilothouse.copilot.prompty import Prompty, load_prompty
from pilothouse.errors import PilothouseError
from pilothouse.models.base import Model
from pilothouse.types import ModelRequest, OutputSchema

RUBRICS_DIR = Path(__file__).parent / "rubrics"
BUILTIN_RUBRICS = ("correctness", "groundedness")
DEFAULT_JUDGE = "local:qwen2.5-coder-1.5b"
VERDICTS: dict[str, float] = {"yes": 1.0, "partly": 0.5, "no": 0.0}
VERDICT_SCHEMA = OutputSchema(
    schema={
        "type": "object",
        "properties": {
            "reason": {"type": "string"},
            "verdict": {"type": "string", "enum": list(VERDICTS)},
        },
        "required": ["reason", "verdict"],
        "additionalProperties": False,
    },
    name="verdict",
)
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Verdict:
    value: float | None
    """1, 0.5 or 0; None when the judge's answer could not be used."""
    reason: str


def parse_verdict(text: str) -> Verdict:
    """The judge's answer as a verdict; unusable answers are unjudged (value None)."""
    candidates = [text.strip()]
    found = _OBJECT.search(text)
    if found:
        candidates.append(found.group(0))
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict):
            verdict = str(data.get("verdict", "")).strip().lower()
            reason = str(data.get("reason", "")).strip()
            if verdict in VERDICTS:
                return Verdict(VERDICTS[verdict], reason)
            return Verdict(None, f"unjudged: verdict {verdict!r} is not yes, partly or no")
    shown = " ".join(text.split())[:200]
    return Verdict(None, f"unjudged: not a JSON verdict: {shown!r}")


def load_rubrics(folder: Path, overrides: Mapping[str, str]) -> dict[str, Prompty]:
    """The built-in rubrics, each replaced by the copilot's own file where named."""
    rubrics = {}
    for name in BUILTIN_RUBRICS:
        path = folder / overrides[name] if name in overrides else RUBRICS_DIR / f"{name}.prompty"
        rubrics[name] = load_prompty(path)
    return rubrics


class Judge:
    """One judge model with its rubrics."""

    def __init__(self, model: Model, rubrics: Mapping[str, Prompty], *, label: str = ""):
        self.model = model
        self.rubrics = dict(rubrics)
        self.id = label or model.id

    async def judge(self, rubric: str, inputs: Mapping[str, Any]) -> Verdict:
        prompty = self.rubrics[rubric]
        try:
            messages = prompty.render(dict(inputs))
        except PilothouseError as exc:
            return Verdict(None, f"unjudged: the rubric does not render: {exc}")
        options = prompty.definition.model.options
        request = ModelRequest(
            messages=tuple(messages),
            output_schema=VERDICT_SCHEMA,
            temperature=options.temperature if options.temperature is not None else 0.0,
            max_output_tokens=options.max_output_tokens or 300,
        )
        try:
            response = await self.model.complete(request)
        except PilothouseError as exc:
            return Verdict(None, f"unjudged: the judge failed: {exc}")
        return parse_verdict(response.text)

    async def aclose(self) -> None:
        await self.model.aclose()
