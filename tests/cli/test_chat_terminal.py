"""`pilothouse chat` in a real terminal (a pseudo-terminal): arrow keys recall earlier
questions instead of printing escape codes, the approval question shows `[y/N]`,
`/trace` names the run that answered after an approval, and the history is kept."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

from pilothouse.testing.wire import Call, Reply
from tests.cli.conftest import Run

MODEL = "openai:gpt-4.1-mini"
UP = "\x1b[A"


class Terminal:
    def __init__(self, args: list[str], env: dict[str, str]):
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
        )
        os.close(slave)
        self.screen = ""

    def expect(self, pattern: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.screen)
            if match:
                self.screen = self.screen[match.end() :]
                return match.group(0)
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if ready:
                try:
                    self.screen += os.read(self.master, 65536).decode("utf-8", "replace")
                except OSError:
                    break
        raise AssertionError(f"never saw {pattern!r}; the screen ends with:\n{self.screen[-2000:]}")

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        os.close(self.master)


def test_chat_in_a_terminal(cli: Run, home: Path, tmp_path: Path, openai_fake) -> None:  # type: ignore[no-untyped-def]
    fake, url = openai_fake
    folder = tmp_path / "shop"
    assert cli("init", "shop", "--folder", str(folder)).returncode == 0
    (home / "config.toml").write_text(f'[providers.openai]\nbase_url = "{url}"\n')
    tools = json.loads(cli("tools", "list", str(folder), "--json").stdout)
    write_tool = next(t["name"] for t in tools if t["requires_approval"])
    fake.push(
        Reply("Hold the dial for 10 seconds [1]."),
        Reply("Still: hold the dial [1]."),
        Reply(tool_calls=(Call("c1", write_tool, {"order_id": "SK-1001", "reason": "broken"}),)),
        Reply("Your return has started."),
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
        "PILOTHOUSE_HOME": str(home),
        "OPENAI_API_KEY": "test-key",
        "TERM": "xterm",
        "COLUMNS": "200",
    }
    terminal = Terminal([sys.executable, "-m", "pilothouse", "chat", str(folder), "-m", MODEL], env)
    try:
        terminal.expect("you> ")
        terminal.type("How do I factory reset it?\r")
        terminal.expect(r"Hold the dial for 10 seconds")
        terminal.expect("you> ")
        terminal.type(UP + "\r")  # the previous question again, not "^[[A"
        terminal.expect("Still: hold the dial")
        terminal.expect("you> ")
        terminal.type("Return order SK-1001, it is broken\r")
        terminal.expect(r"approve\? \[y/N\]")
        terminal.type("y\r")
        terminal.expect("Your return has started.")
        terminal.expect("you> ")
        terminal.type("/trace\r")
        shown = terminal.expect(r"pilothouse trace [0-9a-f]{32}")
        terminal.expect("you> ")
        terminal.type("/quit\r")
        assert terminal.process.wait(timeout=60) == 0
    finally:
        terminal.close()

    recalled = fake.requests[1]["messages"][-1]["content"]  # the second question, via the arrow
    assert "How do I factory reset it?" in recalled and "[A" not in recalled
    runs = [json.loads(line) for line in cli("runs", "--json").stdout.splitlines()]
    answered = next(r for r in runs if (r["answer"] or "").startswith("Your return has started"))
    assert shown.split()[-1] == answered["run_id"]  # the run that answered, not the paused one

    history = home / "chat_history"
    assert stat.S_IMODE(history.stat().st_mode) == 0o600
    kept = history.read_text()
    assert "How do I factory reset it?" in kept and "Return order SK-1001" in kept
    assert "\ny\n" not in kept  # the approval answer is not a question to recall
