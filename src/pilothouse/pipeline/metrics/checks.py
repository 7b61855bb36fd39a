"""The deterministic checks of the suite format: each scores 1 (pass) or 0 (fail),
applies only to cases that expect it, and together they decide whether a case passed."""

from __future__ import annotations

import json
import re
from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator

from pilothouse.copilot.events import Citation
from pilothouse.pipeline.metrics.base import CaseContext, Metric, Score
from pilothouse.pipeline.suite import ExpectedSource, ExpectedToolCall, alternatives
from pilothouse.types import ToolCallPart

if TYPE_CHECKING:
    from pilothouse.pipeline.execute import CaseOutcome

# How an answer says the knowledge does not cover a question (case-insensitive).
NOT_COVERED_PHRASES = re.compile(
    r"not (?:cover|covered|mention|mentioned|include|included|contain|specified|say)"
    r"|(?:could|can|do|does|did)(?:n't| not) (?:find|have|cover|mention|say|contain|include)"
    r"|cannot (?:find|answer|help)|can't (?:answer|help)|unable to (?:find|answer)"
    r"|no (?:information|passage|mention|details|relevant)"
    r"|(?:isn't|is not|aren't|are not) (?:covered|mentioned|in the|part of|available)"
    r"|(?:outside|beyond) (?:the scope|what)|i don't know|i do not know",
    re.IGNORECASE,
)


def normalise(text: str) -> str:
    """Lower case, Markdown emphasis and code marks removed, whitespace collapsed."""
    return " ".join(re.sub(r"[*`_]", "", text).lower().split())


def _passed(ok: bool, detail: str = "") -> Score:
    return Score(1.0 if ok else 0.0, "" if ok else detail)


class AnswerIncludes(Metric):
    name = "answer_includes"
    description = "the answer contains every expected fact (any one of a list's alternatives)"

    async def score(self, context: CaseContext) -> Score | None:
        wanted = context.case.expect.answer_includes
        if not wanted:
            return None
        text = normalise(context.outcome.text)
        missing = [
            " or ".join(alternatives(k))
            for k in wanted
            if not any(normalise(option) in text for option in alternatives(k))
        ]
        return _passed(not missing, f"missing: {'; '.join(missing)}")


class AnswerMatches(Metric):
    name = "answer_matches"
    description = "the answer matches every expected regular expression"

    async def score(self, context: CaseContext) -> Score | None:
        patterns = context.case.expect.answer_matches
        if not patterns:
            return None
        failing = [p for p in patterns if re.search(p, context.outcome.text) is None]
        return _passed(not failing, f"no match for: {'; '.join(failing)}")


def json_of(text: str) -> Any:
    """The answer as JSON: the whole text, or the inside of one ```json fence."""
    stripped = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", stripped, flags=re.DOTALL)
    return json.loads(fenced.group(1) if fenced else stripped)


class AnswerSchema(Metric):
    name = "answer_schema"
    description = "the answer is JSON that validates against the expected JSON Schema"

    async def score(self, context: CaseContext) -> Score | None:
        schema = context.case.expect.answer_schema
        if schema is None:
            return None
        try:
            value = json_of(context.outcome.text)
        except ValueError as exc:
            return _passed(False, f"not JSON: {exc}")
        errors = sorted(Draft202012Validator(schema).iter_errors(value), key=str)
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.absolute_path) or "(root)"
            return _passed(False, f"{where}: {first.message}")
        return _passed(True)


def source_matches(citation: Citation, expected: ExpectedSource) -> bool:
    """The citation is the expected file, and its page or heading where one is named."""
    source = citation.source.replace("\\", "/")
    file = expected.file.replace("\\", "/").removeprefix("./")
    if source != file and not source.endswith("/" + file):
        return False
    if expected.page is not None and citation.page != expected.page:
        return False
    if expected.heading is not None:
        return normalise(expected.heading) in {normalise(h) for h in citation.headings}
    return True


