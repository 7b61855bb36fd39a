"""Reading lines in the chat: readline's editing (arrow keys, Ctrl-R, Ctrl-A/E ...),
a history file kept across sessions, Tab completion of slash commands. Without a
terminal (input piped in), plain lines, with the prompt on stderr so stdout holds
only answers."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

HISTORY_LENGTH = 1000


class LineEditor:
    def __init__(self, history_file: Path, commands: Sequence[str] = ()):
        self.history_file = history_file
        self.commands = tuple(commands)
        self._readline = _load_readline() if sys.stdin.isatty() else None
        if self._readline is not None:
            self._setup(self._readline)

    def _setup(self, readline: ModuleType) -> None:
        readline.set_history_length(HISTORY_LENGTH)
        with contextlib.suppress(OSError):  # no history yet
            readline.read_history_file(str(self.history_file))
        readline.set_completer(self._complete)
        readline.set_completer_delims(" \t\n")
        if "libedit" in (getattr(readline, "__doc__", "") or ""):
            readline.parse_and_bind("bind ^I rl_complete")
        else:
            readline.parse_and_bind("tab: complete")

    def _complete(self, text: str, state: int) -> str | None:
        matches = [c for c in self.commands if c.startswith(text)] if text.startswith("/") else []
        return matches[state] if state < len(matches) else None

    def read(self, prompt: str) -> str:
        """One line (EOFError at the end of input, KeyboardInterrupt on Ctrl-C)."""
        if self._readline is None:
            sys.stderr.write(prompt)
            sys.stderr.flush()
            line = sys.stdin.readline()
            if not line:
                raise EOFError
            return line.rstrip("\n")
        return input(prompt)

    def ask(self, prompt: str) -> str:
        """A one-off answer (an approval): read like a line, kept out of the history."""
        line = self.read(prompt)
        readline = self._readline
        if readline is not None and line and readline.get_current_history_length():
            readline.remove_history_item(readline.get_current_history_length() - 1)
        return line

    def save(self) -> None:
        if self._readline is None:
            return
        try:
            self.history_file.parent.mkdir(parents=True, exist_ok=True)
            self._readline.write_history_file(str(self.history_file))
            self.history_file.chmod(0o600)  # questions can be private
        except OSError:
            pass  # a read-only data directory loses the history, not the chat


def _load_readline() -> Any:
    try:
        import readline
    except ImportError:  # Windows without pyreadline3: plain input
        return None
    return readline
