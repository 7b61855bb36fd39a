"""`pilothouse ask` shares its process's breakers: calls in one process (a script
that asks many times, an embedding application) do not each start a fresh breaker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pilothouse.cli import app
from pilothouse.testing.ports import closed_port


def test_asks_in_one_process_share_the_breaker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[providers.down]\npreset = "openai"\nbase_url = "http://127.0.0.1:{closed_port()}/v1"\n'
    )
    monkeypatch.setenv("PILOTHOUSE_HOME", str(home))
    runner = CliRunner()
    errors = []
    for _ in range(4):  # 2 attempts each: the default breaker opens at 5 failures
        result = runner.invoke(app, ["ask", "hi", "-m", "down:m", "--json"])
        errors.append(json.loads(result.stdout)["error"])
    assert all("cannot connect" in error for error in errors[:3])
    assert "circuit open" in errors[3]  # the fourth ask is refused at once
