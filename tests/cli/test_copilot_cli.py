"""`pilothouse init`, `ask COPILOT QUESTION` and `chat` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pilothouse.testing.wire import Call, Echo, Reply
from tests.cli.conftest import Run

MODEL = "openai:gpt-4.1-mini"


def init(cli: Run, tmp_path: Path, name: str = "demo") -> Path:
    folder = tmp_path / name
    result = cli("init", name, "--folder", str(folder))
    assert result.returncode == 0, result.stderr
    return folder


def use_fake(home: Path, url: str) -> dict[str, str]:
    (home / "config.toml").write_text(f'[providers.openai]\nbase_url = "{url}"\n')
    return {"OPENAI_API_KEY": "test-key"}


def test_init_creates_a_valid_copilot_and_refuses_to_overwrite(cli: Run, tmp_path: Path) -> None:
    folder = init(cli, tmp_path)
    assert 'name: "demo"' in (folder / "copilot.yaml").read_text()
    again = cli("init", "demo", "--folder", str(folder))
    assert again.returncode == 2
    assert "not empty" in again.stderr
    bad = cli("init", "Bad Name!", "--folder", str(tmp_path / "x"))
    assert bad.returncode == 2 and "cannot be a copilot name" in bad.stderr


def test_ask_a_copilot_answers_with_sources(
    cli: Run, home: Path, tmp_path: Path, openai_fake
) -> None:  # type: ignore[no-untyped-def]
    fake, url = openai_fake
    folder = init(cli, tmp_path)
    fake.push(Reply("The T2 runs on 2.4 GHz Wi-Fi only [1]."))
    result = cli(
        "ask",
        str(folder),
        "Does it work on 5 GHz Wi-Fi?",
        "-m",
        "openai:gpt-4.1-mini",
        env=use_fake(home, url),
    )
    assert result.returncode == 0, result.stderr
    assert "2.4 GHz Wi-Fi only [1]" in result.stdout
    assert "Sources" in result.stderr and "product-faq.md" in result.stderr
    sent = fake.requests[-1]["messages"]
    assert sent[0]["role"] == "system" and "Skylark Home" in sent[0]["content"]
    assert "Does it work on 5 GHz Wi-Fi?" in sent[-1]["content"]
    assert "[1] (" in sent[-1]["content"]


def _return_order(cli: Run, fake, folder: Path) -> str:  # type: ignore[no-untyped-def]
    """Script the fake to call the copilot's approval-gated tool; its name."""
    tools = json.loads(cli("tools", "list", str(folder), "--json").stdout)
    write_tool = next(t for t in tools if t["requires_approval"])
    fake.push(
        Reply(
            tool_calls=(
                Call("c1", write_tool["name"], {"order_id": "SK-1001", "reason": "broken"}),
            )
        ),
        Reply("Your return has started."),
    )
    return str(write_tool["name"])


def test_a_script_leaves_a_run_paused_for_approval_and_decides_later(
    cli: Run,
    home: Path,
    tmp_path: Path,
    openai_fake,  # type: ignore[no-untyped-def]
) -> None:
    fake, url = openai_fake
    folder = init(cli, tmp_path)
    _return_order(cli, fake, folder)
    env = use_fake(home, url)
    paused = cli("ask", str(folder), "Return order SK-1001", "-m", MODEL, "--json", env=env)
    assert paused.returncode == 3, paused.stderr
    answer = json.loads(paused.stdout)
    assert answer["status"] == "awaiting_approval"
    assert answer["pending"][0]["arguments"] == {"order_id": "SK-1001", "reason": "broken"}
    run_id = answer["paused_run_id"]
    assert f"pilothouse approve {folder} {run_id[:12]} --yes" in paused.stderr
    assert len(fake.requests) == 1  # nothing ran; nobody decided

    done = cli("approve", str(folder), run_id[:12], "--yes", "-m", MODEL, env=env)
    assert done.returncode == 0, done.stderr
    assert "Your return has started." in done.stdout
    tool_message = fake.requests[-1]["messages"][-1]
    assert tool_message["role"] == "tool" and "denied" not in tool_message["content"]
    again = cli("approve", str(folder), run_id[:12], "--yes", "-m", MODEL, env=env)
    assert again.returncode == 1 and "no paused run" in again.stderr


def test_yes_and_no_decide_in_the_same_command(
    cli: Run,
    home: Path,
    tmp_path: Path,
    openai_fake,  # type: ignore[no-untyped-def]
) -> None:
    fake, url = openai_fake
    folder = init(cli, tmp_path)
    env = use_fake(home, url)
    _return_order(cli, fake, folder)
    denied = cli("ask", str(folder), "Return order SK-1001", "-m", MODEL, "--no", env=env)
    assert denied.returncode == 0, denied.stderr
    assert "denied (--no)" in denied.stderr
    assert "denied" in fake.requests[-1]["messages"][-1]["content"]

    _return_order(cli, fake, folder)
    approved = cli("ask", str(folder), "Return order SK-1001", "-m", MODEL, "--yes", env=env)
    assert approved.returncode == 0, approved.stderr
    assert "approved (--yes)" in approved.stderr
    assert "denied" not in fake.requests[-1]["messages"][-1]["content"]


def test_chat_with_slash_commands(home: Path, tmp_path: Path, cli: Run, openai_fake) -> None:  # type: ignore[no-untyped-def]
    fake, url = openai_fake
    folder = init(cli, tmp_path)
    fake.push(Reply("Hold the dial for 10 seconds [1]."), Echo())
    environ = {
        **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
        "PILOTHOUSE_HOME": str(home),
        **use_fake(home, url),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pilothouse", "chat", str(folder), "-m", "openai:gpt-4.1-mini"],
        input="How do I factory reset it?\n/sources\nAnd the warranty?\n/model\n/quit\n",
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Hold the dial for 10 seconds [1]." in result.stdout
    assert "Factory reset" in result.stderr  # /sources shows the heading path
    assert "openai:gpt-4.1-mini" in result.stderr  # /model
    # The second question carried the first exchange as history.
    history = [m.get("content") for m in fake.requests[-1]["messages"]]
    assert history[1].endswith("Question: How do I factory reset it?")  # as it was sent
    assert history[2] == "Hold the dial for 10 seconds [1]."


def test_a_broken_copilot_yaml_is_reported_with_file_and_line(cli: Run, tmp_path: Path) -> None:
    folder = init(cli, tmp_path)
    text = (folder / "copilot.yaml").read_text().replace("max_tool_steps: 3", "max_tool_step: 3")
    (folder / "copilot.yaml").write_text(text)
    result = cli("ask", str(folder), "hi")
    assert result.returncode == 2
    assert "copilot.yaml:" in result.stderr and "limits.max_tool_step" in result.stderr
    assert "Traceback" not in result.stderr
