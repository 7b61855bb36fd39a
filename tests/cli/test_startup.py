"""The command line starts fast: `pilothouse --help` and `pilothouse models` import none
of the heavy libraries or layers (the CPU figures are in benchmarks/cli). That every
command still declares its options (no annotation names a module a command imports
lazily) is test_scriptable's `--help` of every command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pilothouse.cli.completion import DEFINITION_FILE
from pilothouse.cli.storage import DATABASE_URL
from pilothouse.config import DATABASE_URL_ENV
from pilothouse.copilot.definition import DEFINITION_FILE as COPILOT_DEFINITION_FILE
from pilothouse.testing.ports import closed_port

HEAVY = (
    "numpy",
    "onnxruntime",
    "pypdf",
    "trafilatura",
    "tokenizers",
    "uvicorn",
    "starlette",
    "fastapi",
    "jinja2",
    "yaml",
    "pilothouse.server",
    "pilothouse.knowledge",
    "pilothouse.copilot",
    "pilothouse.tools",
    "pilothouse.pipeline",
)
"""Never imported by `--help` or `models`: each costs tens to hundreds of ms of CPU."""

IMPORTS_OF = """\
import json, runpy, sys
sys.argv = ["pilothouse", *sys.argv[1:]]
try:
    runpy.run_module("pilothouse", run_name="__main__")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.__stderr__)
"""


def imported_by(home: Path, *args: str) -> set[str]:
    """The modules a fresh `pilothouse ARGS...` process has imported when it ends."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({"PILOTHOUSE_HOME": str(home), "COLUMNS": "200"})
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS_OF, *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m in HEAVY or m.startswith(tuple(h + "." for h in HEAVY)))


@pytest.mark.parametrize("args", [("--help",), ("models",)], ids=["help", "models"])
def test_help_and_models_import_nothing_heavy(tmp_path: Path, args: tuple[str, ...]) -> None:
    modules = imported_by(tmp_path, *args)
    assert "pilothouse.cli.app" in modules  # the command ran
    assert heavy(modules) == []


def test_help_loads_no_settings_nor_models(tmp_path: Path) -> None:
    modules = imported_by(tmp_path, "--help")
    assert not {"pilothouse.config", "pilothouse.models", "httpx", "pydantic"} & modules


def test_models_asks_no_adapter_and_no_http_client_when_no_server_answers(
    tmp_path: Path,
) -> None:
    """Each readiness check is its protocol's light module (`pilothouse.readiness`), and
    a refused connection is known without the HTTP client (most of `models`' CPU was
    the adapters and httpx's import and first request)."""
    closed = closed_port()
    (tmp_path / "config.toml").write_text(
        f'[providers.ollama]\nbase_url = "http://127.0.0.1:{closed}/v1"\n'
        f'[providers.vllm]\nbase_url = "http://127.0.0.1:{closed}/v1"\n'
    )
    modules = imported_by(tmp_path, "models")
    assert "pilothouse.models.probe" in modules  # the servers were asked
    adapters = ("openai_chat", "anthropic", "gemini")
    loaded = {
        m for m in modules if m.split(".")[:3] in [["pilothouse", "models", a] for a in adapters]
    }
    assert not loaded and not {"httpx", "httpcore", "anyio"} & modules


def test_the_names_spelled_out_for_help_agree() -> None:
    assert DEFINITION_FILE == COPILOT_DEFINITION_FILE
    assert DATABASE_URL == DATABASE_URL_ENV
