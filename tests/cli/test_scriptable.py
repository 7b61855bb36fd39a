"""The CLI in scripts: --version, questions from stdin, --json, exit codes, every ask
stored as a run. In-process (typer's CliRunner) over a real data directory and the
fake OpenAI server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from pilothouse import __version__
from pilothouse.cli import app
from pilothouse.testing.wire import Fail, Reply

MODEL = "openai:gpt-4.1-mini"


@pytest.fixture
def invoke(home: Path, openai_fake):  # type: ignore[no-untyped-def]
    """Run `pilothouse ARGS` in-process against the fake OpenAI server."""
    fake, url = openai_fake
    (home / "config.toml").write_text(f'[providers.openai]\nbase_url = "{url}"\n')
    runner = CliRunner()

    def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        env = {"PILOTHOUSE_HOME": str(home), "OPENAI_API_KEY": "test-key", "COLUMNS": "200"}
        return runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)

    run.fake = fake  # type: ignore[attr-defined]
    return run


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"pilothouse {__version__}"


def _commands(command: Any, path: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    yield path, command
    if hasattr(command, "commands"):  # a group (typer vendors its own click)
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


def test_no_help_page_shows_a_type_for_an_on_off_flag() -> None:
    runner = CliRunner()
    pages = 0
    for path, _ in _commands(get_command(app)):
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, path
        pages += 1
    assert pages > 15
    ask_help = runner.invoke(app, ["ask", "--help"], env={"COLUMNS": "200"}).output
    assert "<float>" in ask_help  # options that take a value still say what kind
    assert "--yes" in ask_help and "--json" in ask_help


def test_the_question_from_stdin(invoke) -> None:  # type: ignore[no-untyped-def]
    invoke.fake.push(Reply("From stdin."), Reply("Summed up."), Reply("Piped alone."))
    dash = invoke("ask", "-", "-m", MODEL, "-q", input="What is piped?\n")
    assert dash.exit_code == 0, dash.output
    assert dash.stdout == "From stdin.\n"
    assert invoke.fake.requests[0]["messages"][-1]["content"] == "What is piped?\n"

    both = invoke("ask", "Summarise this.", "-m", MODEL, "-q", input="line one\nline two\n")
    assert both.exit_code == 0
    assert invoke.fake.requests[1]["messages"][-1]["content"] == (
        "line one\nline two\n\nSummarise this."
    )

    alone = invoke("ask", "-m", MODEL, "-q", input="Only piped\n")
    assert alone.exit_code == 0 and alone.stdout == "Piped alone.\n"

    nothing = invoke("ask", "-m", MODEL, input="")
    assert nothing.exit_code == 2
    assert "no question" in nothing.stderr


def test_ask_json_and_the_run_it_leaves(invoke) -> None:  # type: ignore[no-untyped-def]
    invoke.fake.push(Reply("Paris.", usage=(12, 3, 0)))
    result = invoke("ask", "Capital of France?", "-m", MODEL, "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["text"] == "Paris." and answer["status"] == "completed"
    assert answer["model"] == MODEL
    assert answer["usage"]["input_tokens"] == 12 and answer["usage"]["output_tokens"] == 3
    run_id = answer["run_id"]

    runs = invoke("runs", "--json")
    rows = [json.loads(line) for line in runs.stdout.splitlines()]
    assert [r["run_id"] for r in rows] == [run_id]
    assert rows[0]["question"] == "Capital of France?" and rows[0]["answer"] == "Paris."
    assert rows[0]["model"] == MODEL and rows[0]["input_tokens"] == 12
    assert rows[0]["status"] in ("ok", "completed")

    trace = json.loads(invoke("trace", run_id[:10], "--json").stdout)
    assert trace["run"]["run_id"] == run_id
    kinds = [s["kind"] for s in trace["spans"]]
    assert kinds[0] == "run" and "model" in kinds
    model_span = next(s for s in trace["spans"] if s["kind"] == "model")
    assert model_span["attributes"]["gen_ai.response.model"] == MODEL


def test_a_plain_ask_that_fails_exits_1_and_is_stored_as_failed(invoke) -> None:  # type: ignore[no-untyped-def]
    invoke.fake.push(*[Fail(400, "model not found")] * 3)
    result = invoke("ask", "Hi", "-m", MODEL)
    assert result.exit_code == 1
    assert "error:" in result.stderr and "model not found" in result.stderr
    as_json = invoke("ask", "Hi again", "-m", MODEL, "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["status"] == "failed"
    rows = [json.loads(line) for line in invoke("runs", "--json").stdout.splitlines()]
    assert len(rows) == 2
    assert all(r["status"] not in ("ok", "completed") for r in rows)


def test_models_json(invoke) -> None:  # type: ignore[no-untyped-def]
    result = invoke("models", "--json")
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    by_id = {r["id"]: r for r in rows}
    assert by_id[MODEL]["ready"] is True
    assert sum(r["default"] for r in rows) == 1
    assert set(rows[0]) == {"id", "ready", "detail", "default"}


def test_bad_model_ids_suggest_the_right_form(invoke) -> None:  # type: ignore[no-untyped-def]
    slash = invoke("ask", "Hi", "-m", "openai/gpt-4o")
    assert slash.exit_code == 2
    assert "did you mean openai:gpt-4o?" in slash.stderr
    typo = invoke("ask", "Hi", "-m", "opneai:gpt-4o")
    assert typo.exit_code == 2
    assert "did you mean 'openai'?" in typo.stderr
    assert "[providers.opneai]" in typo.stderr  # not eaten as rich markup
