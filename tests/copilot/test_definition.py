"""copilot.yaml: strict validation with file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pilothouse.copilot.definition import (
    CopilotDefinitionError,
    json_schema,
    load_definition,
    parse_definition,
)

GOOD = """\
name: helpdesk
description: IT helpdesk
instructions: prompts/instructions.prompty
model:
  primary: local:qwen2.5-coder-1.5b
  fallbacks: [openai:gpt-4.1-mini]
  variants:
    claude: prompts/instructions.claude.prompty
  options:
    temperature: 0.2
knowledge:
  sources: [knowledge]
  retrieval: {mode: hybrid, top_k: 4, min_score: 0.1}
  grounding: strict
tools:
  - kind: connector
    connector: jira
    base_url: https://corp.atlassian.net
    api_token: ${env:JIRA_TOKEN}
memory: {window: 10}
limits: {max_tool_steps: 3}
"""


def make_copilot(tmp_path: Path, text: str = GOOD) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts/instructions.prompty").write_text("system:\nYou help.\n")
    (tmp_path / "prompts/instructions.claude.prompty").write_text("system:\nYou help, Claude.\n")
    (tmp_path / "knowledge").mkdir()
    (tmp_path / "copilot.yaml").write_text(text)
    return tmp_path


def test_a_good_definition_loads(tmp_path: Path) -> None:
    definition, folder = load_definition(make_copilot(tmp_path))
    assert folder == tmp_path
    assert definition.name == "helpdesk"
    assert definition.model.fallbacks == ["openai:gpt-4.1-mini"]
    assert definition.instructions_file == "prompts/instructions.prompty"
    assert definition.knowledge is not None and definition.knowledge.grounding == "strict"
    assert definition.limits.max_tool_steps == 3


def test_inline_instructions_are_not_a_file() -> None:
    definition = parse_definition("name: x\ninstructions: You are helpful.\n", Path("c.yaml"))
    assert definition.instructions_file is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\ninstructions: hi\nmodle: {}\n", "c.yaml:3: modle: unknown field"),
        ("name: x\ninstructions: hi\nmodel:\n  primary: gpt4\n", "c.yaml:4: model.primary:"),
        (
            "name: x\ninstructions: hi\nlimits:\n  max_tool_steps: many\n",
            "c.yaml:4: limits.max_tool_steps:",
        ),
        ("name: Bad Name\ninstructions: hi\n", "c.yaml:1: name:"),
        ("description: no name\n", "c.yaml:1: name: Field required"),
        ("name: x\ninstructions: [unclosed\n", "c.yaml:3: not valid YAML"),
        (
            "name: x\ninstructions: hi\ntools:\n  - kind: connector\n    api_key: sk-live-123\n",
            "holds a secret in clear",
        ),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_errors_give_file_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(CopilotDefinitionError) as info:
        parse_definition(text, Path("c.yaml"))
    assert expected in str(info.value)
    assert "sk-live-123" not in str(info.value)


def test_missing_files_are_reported_with_their_line(tmp_path: Path) -> None:
    folder = make_copilot(tmp_path)
    (folder / "prompts/instructions.claude.prompty").unlink()
    with pytest.raises(CopilotDefinitionError, match=r"copilot\.yaml:8: model\.variants\.claude"):
        load_definition(folder)


def test_missing_knowledge_folder_is_reported(tmp_path: Path) -> None:
    folder = make_copilot(tmp_path)
    (folder / "knowledge").rmdir()
    with pytest.raises(
        CopilotDefinitionError, match=r"knowledge\.sources\.0: knowledge does not exist"
    ):
        load_definition(folder)


def test_files_outside_the_folder_are_refused(tmp_path: Path) -> None:
    folder = make_copilot(tmp_path / "c")
    (tmp_path / "evil.prompty").write_text("system:\nx\n")
    text = GOOD.replace("prompts/instructions.prompty", "../evil.prompty")
    (folder / "copilot.yaml").write_text(text)
    with pytest.raises(CopilotDefinitionError, match="outside the copilot folder"):
        load_definition(folder)


def test_no_copilot_here(tmp_path: Path) -> None:
    with pytest.raises(CopilotDefinitionError, match="pilothouse init"):
        load_definition(tmp_path)


def test_published_schema_is_current() -> None:
    shipped = Path(__file__).parents[2] / "src/pilothouse/copilot/copilot.schema.json"
    assert json.loads(shipped.read_text()) == json_schema(), (
        "regenerate: python -m pilothouse.copilot.definition > "
        "src/pilothouse/copilot/copilot.schema.json"
    )
