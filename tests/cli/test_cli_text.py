"""The CLI prints user and error text as written: no emoji codes (`:x:`), no rich
markup read out of it (`[providers.openai]`, `[b]`)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Run
from tests.cli.test_runs import record

TRICKY = ":x: [providers.openai] [b]bold?[/b]"


def test_errors_keep_emoji_codes_and_brackets(cli: Run, tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "copilot.yaml").write_text(
        f'name: c\ninstructions: hi\ntools:\n  - python: "tools/{TRICKY}.py"\n'
    )
    result = cli("tools", "list", str(folder))
    assert result.returncode == 2
    assert f"tools/{TRICKY}.py" in result.stderr
    assert "\u274c" not in result.stderr  # the emoji ":x:" would become


def test_names_and_questions_are_printed_as_written(cli: Run, home: Path) -> None:
    record(home, copilot="helpdesk", question=f"What is {TRICKY}")
    listed = cli("runs")
    assert listed.returncode == 0, listed.stderr
    assert f"What is {TRICKY}" in listed.stdout
    missing = cli("runs", "--copilot", TRICKY)
    assert f"for copilot {TRICKY!r}" in missing.stdout
    plugins = cli("plugins", TRICKY)
    assert f"no plugins in a family called {TRICKY!r}" in plugins.stdout
