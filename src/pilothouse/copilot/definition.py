"""copilot.yaml: the definition of a copilot, validated strictly.

Every problem is reported as `file:line: field: what is wrong`. Its sections are
copilot/definition_sections.py's models. The JSON Schema for
editors is generated from these models (`copilot.schema.json` beside this module).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from pilothouse.copilot.definition_files import file_problems
from pilothouse.copilot.definition_sections import (
    ApprovalSettings,
    EvalSettings,
    KnowledgeSettings,
    Limits,
    MemorySettings,
    ModelPolicy,
    Strict,
)
from pilothouse.copilot.promotion_policy import PromotionPolicy
from pilothouse.errors import ConfigError
from pilothouse.util.suggest import did_you_mean
from pilothouse.util.yaml_limits import YamlLimitError
from pilothouse.util.yaml_positions import Positions, line_of, load_with_positions

DEFINITION_FILE = "copilot.yaml"
_ENV_REF = re.compile(r"^\$\{env:[A-Za-z_][A-Za-z0-9_]*(:[^}]*)?\}$")
_SECRET_KEYS = re.compile(r"(api_?key|token|password|secret|client_secret)$", re.IGNORECASE)


class CopilotDefinitionError(ConfigError):
    """copilot.yaml (or a file it names) is wrong; the message gives file, line, field."""


class CopilotDefinition(Strict):
    """The contents of copilot.yaml."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    description: str = ""
    instructions: str = Field(description="the system prompt inline, or a path to a .prompty file")
    model: ModelPolicy = Field(default_factory=ModelPolicy)
    knowledge: KnowledgeSettings | None = None
    tools: list[dict[str, Any] | str] = Field(
        default_factory=list,
        description="tool sources (python, openapi, mcp, connector), or the short form: "
        "a URL of an OpenAPI document, or a Python file or module; see docs/tools.md",
    )
    memory: MemorySettings = Field(default_factory=MemorySettings)
    limits: Limits = Field(default_factory=Limits)
    approvals: ApprovalSettings = Field(
        default_factory=ApprovalSettings, description="who may decide tool calls on a server"
    )
    evals: EvalSettings = Field(
        default_factory=EvalSettings,
        description="eval suites (a list of files), or suites, gates, judges and rubrics",
    )
    promotion: PromotionPolicy = Field(
        default_factory=PromotionPolicy,
        description="how the copilot moves to another model: offline gates, shadow, canary "
        "(docs/promotion.md)",
    )
    _source: tuple[Path, Positions] | None = PrivateAttr(default=None)

    @field_validator("tools")
    @classmethod
    def _secrets_only_by_reference(
        cls, value: list[dict[str, Any] | str]
    ) -> list[dict[str, Any] | str]:
        for index, entry in enumerate(value):
            _check_secrets(entry, f"tools.{index}")
        return value

    def locate(self, *loc: str | int) -> str:
        """`file:line: field.path` of a field, for messages about it (`copilot.yaml:
        tools.0` when the definition was not read from a file)."""
        if self._source is None:
            return f"{DEFINITION_FILE}: {_dotted(loc)}"
        file, positions = self._source
        return f"{file}:{line_of(positions, loc) or 1}: {_dotted(loc)}"

    @property
    def instructions_file(self) -> str | None:
        text = self.instructions.strip()
        return text if text.endswith(".prompty") and "\n" not in text else None


