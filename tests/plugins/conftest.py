"""Shared pieces of the plugin end-to-end tests: a `pilothouse` process that sees a
package built in the test (on PYTHONPATH), and its data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def cli(home: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`cli(plugin_root, *args)` runs `pilothouse ARGS...` with `plugin_root` on the path."""

    def run(
        plugin_root: Path, *args: str, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.endswith("_API_KEY") and k not in ("PILOTHOUSE_DEFAULT_MODEL", "PYTHONPATH")
        }
        environ.update(
            {"PILOTHOUSE_HOME": str(home), "COLUMNS": "250", "PYTHONPATH": str(plugin_root)}
        )
        return subprocess.run(
            [sys.executable, "-m", "pilothouse", *args],
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=cwd,
        )

    return run
