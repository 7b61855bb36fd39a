"""Every YAML the project reads goes through the bounded loader: copilot.yaml (local
and uploaded), `pilothouse tools list`, OpenAPI documents, routes files and Prompty
`${file:...yaml}` references each refuse an alias bomb with an error naming the file.

The bombs here have six levels (531,441 values) so that a regression fails the test
instead of exhausting the machine; tests/copilot/test_definition_limits.py runs the
full nine-level bomb in a child process under a memory cap."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pilothouse.cli.app import app
from pilothouse.copilot.prompty import PromptyReferenceError, load_prompty
from pilothouse.errors import ConfigError
from pilothouse.server.gateway.routes import load_routes
from pilothouse.tools.errors import OpenAPIDocumentError
from pilothouse.tools.openapi_doc import parse_document
from tests.bombs import alias_bomb

BOMB = alias_bomb(levels=6)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("PILOTHOUSE_HOME", str(tmp_path / "home"))
    return CliRunner()


def test_tools_list_refuses_a_bomb_naming_the_file(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "copilot.yaml").write_text("tools:\n  - python: tools.py\n" + BOMB)
    result = runner.invoke(app, ["tools", "list", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "copilot.yaml" in result.output and "alias" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_tools_list_on_a_non_utf8_copilot_yaml_is_a_clear_error(
    runner: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "copilot.yaml").write_bytes("name: caf\xe9\ntools: []\n".encode("latin-1"))
    result = runner.invoke(app, ["tools", "list", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert "copilot.yaml" in result.output and "not UTF-8" in result.output


def test_an_openapi_document_bomb_is_refused() -> None:
    with pytest.raises(OpenAPIDocumentError, match="alias") as caught:
        parse_document("openapi: 3.0.0\n" + BOMB, "api.yaml")
    assert "api.yaml" in str(caught.value)


def test_a_routes_file_bomb_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text("routes: {}\n" + BOMB)
    with pytest.raises(ConfigError, match="alias") as caught:
        load_routes(path)
    assert str(path) in str(caught.value)
    path.write_bytes(b"routes: {}\n# caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_routes(path)


def test_a_prompty_file_reference_to_a_bomb_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(BOMB)
    prompty = tmp_path / "p.prompty"
    prompty.write_text(
        "---\nname: t\nsample: ${file:bomb.yaml}\nmodel:\n  id: gpt-4o\n  provider: openai\n"
        "---\nsystem:\nHi\n"
    )
    with pytest.raises(PromptyReferenceError, match="alias") as caught:
        load_prompty(prompty, environ={})
    assert "bomb.yaml" in str(caught.value)
