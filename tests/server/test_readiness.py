"""`/readyz` and `pilothouse models` say the same thing about a model whose server is
down: not ready, and why. A copilot or route with no model that can answer makes the
server not ready (503); one that can answer, through a fallback or once its server is
up, makes it ready."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from pilothouse.config import Settings
from pilothouse.server.app import create_app
from pilothouse.testing.loopback import serve_app
from pilothouse.testing.ports import closed_port
from tests.models.fake_model_servers import ModelServer, ollama_models
from tests.server.conftest import running


def ollama_home(tmp_path: Path, url: str) -> Settings:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(f'[providers.ollama]\nbase_url = "{url}"\n')
    return Settings.from_sources(
        home=home, file_data={"providers": {"ollama": {"base_url": url}}}, environ={}
    )


def on_ollama(copilot_dir: Path, *fallbacks: str) -> Path:
    """The test copilot on `ollama:llama3.2`, then `fallbacks`."""
    chain = "model:\n  primary: ollama:llama3.2\n" + (
        f"  fallbacks: [{', '.join(fallbacks)}]\n" if fallbacks else ""
    )
    path = copilot_dir / "copilot.yaml"
    path.write_text(re.sub(r"model:\n(  .*\n)+", chain, path.read_text(), count=1))
    return copilot_dir


def readyz(app: Any) -> httpx.Response:
    with running(app) as (base, _):
        return httpx.get(f"{base}/readyz", timeout=10)


def models_cli(home: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({"PILOTHOUSE_HOME": str(home), "COLUMNS": "400"})
    done = subprocess.run(
        [sys.executable, "-m", "pilothouse", "models"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_copilot_whose_model_server_is_down_is_not_ready(
    tmp_path: Path, copilot_dir: Path
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    settings = ollama_home(tmp_path, url)
    app = create_app(settings, copilots=[on_ollama(copilot_dir)], no_auth=True)
    reply = readyz(app)
    assert reply.status_code == 503
    body = reply.json()
    detail = f"no server answers at {url} (connection refused): start it with `ollama serve`"
    assert body["status"] == "unavailable"
    assert body["models"] == {"ollama:llama3.2": {"ready": False, "detail": detail}}
    assert body["unavailable"] == {
        "copilot testdesk": f"no model can answer: ollama:llama3.2: {detail}"
    }
    # `pilothouse models` says the same, word for word
    line = next(ln for ln in models_cli(settings.home).splitlines() if "ollama:llama3.2" in ln)
    assert " no " in line and detail in line


def test_ready_once_the_server_answers_or_through_a_fallback(
    tmp_path: Path, copilot_dir: Path
) -> None:
    server = ModelServer(ollama_models("llama3.2:latest"))
    with serve_app(server.app) as url:
        settings = ollama_home(tmp_path, f"{url}/v1")
        app = create_app(settings, copilots=[on_ollama(copilot_dir)], no_auth=True)
        reply = readyz(app)
        line = next(ln for ln in models_cli(settings.home).splitlines() if "ollama:llama3.2" in ln)
    assert reply.status_code == 200 and reply.json()["status"] == "ready"
    assert reply.json()["models"]["ollama:llama3.2"] == {
        "ready": True,
        "detail": f"served at {url}/v1",
    }
    assert " yes " in line and f"served at {url}/v1" in line

    down = ollama_home(tmp_path, f"http://127.0.0.1:{closed_port()}/v1")
    app = create_app(
        down, copilots=[on_ollama(copilot_dir, "local:qwen2.5-coder-0.5b")], no_auth=True
    )
    reply = readyz(app)  # the fallback has its weights (or can assemble them)
    states = reply.json()["models"]
    assert reply.status_code == 200, reply.json()
    assert not states["ollama:llama3.2"]["ready"] and states["local:qwen2.5-coder-0.5b"]["ready"]


def test_a_route_whose_targets_cannot_answer_is_not_ready(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    settings = ollama_home(tmp_path, url)
    routes = {"routes": {"chat": {"targets": ["ollama:llama3.2"]}}}
    reply = readyz(create_app(settings, routes=routes, no_auth=True))
    assert reply.status_code == 503
    assert list(reply.json()["unavailable"]) == ["route chat"]
    # a server with nothing to check is ready
    assert readyz(create_app(settings, no_auth=True)).status_code == 200