def matching(citations: Sequence[Citation], expected: Sequence[ExpectedSource]) -> list[Citation]:
    return [c for c in citations if any(source_matches(c, e) for e in expected)]


class SourceAmong(Metric):
    """1 when an expected source is among some passages of the outcome (`passages`),
    else 0 with `missed` as the detail; applies to cases that expect sources."""

    @abstractmethod
    def passages(self, outcome: CaseOutcome) -> Sequence[Citation]: ...

    def missed(self, passages: Sequence[Citation]) -> str:
        return ""

    async def score(self, context: CaseContext) -> Score | None:
        expected = context.case.expect.sources
        if not expected:
            return None
        passages = self.passages(context.outcome)
        return _passed(bool(matching(passages, expected)), self.missed(passages))


class Sources(SourceAmong):
    name = "sources"
    description = "the answer cites one of the expected sources (cited by the model or matched)"

    def passages(self, outcome: CaseOutcome) -> Sequence[Citation]:
        return outcome.citations

    def missed(self, passages: Sequence[Citation]) -> str:
        return f"cited: {'; '.join(c.where for c in passages) or 'nothing'}"


def _argument_equal(made: Any, wanted: Any) -> bool:
    if isinstance(made, str) and isinstance(wanted, str):
        return made.strip().lower() == wanted.strip().lower()
    return bool(made == wanted)


def call_matches(call: ToolCallPart, expected: ExpectedToolCall) -> bool:
    if call.name != expected.name:
        return False
    arguments = call.arguments
    for key, wanted in expected.arguments.items():
        if key not in arguments or not _argument_equal(arguments[key], wanted):
            return False
    for key, keywords in expected.arguments_include.items():
        value = arguments.get(key)
        if not isinstance(value, str):
            return False
        text = value.lower()
        if not all(any(o.lower() in text for o in alternatives(k)) for k in keywords):
            return False
    return True


class ToolCalls(Metric):
    name = "tool_calls"
    description = "the copilot made every expected tool call, with the expected arguments"

    async def score(self, context: CaseContext) -> Score | None:
        expected = context.case.expect.tool_calls
        if not expected:
            return None
        made = [o.call for o in context.outcome.tool_calls]
        missing = [e.name for e in expected if not any(call_matches(c, e) for c in made)]
        shown = ", ".join(f"{c.name}({c.arguments_json})" for c in made) or "none"
        return _passed(not missing, f"missing {', '.join(missing)}; made: {shown}")


class ToolRestraint(Metric):
    name = "tool_restraint"
    description = (
        "no needless tool call: none at all where the case expects none, and never a "
        "`forbidden_tools` one"
    )

    async def score(self, context: CaseContext) -> Score | None:
        expect = context.case.expect
        made = [o.call.name for o in context.outcome.tool_calls]
        if expect.forbidden_tools:
            bad = [name for name in made if name in expect.forbidden_tools]
        elif not expect.tool_calls:
            bad = made
        else:
            return None
        return _passed(not bad, f"called: {', '.join(bad)}")


class NoAnswer(Metric):
    name = "no_answer"
    description = "for a question the knowledge does not cover: says so, and cites nothing"

    async def score(self, context: CaseContext) -> Score | None:
        if not context.case.expect.no_answer:
            return None
        outcome = context.outcome
        says_so = NOT_COVERED_PHRASES.search(outcome.text) is not None
        if not says_so:
            return _passed(False, "the answer does not say the question is not covered")
        cited = [c.where for c in outcome.citations if not c.inferred]
        return _passed(not cited, f"but cites {'; '.join(cited)}")


ANSWER_INCLUDES = AnswerIncludes()
ANSWER_MATCHES = AnswerMatches()
ANSWER_SCHEMA = AnswerSchema()
SOURCES = Sources()
TOOL_CALLS = ToolCalls()
TOOL_RESTRAINT = ToolRestraint()
NO_ANSWER = NoAnswer()
