"""The eval suite format of examples/*/evals/*.yaml and the starter template, as a
strict model (documented in examples/helpdesk/README.md, "Eval suites"). The eval
runner will read the same shape; until it lands, these tests hold the format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

Keyword = str | list[str]
"""One expected keyword, or a list of alternatives of which any one will do."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    sources: list[ExpectedSource] = Field(default_factory=list)
    tool_calls: list[ExpectedToolCall] = Field(default_factory=list)
    no_answer: bool = False

    @model_validator(mode="after")
    def _something_to_check(self) -> Expectation:
        if not (self.answer_includes or self.sources or self.tool_calls or self.no_answer):
            raise ValueError("a case must expect something")
        if self.no_answer and (self.answer_includes or self.sources):
            raise ValueError("no_answer cases expect no facts and no sources")
        return self


class Case(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    question: str = Field(min_length=3)
    expect: Expectation
    approve: bool | None = None


class Defaults(_Strict):
    approve: bool = False


class Suite(_Strict):
    suite: str
    description: str = ""
    defaults: Defaults = Field(default_factory=Defaults)
    cases: list[Case] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Suite:
        ids = [case.id for case in self.cases]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate case ids: {', '.join(duplicates)}")
        return self


def load_suite(path: Path) -> Suite:
    return Suite.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def alternatives(keyword: Keyword) -> list[str]:
    return [keyword] if isinstance(keyword, str) else list(keyword)
