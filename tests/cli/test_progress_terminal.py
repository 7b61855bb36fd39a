"""While a copilot's model reads its prompt (seconds to minutes on the embedded model),
the terminal says what the run is doing: the spinner names the passages being read, and
it stays until the answer's first words (it used to stop at the run's first event,
leaving an empty screen for the whole wait)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pilothouse.testing.wire import Stall
from tests.cli.conftest import Run
from tests.cli.test_chat_terminal import Terminal
from tests.cli.test_copilot_cli import init, use_fake

MODEL = "openai:gpt-4.1-mini"


def test_the_spinner_names_the_passages_while_the_model_is_silent(
    cli: Run,
    home: Path,
    tmp_path: Path,
    openai_fake,  # type: ignore[no-untyped-def]
) -> None:
    fake, url = openai_fake
    folder = init(cli, tmp_path, "shop")
    fake.push(Stall("", seconds=3.0))  # the model says nothing for 3 seconds
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
        **use_fake(home, url),
        "PILOTHOUSE_HOME": str(home),
        "TERM": "xterm",
        "COLUMNS": "200",
    }
    args = [sys.executable, "-m", "pilothouse", "ask", str(folder), "How do I factory reset it?"]
    terminal = Terminal([*args, "-m", MODEL], env)
    try:
        terminal.expect(r"reading \d+ passages?…", timeout=60)
        terminal.process.wait(timeout=60)  # (an empty answer: exit 1)
    finally:
        terminal.close()
