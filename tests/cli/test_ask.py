"""`pilothouse ask` and `pilothouse models` as a user runs them (a real process)."""

from __future__ import annotations

from pathlib import Path

from pilothouse.testing.ports import closed_port
from pilothouse.testing.wire import Fail, Reply
from tests.cli.conftest import Run


def write_config(home: Path, text: str) -> None:
    (home / "config.toml").write_text(text)


def test_ask_a_cloud_model(cli: Run, home: Path, openai_fake) -> None:  # type: ignore[no-untyped-def]
    fake, url = openai_fake
    fake.push(Reply("Paris is the capital of France.", usage=(12, 8, 0)))
    write_config(home, f'[providers.openai]\nbase_url = "{url}"\n')
    result = cli(
        "ask",
        "What is the capital of France?",
        "-m",
        "openai:gpt-4.1-mini",
        env={"OPENAI_API_KEY": "test-key"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Paris is the capital of France."
    assert "openai:gpt-4.1-mini" in result.stderr
    assert "12 in / 8 out" in result.stderr
    assert fake.requests[-1]["messages"][-1]["content"] == "What is the capital of France?"


def test_ask_streams_and_sends_the_system_prompt(cli: Run, home: Path, openai_fake) -> None:  # type: ignore[no-untyped-def]
    fake, url = openai_fake
    fake.push(Reply("Streaming works fine.", chunks=5))
    write_config(home, f'[providers.openai]\nbase_url = "{url}"\n')
    result = cli(
        "ask",
        "Hi",
        "--stream",
        "--system",
        "Be brief.",
        "-m",
        "openai:gpt-4.1-mini",
        "--quiet",
        env={"OPENAI_API_KEY": "test-key"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Streaming works fine.\n"
    assert fake.requests[-1]["stream"] is True
    assert fake.requests[-1]["messages"][0] == {"role": "system", "content": "Be brief."}


def test_fallback_chain_from_the_command_line(
    cli: Run, home: Path, openai_fake, anthropic_fake
) -> None:  # type: ignore[no-untyped-def]
    anthropic, anthropic_url = anthropic_fake
    openai, openai_url = openai_fake
    anthropic.push(Fail(503, "Overloaded"), Fail(503, "Overloaded"), Fail(503, "Overloaded"))
    openai.push(Reply("Answer from the third model."))
    write_config(
        home,
        f'[providers.vllm]\nbase_url = "http://127.0.0.1:{closed_port()}/v1"\n'
        f'[providers.anthropic]\nbase_url = "{anthropic_url}"\n'
        f'[providers.openai]\nbase_url = "{openai_url}"\n',
    )
    result = cli(
        "ask",
        "Hello?",
        "--stream",
        "-m",
        "vllm:down",
        "-m",
        "anthropic:claude-haiku-4-5",
        "-m",
        "openai:gpt-4.1-mini",
        env={"OPENAI_API_KEY": "test-key", "ANTHROPIC_API_KEY": "test-key"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Answer from the third model."
    assert "openai:gpt-4.1-mini" in result.stderr


def test_all_models_failing_is_one_clear_error(cli: Run, home: Path) -> None:
    port = closed_port()
    write_config(home, f'[providers.vllm]\nbase_url = "http://127.0.0.1:{port}/v1"\n')
    result = cli("ask", "Hello?", "-m", "vllm:a", "-m", "openai:gpt-4.1-mini")
    assert result.returncode == 1
    assert "all 2 models failed" in result.stderr
    assert "cannot connect" in result.stderr
    assert "OPENAI_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_wrong_key_never_appears_in_the_error(cli: Run, home: Path, openai_fake) -> None:  # type: ignore[no-untyped-def]
    _, url = openai_fake
    write_config(home, f'[providers.openai]\nbase_url = "{url}"\n')
    result = cli("ask", "Hi", "-m", "openai:gpt-4.1-mini", env={"OPENAI_API_KEY": "sk-wrong-7777"})
    assert result.returncode == 1
    assert "401" in result.stderr
    assert "sk-wrong-7777" not in result.stderr + result.stdout


def test_a_bad_model_id_and_a_bad_config_are_clear(cli_process: Run, home: Path) -> None:
    """A real process (a smoke test of exit codes and stderr as a script sees them)."""
    cli = cli_process
    result = cli("ask", "Hi", "-m", "gpt4")
    assert result.returncode == 2
    assert "provider:model" in result.stderr
    write_config(home, "[providers.openai]\nbase_ur = 'x'\n")
    result = cli("ask", "Hi")
    assert result.returncode == 2
    assert "config.toml" in result.stderr and "base_ur" in result.stderr


def test_models_lists_readiness(cli: Run) -> None:
    result = cli("models", env={"ANTHROPIC_API_KEY": "x"})
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if ":" in line.split()[0]}
    assert "no key: set OPENAI_API_KEY" in lines["openai:gpt-4.1-mini"]
    assert " yes " in lines["anthropic:claude-sonnet-4-5"]
    assert "local:qwen2.5-coder-1.5b" in lines
    assert "(default)" in result.stdout
