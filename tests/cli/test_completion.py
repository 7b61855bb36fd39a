"""Shell completion of model ids, copilot folders and copilot names, as bash asks for
it (the completion protocol of click, through a real process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import Run


def complete(home: Path, cwd: Path, line: str) -> list[str]:
    words = line.split(" ")
    env = {
        **os.environ,
        "PILOTHOUSE_HOME": str(home),
        "_PILOTHOUSE_COMPLETE": "complete_bash",
        "COMP_WORDS": line,
        "COMP_CWORD": str(len(words) - 1),
    }
    script = "from pilothouse.cli import app; app(prog_name='pilothouse')"
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=cwd, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_model_ids_copilot_folders_and_names(cli: Run, home: Path, tmp_path: Path) -> None:
    (home / "config.toml").write_text(
        '[providers.corp]\npreset = "openai"\nbase_url = "http://x"\n'
    )
    assert cli("init", "shop", "--folder", str(tmp_path / "shop")).returncode == 0
    (tmp_path / "notes").mkdir()

    models = complete(home, tmp_path, "pilothouse ask -m open")
    assert "openai:gpt-4.1-mini" in models and all(m.startswith("open") for m in models)
    assert complete(home, tmp_path, "pilothouse chat -m co") == ["corp:"]

    folders = complete(home, tmp_path, "pilothouse chat s")
    assert folders == ["shop"]
    assert complete(home, tmp_path, "pilothouse chat n") == ["notes/"]  # not a copilot: go on

    assert complete(home, tmp_path, "pilothouse runs --copilot sh") == ["shop"]
    assert complete(home, tmp_path, "pilothouse keys set anth") == ["anthropic"]