def _check_secrets(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{where}.{key}"
            in_clear = isinstance(item, str) and not _ENV_REF.match(item.strip())
            if isinstance(key, str) and _SECRET_KEYS.search(key) and in_clear:
                raise ValueError(
                    f"{here} holds a secret in clear; write ${{env:NAME}} and set "
                    "the environment variable NAME instead"
                )
            _check_secrets(item, here)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_secrets(item, f"{where}.{index}")


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def parse_definition(text: str, file: Path) -> CopilotDefinition:
    """Validate copilot.yaml text; errors say `file:line: field: problem`."""
    return _parse(text, file, folder=None)


def _parse(
    text: str, file: Path, folder: Path | None, *, uploaded: bool = False
) -> CopilotDefinition:
    """The definition; with `folder`, the files it names are checked too (`uploaded`:
    stricter rules for a copilot that came through the API), and every problem (schema
    and files) is reported in one error, one line each."""
    try:
        data, positions = load_with_positions(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        what = "refused" if isinstance(exc, YamlLimitError) else "not valid YAML"
        raise CopilotDefinitionError(f"{file}{line}: {what}: {problem}") from None
    if not isinstance(data, dict):
        raise CopilotDefinitionError(f"{file}:1: expected a mapping of fields (name, ...)")
    problems: list[tuple[tuple[str | int, ...], str]] = []
    definition: CopilotDefinition | None = None
    try:
        definition = CopilotDefinition.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            loc, message = _narrow(loc, message)
            if error["type"] == "extra_forbidden":
                hint = did_you_mean(str(loc[-1]), _fields_at(loc[:-1]))
                message = f"unknown field{hint}; see `pilothouse copilot schema`"
            problems.append((loc, message))
    if folder is not None:
        problems += file_problems(data, folder, uploaded=uploaded)
    if problems:
        problems.sort(key=lambda p: line_of(positions, p[0]) or 1)
        raise CopilotDefinitionError(
            "\n".join(
                f"{file}:{line_of(positions, loc) or 1}: {_dotted(loc)}: {message}"
                for loc, message in problems
            )
        )
    assert definition is not None
    definition._source = (file, positions)
    return definition


def _narrow(loc: tuple[str | int, ...], message: str) -> tuple[tuple[str | int, ...], str]:
    """A validator's message that starts with the dotted path it is about (`tools.0.auth.
    token holds a secret ...`) is placed at that path, so its line is the field's own."""
    head, _, rest = message.partition(" ")
    parts = head.split(".")
    if not rest or not loc or parts[0] != str(loc[-1]) or len(loc) != 1:
        return loc, message
    return tuple(int(p) if p.isdigit() else p for p in parts), rest


def _fields_at(loc: tuple[str | int, ...]) -> list[str]:
    """The field names of the model found at `loc` (for "did you mean")."""
    model: Any = CopilotDefinition
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        inner = _model_of(field.annotation) if field is not None else None
        if inner is None:
            return []
        model = inner
    return list(model.model_fields)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):  # X | None
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def find_definition(path: Path) -> Path:
    """copilot.yaml in `path` (a folder), or `path` itself if it is the file."""
    candidate = path / DEFINITION_FILE if path.is_dir() else path
    if not candidate.is_file():
        raise CopilotDefinitionError(
            f"{candidate}: no copilot here; a copilot is a folder with a {DEFINITION_FILE} "
            "(create one with `pilothouse init NAME`)"
        )
    return candidate


def load_definition(path: Path, *, uploaded: bool = False) -> tuple[CopilotDefinition, Path]:
    """The definition and the copilot folder it belongs to; every problem of the file
    (fields, and files it names that are missing or outside the folder) in one error.
    `uploaded` marks a copilot that came through the management API: its knowledge
    sources stay in its folder whatever it says (docs/security.md)."""
    file = find_definition(path)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CopilotDefinitionError(
            f"{file}: not UTF-8 text (byte {exc.start} cannot be decoded); save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise CopilotDefinitionError(f"{file}: cannot read: {exc.strerror or exc}") from None
    return _parse(text, file, folder=file.parent, uploaded=uploaded), file.parent


def json_schema() -> dict[str, Any]:
    """The JSON Schema of copilot.yaml, for editor completion."""
    schema = CopilotDefinition.model_json_schema()
    evals = schema["properties"]["evals"]
    schema["properties"]["evals"] = {  # the short form, a list of suite files, too
        "description": evals.pop("description", ""),
        "anyOf": [{"type": "array", "items": {"type": "string"}}, evals],
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Pilothouse copilot.yaml"
    return schema


if __name__ == "__main__":  # python -m pilothouse.copilot.definition > copilot.schema.json
    import json
    import sys

    json.dump(json_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
