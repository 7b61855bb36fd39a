"""A Prompty is a complete prompt: its `model:` options, tools and outputs take effect
when it is a copilot's instructions, merged with copilot.yaml (copilot.yaml wins where
both set a field); `pilothouse copilot show` says where each field came from; a broken
instructions file fails when the copilot opens."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pilothouse.cli.app import app
from pilothouse.config import Settings
from pilothouse.copilot.copilot import Copilot
from pilothouse.copilot.prompt_settings import tool_entry
from pilothouse.copilot.prompty import PromptyError, parse_prompty
from pilothouse.models import FunctionModel
from pilothouse.types import ModelRequest

PETSTORE = Path(__file__).resolve().parents[1] / "tools/data/openapi/petstore-3.0.yaml"

PROBE = """\
---
name: probe
model:
  id: gpt-4o
  provider: openai
  connection:
    kind: key
    apiKey: ${env:PROBE_OPENAI_KEY}
  options:
    temperature: 0.9
    maxOutputTokens: 42
    stopSequences: ["END"]
    seed: 3
    topP: 0.5
outputs:
  answer: {kind: string}
  confidence: {kind: float}
tools:
  - name: lookup
    kind: function
    description: Look a term up.
    parameters:
      term: {kind: string}
  - name: pets
    kind: openapi
    specification: ${file:petstore.yaml}
    connection:
      kind: anonymous
      endpoint: https://petstore.example/v3
---
system:
You answer as JSON.

