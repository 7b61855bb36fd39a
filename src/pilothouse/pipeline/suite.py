"""The eval suite format (`evals/*.yaml` of a copilot), as a strict model.

Documented in docs/evals.md ("The suite format"). Every problem is reported as
`file:line: field: what is wrong`, all problems of a file at once.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pilothouse.errors import ConfigError
from pilothouse.util.yaml_positions import line_of, load_with_positions

Keyword = str | list[str]
"""One expected keyword, or a list of alternatives of which any one will do."""


class SuiteError(ConfigError):
    """An eval suite file is wrong; the message gives file, line and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpectedSource(_Strict):
    file: str
    page: int | None = Field(default=None, ge=1)
    heading: str | None = None

    @model_validator(mode="after")
    def _one_place(self) -> ExpectedSource:
        if self.page is not None and self.heading is not None:
            raise ValueError("give a page or a heading, not both")
        return self


class ExpectedToolCall(_Strict):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    arguments_include: dict[str, list[Keyword]] = Field(default_factory=dict)


class Expectation(_Strict):
    answer_includes: list[Keyword] = Field(default_factory=list)
    answer_matches: list[str] = Field(default_factory=list)
    answer_schema: dict[str, Any] | None = None
    sources: list[ExpectedSource] = Field(default_factory=list)
    tool_calls: list[ExpectedToolCall] = Field(default_factory=list)
    no_tool_calls: bool = False
    forbidden_tools: list[str] = Field(default_factory=list)
    no_answer: bool = False

    @field_validator("answer_matches")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return value

    @field_validator("answer_schema")
    @classmethod
    def _schema_is_valid(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                Draft202012Validator.check_schema(value)
            except SchemaError as exc:
                raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Expectation:
        if self.no_answer and (self.answer_includes or self.sources):
            raise ValueError("no_answer cases expect no facts and no sources")
        if self.no_tool_calls and self.tool_calls:
            raise ValueError("no_tool_calls contradicts tool_calls")
        return self

    @property
    def empty(self) -> bool:
        return not (
            self.answer_includes
            or self.answer_matches
            or self.answer_schema is not None
            or self.sources
            or self.tool_calls
            or self.no_tool_calls
            or self.forbidden_tools
            or self.no_answer
        )


EarlierTurns = Literal["given", "asked"]
"""How a case's earlier turns reach the copilot: `given`, stored as written (an
assistant turn is what the copilot is taken to have said); `asked`, each user turn
asked of the copilot in turn (its answers are its own, each turn stored as sent)."""


class Turn(_Strict):
    """One earlier message of a multi-turn case: `user: ...` or `assistant: ...`;
    a user turn that is asked (`earlier_turns: asked`) may `expect:` of its answer."""

    user: str | None = None
    assistant: str | None = None
    expect: Expectation | None = None

    @model_validator(mode="after")
    def _one_speaker(self) -> Turn:
        if (self.user is None) == (self.assistant is None):
            raise ValueError("a turn is either `user: text` or `assistant: text`")
        if self.expect is not None and self.user is None:
            raise ValueError("only a user turn expects something (of the answer to it)")
        return self

    @property
    def role(self) -> str:
        return "user" if self.user is not None else "assistant"

    @property
    def text(self) -> str:
        return self.user if self.user is not None else self.assistant or ""


class Case(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    question: str = Field(min_length=3)
    expect: Expectation = Field(default_factory=Expectation)
    reference: str | None = Field(default=None, min_length=1)
    conversation: list[Turn] = Field(default_factory=list)
    approve: bool | None = None
    earlier_turns: EarlierTurns | None = None

    @model_validator(mode="after")
    def _something_to_check(self) -> Case:
        if self.expect.empty and self.reference is None:
            raise ValueError("a case must expect something (expect: ...) or give a reference")
        return self


class Defaults(_Strict):
    approve: bool = False
    earlier_turns: EarlierTurns = "given"


class Suite(_Strict):
    suite: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    defaults: Defaults = Field(default_factory=Defaults)
    cases: list[Case] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Suite:
        counts = Counter(case.id for case in self.cases)
        duplicates = sorted(case_id for case_id, count in counts.items() if count > 1)
        if duplicates:
            raise ValueError(f"duplicate case ids: {', '.join(duplicates)}")
        return self

    def approves(self, case: Case) -> bool:
        return self.defaults.approve if case.approve is None else case.approve

    def asks_turns(self, case: Case) -> bool:
        """Whether `case`'s earlier user turns are asked of the copilot (not given)."""
        mode = self.defaults.earlier_turns if case.earlier_turns is None else case.earlier_turns
        return mode == "asked"


def alternatives(keyword: Keyword) -> list[str]:
    return [keyword] if isinstance(keyword, str) else list(keyword)


def parse_suite(text: str, file: Path) -> Suite:
    """Validate a suite's YAML text; errors say `file:line: field: problem`."""
    try:
        data, positions = load_with_positions(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SuiteError(f"{file}{line}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{file}:1: expected a mapping with `suite:` and `cases:`")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            # A case's position in the file is more use than its index: name its id too.
            where = ".".join(str(p) for p in loc) or "(top level)"
            if len(loc) >= 2 and loc[0] == "cases" and isinstance(loc[1], int):
                cases = data.get("cases")
                if isinstance(cases, list) and loc[1] < len(cases):
                    case = cases[loc[1]]
                    if isinstance(case, dict) and isinstance(case.get("id"), str):
                        where += f" (case {case['id']})"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown field (check the spelling; see docs/evals.md)"
            problems.append(f"{file}:{line_of(positions, loc) or 1}: {where}: {message}")
        raise SuiteError("\n".join(problems)) from None
    problems = [
        f"{file}:{line_of(positions, loc) or 1}: {'.'.join(map(str, loc))} (case {case}): {why}"
        for loc, case, why in _turn_problems(suite)
    ]
    if problems:
        raise SuiteError("\n".join(problems))
    return suite


def _turn_problems(suite: Suite) -> list[tuple[tuple[str | int, ...], str, str]]:
    """Earlier turns that do not fit how the case runs them: (where, case id, why)."""
    found: list[tuple[tuple[str | int, ...], str, str]] = []
    for i, case in enumerate(suite.cases):
        asked = suite.asks_turns(case)
        for j, turn in enumerate(case.conversation):
            where: tuple[str | int, ...] = ("cases", i, "conversation", j)
            if asked and turn.assistant is not None:
                found.append(
                    (
                        (*where, "assistant"),
                        case.id,
                        "the earlier turns are asked (earlier_turns: asked), so the copilot "
                        "answers them: give only `user:` turns",
                    )
                )
            if not asked and turn.expect is not None:
                found.append(
                    (
                        (*where, "expect"),
                        case.id,
                        "an earlier turn expects something only when the turns are asked: "
                        "set `earlier_turns: asked` (on the case or in defaults)",
                    )
                )
    return found


def load_suite(path: Path) -> Suite:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: cannot read: {exc}") from None
    return parse_suite(text, path)
