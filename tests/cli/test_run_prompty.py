"""`pilothouse run FILE.prompty` (a real process against an OpenAI fake) and
`pilothouse.run_prompty` (a function model): the file's own model mapped to a
Pilothouse id, its options sent, streaming, structured output parsed, tools run with
their bindings, unknown providers refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pilothouse
from pilothouse.config import Settings
from pilothouse.copilot.prompty import PromptyError, load_prompty
from pilothouse.copilot.prompty.model_id import prompty_model_id
from pilothouse.models import FunctionModel, tool_call
from pilothouse.models.providers import PROVIDERS
from pilothouse.testing.wire import Reply
from pilothouse.types import ModelRequest
from tests.cli.conftest import Run

STRUCTURED = """\
---
name: classify
model:
  id: gpt-4o
  provider: openai
  options:
    temperature: 0.2
    maxOutputTokens: 50
outputs:
  category: {kind: string, enumValues: [billing, access, other]}
  urgent: {kind: boolean}
---
system:
Classify the ticket.

user:
{{ticket}}
"""

CHAT_A = """\
---
name: chat
model:
  api: chat
  configuration:
    type: openai
    model: gpt-4o-mini
  parameters:
    max_tokens: 30
inputs:
  question:
    type: string
sample:
  question: What is Prompty?
---
system:
Be brief.

user:
{{question}}
"""


def _config(home: Path, url: str) -> None:
    (home / "config.toml").write_text(f'[providers.openai]\nbase_url = "{url}"\n')


def test_run_streams_an_answer_on_the_files_own_model(
    cli: Run, home: Path, tmp_path: Path, openai_fake
) -> None:  # type: ignore[no-untyped-def]
    fake, url = openai_fake
    fake.push(Reply("A prompt file format.", chunks=4))
    _config(home, url)
    file = tmp_path / "chat.prompty"
    file.write_text(CHAT_A)
    result = cli("run", str(file), env={"OPENAI_API_KEY": "test-key"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "A prompt file format.\n"
    sent = fake.requests[-1]
    assert sent["model"] == "gpt-4o-mini" and sent["stream"] is True
    assert sent["max_completion_tokens"] == 30
    assert sent["messages"][-1] == {"role": "user", "content": "What is Prompty?"}  # sample


def test_run_parses_structured_output(cli: Run, home: Path, tmp_path: Path, openai_fake) -> None:  # type: ignore[no-untyped-def]
    fake, url = openai_fake
    fake.push(Reply('{"category": "access", "urgent": true}'))
    _config(home, url)
    file = tmp_path / "classify.prompty"
    file.write_text(STRUCTURED)
    result = cli(
        "run", str(file), "--input", "ticket=I cannot log in", env={"OPENAI_API_KEY": "test-key"}
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"category": "access", "urgent": True}
    sent = fake.requests[-1]
    assert sent["temperature"] == 0.2 and sent["max_completion_tokens"] == 50
    assert sent["response_format"]["type"] == "json_schema"
    schema = sent["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["category"]["enum"] == ["billing", "access", "other"]


def test_run_render_shows_the_messages_without_a_model(cli: Run, tmp_path: Path) -> None:
    file = tmp_path / "classify.prompty"
    file.write_text(STRUCTURED)
    result = cli("run", str(file), "-i", "ticket=Printer jam", "--render")
    assert result.returncode == 0, result.stderr
    messages = json.loads(result.stdout)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["parts"][0]["text"] == "Printer jam"


def test_an_unknown_provider_is_refused_with_the_line(cli: Run, tmp_path: Path) -> None:
    file = tmp_path / "serverless.prompty"
    file.write_text(
        "---\nname: s\nmodel:\n  api: chat\n  connection:\n    type: serverless\n"
        "    endpoint: https://models.example\n    model: phi-3\n---\nuser:\nhi\n"
    )
    result = cli("run", str(file))
    assert result.returncode == 2
    assert f"{file}:6: model.connection.type: the provider 'serverless'" in result.stderr
    assert "-m" in result.stderr


def test_model_ids_from_the_file(tmp_path: Path) -> None:
    cases = {
        "---\nmodel: gpt-4o\n---\nhi": "openai:gpt-4o",
        "---\nmodel: claude-sonnet-4-5\n---\nhi": "anthropic:claude-sonnet-4-5",
        "---\nmodel: ollama:llama3.2\n---\nhi": "ollama:llama3.2",
        "---\nmodel:\n  id: gemini-2.5-flash\n  provider: google\n---\nhi": (
            "gemini:gemini-2.5-flash"
        ),
        "---\nmodel:\n  configuration:\n    type: azure_openai\n    azure_deployment: gpt-35"
        "\n---\nhi": "azure:gpt-35",
        "---\nname: x\n---\nhi": None,
    }
    for number, (text, expected) in enumerate(cases.items()):
        path = tmp_path / f"m{number}.prompty"
        path.write_text(text)
        assert prompty_model_id(load_prompty(path, environ={}), PROVIDERS.names()) == expected
    odd = tmp_path / "odd.prompty"
    odd.write_text("---\nmodel: my-finetune\n---\nhi")
    with pytest.raises(PromptyError, match="names no provider"):
        prompty_model_id(load_prompty(odd, environ={}), PROVIDERS.names())


def test_run_prompty_runs_tools_with_bindings_and_parses_output(tmp_path: Path) -> None:
    file = tmp_path / "weather.prompty"
    file.write_text(
        "---\nmodel: gpt-4o\ninputs:\n  city: {kind: string}\n  units: {kind: string}\n"
        "outputs:\n  summary: {kind: string}\ntools:\n  - name: forecast\n    kind: function\n"
        "    parameters:\n      city: {kind: string}\n      units: {kind: string}\n"
        "    bindings:\n      units: units\n---\nuser:\nWeather in {{city}}?\n"
    )
    calls: list[dict[str, str]] = []

    def forecast(city: str, units: str) -> str:
        calls.append({"city": city, "units": units})
        return f"sunny, 21 {units}"

    def answer(request: ModelRequest) -> object:
        assert [t.name for t in request.tools] == ["forecast"]
        assert "units" not in request.tools[0].parameters["properties"]  # bound: hidden
        if request.messages[-1].role == "user":
            return tool_call("forecast", {"city": "Oslo", "units": "fahrenheit"})
        return json.dumps({"summary": request.messages[-1].tool_results[0].content})

    settings = Settings.from_sources(home=tmp_path / "home", environ={})
    result = pilothouse.run_prompty(
        file,
        {"city": "Oslo", "units": "celsius"},
        model=FunctionModel(answer),
        settings=settings,
        tools={"forecast": forecast},
    )
    assert calls == [{"city": "Oslo", "units": "celsius"}]  # the binding wins
    assert result.output == {"summary": "sunny, 21 celsius"}
    unanswered = pilothouse.run_prompty(
        file, {"city": "Oslo", "units": "c"}, model=FunctionModel(answer), settings=settings
    )
    assert unanswered.output is None
    assert [c.name for c in unanswered.tool_calls] == ["forecast"]