user:
{{question}}
"""


def _folder(tmp_path: Path, copilot_yaml: str, prompty: str = PROBE) -> Path:
    folder = tmp_path / "probe"
    folder.mkdir(parents=True)
    (folder / "instructions.prompty").write_text(prompty, encoding="utf-8")
    shutil.copy(PETSTORE, folder / "petstore.yaml")
    (folder / "tools.py").write_text(
        "from pilothouse.tools import tool\n\n@tool(read_only=True)\n"
        "def lookup(term: str) -> str:\n    '''Look a term up.'''\n    return term\n",
        encoding="utf-8",
    )
    (folder / "copilot.yaml").write_text(copilot_yaml, encoding="utf-8")
    return folder


BASE = (
    "name: probe\ninstructions: instructions.prompty\n"
    "tools:\n  - python: tools.py\n    functions: [lookup]\n"
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_sources(home=tmp_path / "home", environ={})


async def _first_request(folder: Path, settings: Settings) -> ModelRequest:
    seen: list[ModelRequest] = []

    def answer(request: ModelRequest) -> str:
        seen.append(request)
        return '{"answer": "ok", "confidence": 1.0}'

    copilot = await Copilot.open(folder, settings=settings, models=[FunctionModel(answer)])
    try:
        result = await copilot.ask("What is it?")
    finally:
        await copilot.aclose()
    assert result.text == '{"answer": "ok", "confidence": 1.0}'
    return seen[0]


async def test_the_prompty_options_tools_and_outputs_reach_the_request(
    tmp_path: Path, settings: Settings
) -> None:
    request = await _first_request(_folder(tmp_path, BASE), settings)
    assert (request.temperature, request.max_output_tokens, request.stop, request.seed) == (
        0.9,
        42,
        ("END",),
        3,
    )
    assert request.output_schema is not None
    assert set(request.output_schema.schema["properties"]) == {"answer", "confidence"}
    names = {t.name for t in request.tools}
    assert "lookup" in names and "addPet" in names  # the OpenAPI document's operations


async def test_copilot_yaml_wins_where_both_set_a_field(tmp_path: Path, settings: Settings) -> None:
    yaml = BASE + "model:\n  options:\n    temperature: 0.1\n    stop: []\n"
    request = await _first_request(_folder(tmp_path, yaml), settings)
    assert request.temperature == 0.1  # copilot.yaml
    assert request.stop == ()  # copilot.yaml set it, empty
    assert request.max_output_tokens == 42  # the Prompty (copilot.yaml left it)
    inline = "name: probe\ninstructions: Be brief.\n"
    plain = await _first_request(_folder(tmp_path / "x", inline), settings)
    assert (plain.temperature, plain.max_output_tokens, plain.output_schema) == (None, 1024, None)


async def test_a_function_tool_without_implementation_fails_the_open(
    tmp_path: Path, settings: Settings
) -> None:
    folder = _folder(tmp_path, "name: probe\ninstructions: instructions.prompty\n")
    with pytest.raises(PromptyError) as info:
        await Copilot.open(folder, settings=settings, models=[FunctionModel(lambda r: "x")])
    message = str(info.value)
    assert message.startswith(f"{folder / 'instructions.prompty'}:19: tools[0]: ")
    assert "'lookup' has no implementation" in message and "copilot.yaml tools" in message


async def test_a_broken_instructions_file_fails_when_the_copilot_opens(
    tmp_path: Path, settings: Settings
) -> None:
    folder = _folder(tmp_path, BASE, prompty="---\nmodel: m\n---\nuser:\n{% if %}\n")
    with pytest.raises(PromptyError, match=r"instructions.prompty:5: template: template syntax"):
        await Copilot.open(folder, settings=settings, models=[FunctionModel(lambda r: "x")])
    (folder / "instructions.prompty").write_text("system:\nfine\n", encoding="utf-8")
    (folder / "instructions.claude.prompty").write_text("---\n: [\n---\n", encoding="utf-8")
    with pytest.raises(PromptyError, match=r"instructions\.claude\.prompty:2"):
        await Copilot.open(folder, settings=settings, models=[FunctionModel(lambda r: "x")])


def test_mcp_tool_becomes_a_tools_entry_and_unknown_kinds_are_refused(tmp_path: Path) -> None:
    text = (
        "---\nmodel: m\ntools:\n  - name: docs\n    kind: mcp\n    allowedTools: [search]\n"
        "    approvalMode: {kind: never}\n    connection:\n      kind: remote\n"
        "      endpoint: https://mcp.example/mcp\n      headers: {Authorization: '${env:TOKEN}'}\n"
        "  - id: bing\n    type: web_search\n---\nhi\n"
    )
    prompty = parse_prompty(text, tmp_path, environ={}, defer_connections=True)
    docs, bing = prompty.definition.tools
    assert tool_entry(prompty, 0, docs) == {
        "mcp": "https://mcp.example/mcp",
        "allow_tools": ["search"],
        "headers": {"Authorization": "${env:TOKEN}"},
        "approval": {"*": False},
    }
    with pytest.raises(PromptyError, match=r":12: tools\[1\].kind: .*'web_search'.*cannot run"):
        tool_entry(prompty, 1, bing)


def test_copilot_show_prints_each_field_with_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PILOTHOUSE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PROBE_OPENAI_KEY", raising=False)
    folder = _folder(tmp_path, BASE + "model:\n  options:\n    temperature: 0.1\n")
    result = CliRunner().invoke(app, ["copilot", "show", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    fields = data["fields"]
    assert fields["temperature"] == {"value": 0.1, "source": "copilot.yaml", "note": ""}
    assert fields["max_output_tokens"]["source"] == "instructions.prompty"
    assert fields["stop"] == {"value": ["END"], "source": "instructions.prompty", "note": ""}
    assert fields["output_schema"]["source"] == "instructions.prompty"
    assert "openai:gpt-4o" in fields["model"]["note"]
    sources = {t["name"]: t["source"] for t in data["tools"]}
    assert sources["lookup"].startswith("copilot.yaml (declared in instructions.prompty")
    assert sources["addPet"] == "instructions.prompty"
    assert data["not_applied"] == ["top_p: Pilothouse requests have no field for it"]
    assert data["unset_env"] == ["PROBE_OPENAI_KEY"]
    text = CliRunner().invoke(app, ["copilot", "show", str(folder)])
    assert "temperature: 0.1  <- copilot.yaml" in text.stdout
    assert "not applied: top_p" in text.stdout
