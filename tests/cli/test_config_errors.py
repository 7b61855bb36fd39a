"""Configuration errors a newcomer makes on purpose: every problem of copilot.yaml at
once, each as file:line: field, with "did you mean"; the schema line `init` writes
and the schema `pilothouse copilot schema` prints."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from pilothouse.cli import app
from pilothouse.copilot.definition import json_schema


@pytest.fixture
def invoke(home: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def run(*args: str):  # type: ignore[no-untyped-def]
        env = {"PILOTHOUSE_HOME": str(home), "COLUMNS": "80"}
        return runner.invoke(app, list(args), env=env, catch_exceptions=False)

    return run


@pytest.fixture
def copilot(invoke, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path / "demo"
    assert invoke("init", "demo", "--folder", str(folder)).exit_code == 0
    return folder


def edit(folder: Path, old: str, new: str) -> None:
    path = folder / "copilot.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def line_of(folder: Path, text: str) -> int:
    lines = (folder / "copilot.yaml").read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if text in line)


def test_a_wrong_python_function_name_names_the_file_and_line(invoke, copilot: Path) -> None:  # type: ignore[no-untyped-def]
    edit(copilot, "order_status, request_return", "order_statu, request_return")
    result = invoke("tools", "list", str(copilot))
    assert result.exit_code == 2
    line = line_of(copilot, "functions:")
    assert (
        f"copilot.yaml:{line}: tools.0.functions.0: tools/sample.py has no function "
        "'order_statu' (did you mean 'order_status'?)"
    ) in result.stderr
    assert "pilothouse_copilot_tools" not in result.stderr  # no internal module name


def test_a_function_made_at_run_time_is_checked_on_import_with_its_line(  # type: ignore[no-untyped-def]
    invoke, copilot: Path
) -> None:
    (copilot / "tools" / "more.py").write_text("from sample import *  # noqa\n")
    edit(copilot, "tools:\n", "tools:\n  - python: tools/more.py\n    functions: [lookup]\n")
    result = invoke("copilot", "check", str(copilot))
    assert result.exit_code == 2
    assert f"copilot.yaml:{line_of(copilot, 'tools/more.py')}: tools.0" in result.stderr
    assert "tools/more.py" in result.stderr
    assert "pilothouse_copilot_tools" not in result.stderr


def test_every_problem_of_the_file_at_once(invoke, copilot: Path) -> None:  # type: ignore[no-untyped-def]
    edit(copilot, "tools/sample.py", "tools/missing.py")
    edit(copilot, "top_k: 3", "top_k: 3\n    min_socre: 0.2")
    edit(copilot, "  options:", "  primary: openai/gpt-4o\n  options:")
    result = invoke("ask", str(copilot), "hi")
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if "copilot.yaml:" in line]
    assert len(lines) == 3, result.stderr
    primary = line_of(copilot, "primary: openai/")
    assert f":{primary}: model.primary: 'openai/gpt-4o' is not" in lines[0]
    assert "did you mean openai:gpt-4o?" in lines[0]
    assert f":{line_of(copilot, 'min_socre')}: knowledge.retrieval.min_socre:" in lines[1]
    assert "did you mean 'min_score'?" in lines[1]
    assert f":{line_of(copilot, 'missing.py')}: tools.0.python: " in lines[2]
    assert "tools/missing.py does not exist" in lines[2]
    assert "Traceback" not in result.output


def test_init_writes_the_schema_line_and_the_schema_it_names(invoke, copilot: Path) -> None:  # type: ignore[no-untyped-def]
    first = (copilot / "copilot.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=copilot.schema.json"
    schema = json.loads((copilot / "copilot.schema.json").read_text())
    assert schema == json_schema()
    definition = yaml.safe_load((copilot / "copilot.yaml").read_text())
    jsonschema.validate(definition, schema)  # the starter is valid against it
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**definition, "min_socre": 1}, schema)
    assert invoke("copilot", "check", str(copilot)).exit_code == 0


def test_copilot_schema_prints_the_json_schema(invoke) -> None:  # type: ignore[no-untyped-def]
    result = invoke("copilot", "schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json_schema()
    shipped = Path(__file__).parents[2] / "src/pilothouse/copilot/copilot.schema.json"
    assert json.loads(shipped.read_text()) == json_schema()  # the published copy is current


def test_misspelt_config_toml_fields_get_a_suggestion(invoke, home: Path) -> None:  # type: ignore[no-untyped-def]
    (home / "config.toml").write_text(
        'defualt_model = "local:qwen2.5-coder-0.5b"\n[providers.openai]\napi_kye = "x"\n'
    )
    result = invoke("models")
    assert result.exit_code == 2
    assert "defualt_model: unknown field (did you mean 'default_model'?)" in result.stderr
    assert "providers.openai.api_kye: unknown field (did you mean 'api_key'?)" in result.stderr
