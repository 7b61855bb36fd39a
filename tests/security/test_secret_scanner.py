"""The secret scanner: with known provider keys, a tool credential and Pilothouse API
keys set, run many failing operations against upstreams that echo every credential
they receive (OpenAI, Anthropic and Gemini protocol fakes and a Jira connector fake),
through the Python API, the command line and the server; then search the whole data
directory (SQLite files and their write-ahead logs, raw bytes), the captured logs and
every response for each secret. Zero hits.

The test also proves it is not vacuous: every upstream received the secret it was
meant to (so it had the chance to echo it).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.errors import PilothouseError
from pilothouse.models import ScriptedModel
from pilothouse.models.registry import create_model
from pilothouse.models.testing import tool_call
from pilothouse.server.app import create_app
from pilothouse.server.keys import KeyStore
from pilothouse.storage import load_settings
from pilothouse.testing.loopback import serve_app
from pilothouse.types import Message, ModelRequest
from tests.fakes.echoing import EchoingUpstreams

CHAIN = ["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest", "gemini:gemini-2.0-flash"]


@dataclass
class Scan:
    """Everything that left the process, by where it was seen."""

    secrets: dict[str, str]
    seen: list[tuple[str, bytes]] = field(default_factory=list)

    def add(self, where: str, text: str | bytes | None) -> None:
        if text:
            self.seen.append((where, text.encode() if isinstance(text, str) else text))

    def add_response(self, where: str, response: httpx.Response) -> None:
        self.add(f"{where} (headers)", "\n".join(f"{k}: {v}" for k, v in response.headers.items()))
        self.add(where, response.content)

    def add_folder(self, root: Path) -> None:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                self.add(f"home {path.relative_to(root)}", path.read_bytes())

    def hits(self) -> list[str]:
        return [
            f"{name} in {where}"
            for where, blob in self.seen
            for name, value in self.secrets.items()
            if value.encode() in blob
        ]


@pytest.fixture
def upstreams() -> Iterator[tuple[EchoingUpstreams, str]]:
    fake = EchoingUpstreams()
    with serve_app(fake.app) as url:
        yield fake, url


@pytest.fixture
def keys() -> dict[str, str]:
    tag = secrets.token_hex(8)
    return {
        "OPENAI_API_KEY": f"sk-proj-scan{tag}openai",
        "ANTHROPIC_API_KEY": f"sk-ant-api03-scan{tag}anthropic",
        "GEMINI_API_KEY": f"AIzaScan{tag}gemini",
        "JIRA_TOKEN": f"jira-pat-scan{tag}",
    }


@pytest.fixture
def world(
    tmp_path: Path, upstreams: tuple[EchoingUpstreams, str], keys: dict[str, str]
) -> dict[str, Any]:
    _, url = upstreams
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[providers.openai]\nbase_url = "{url}/openai/v1"\n'
        f'[providers.anthropic]\nbase_url = "{url}/anthropic"\n'
        f'[providers.gemini]\nbase_url = "{url}/gemini/v1beta"\n'
    )
    port = url.rsplit(":", 1)[1]
    folder = tmp_path / "scanner"
    folder.mkdir()
    definition = {
        "name": "scanner",
        "instructions": "You help with tickets.",
        "model": {"primary": CHAIN[0], "fallbacks": CHAIN[1:]},
        "memory": {"summarize": False},
        "tools": [
            {
                "connector": "jira",
                "base_url": f"{url}/jira",
                "auth": {"type": "bearer", "token": "${env:JIRA_TOKEN}"},
                "allow_network": [f"127.0.0.1:{port}"],
            }
        ],
    }
    (folder / "copilot.yaml").write_text(yaml.safe_dump(definition))
    return {"home": home, "folder": folder, "environ": dict(keys)}


def _settings(world: dict[str, Any]) -> Settings:
    return load_settings(world["home"], environ=world["environ"])


def _scripted_calls() -> ScriptedModel:
    return ScriptedModel(
        [
            tool_call("jira_search_issues", {"jql": "project = OPS"}),
            "The search failed.",
            tool_call("jira_create_issue", {"summary": "VPN down", "issue_type": "Task"}),
            "The ticket could not be created.",
        ]
    )


async def python_api(world: dict[str, Any], scan: Scan) -> None:
    settings = _settings(world)
    copilot = await Copilot.open(world["folder"], settings=settings)
    try:
        answer = await copilot.ask("hello")
        assert answer.status == "failed"
        scan.add("api: failed answer", json.dumps([answer.text, answer.error]))
        async for event in copilot.stream("hello again", conversation_id=answer.conversation_id):
            scan.add("api: stream event", repr(event))
    finally:
        await copilot.aclose()

    scripted = await Copilot.open(world["folder"], settings=settings, models=[_scripted_calls()])
    try:
        searched = await scripted.ask("find my tickets")
        scan.add("api: tool answer", repr(searched))
        paused = await scripted.ask("file a ticket", conversation_id=searched.conversation_id)
        assert paused.status == "awaiting_approval", paused
        [pending] = paused.pending
        resumed = await scripted.approve(paused.run_id, approve=[pending.call.id])
        scan.add("api: approved answer", repr(resumed))
    finally:
        await scripted.aclose()

    for model_id in [*CHAIN, "openai:text-embedding-3-small"]:
        model = create_model(model_id, settings)
        try:
            await model.complete(ModelRequest(messages=(Message.user("hi"),)))
        except PilothouseError as exc:
            scan.add(f"api: {model_id} error", f"{exc!s} {exc!r} {exc.args!r}")
        finally:
            await model.aclose()


def command_line(world: dict[str, Any], scan: Scan) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_TOKEN"))}
    environ.update(world["environ"], PILOTHOUSE_HOME=str(world["home"]), COLUMNS="200")
    folder = str(world["folder"])
    commands = [
        ["ask", "-m", CHAIN[0], "-v", "hi"],
        ["ask", "-m", CHAIN[1], "--json", "hi"],
        ["ask", "-m", CHAIN[2], "--stream", "-v", "hi"],
        ["ask", "-m", CHAIN[0], "--stream", "hi"],
        ["ask", folder, "-v", "hello"],
        ["ask", folder, "--json", "hello"],
        ["tools", "list", folder],
        ["tools", "call", folder, "jira_search_issues", "--args", '{"jql": "x"}', "--json"],
        ["tools", "call", folder, "jira_list_projects"],
        ["runs", "--json"],
        ["runs"],
        ["models"],
    ]
    for args in commands:
        done = subprocess.run(
            [sys.executable, "-m", "pilothouse", *args],
            env=environ,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        scan.add(f"cli {' '.join(args[:3])}: stdout", done.stdout)
        scan.add(f"cli {' '.join(args[:3])}: stderr", done.stderr)
    runs = json.loads(
        subprocess.run(
            [sys.executable, "-m", "pilothouse", "runs", "--json", "-n", "1"],
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.splitlines()[0]
    )
    trace = subprocess.run(
        [sys.executable, "-m", "pilothouse", "trace", runs["run_id"], "--full"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    scan.add("cli trace", trace.stdout + trace.stderr)


async def server(world: dict[str, Any], scan: Scan, pilothouse_keys: dict[str, str]) -> None:
    settings = _settings(world)
    store = KeyStore(settings.database_path)
    for scope in ("admin", "models", "chat:*"):
        key, _ = store.create(scope, [scope])
        pilothouse_keys[f"pilothouse key ({scope})"] = key
    scan.secrets.update(pilothouse_keys)
    app = create_app(settings, copilots=[world["folder"]], keys=store)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    transport = httpx.ASGITransport(app=app)

    def client(scope: str) -> httpx.AsyncClient:
        key = pilothouse_keys[f"pilothouse key ({scope})"]
        return httpx.AsyncClient(
            transport=transport,
            base_url="http://127.0.0.1",
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
        )

    chat, models, admin = client("chat:*"), client("models"), client("admin")
    try:
        for stream in (False, True):
            body = {
                "model": "scanner",
                "stream": stream,
                "messages": [{"role": "user", "content": "hi"}],
            }
            scan.add_response(
                f"server copilot stream={stream}",
                await chat.post("/v1/chat/completions", json=body),
            )
            for model_id in CHAIN:
                body = {**body, "model": model_id}
                response = await models.post("/v1/chat/completions", json=body)
                scan.add_response(f"server {model_id} stream={stream}", response)
        for model_id in ("openai:text-embedding-3-small", "gemini:text-embedding-004"):
            body = {"model": model_id, "input": ["hello"]}
            scan.add_response(
                f"server embeddings {model_id}", await models.post("/v1/embeddings", json=body)
            )
        forged = f"ph-{secrets.token_urlsafe(32)}"
        scan.secrets["an unknown Pilothouse key"] = forged
        wrong = await chat.post(
            "/v1/chat/completions",
            json={"model": "scanner", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {forged}"},
        )
        scan.add_response("server wrong key", wrong)
        for path in ("/v1/models", "/v1/models/scanner", "/readyz", "/healthz"):
            scan.add_response(f"server {path}", await models.get(path))
        for path in (
            "/api/copilots",
            "/api/copilots/scanner",
            "/api/runs",
            "/api/conversations",
            "/api/approvals",
        ):
            response = await admin.get(path)
            scan.add_response(f"server {path}", response)
            if path == "/api/runs":
                for run in response.json().get("runs", [])[:10]:
                    detail = await admin.get(f"/api/runs/{run['run_id']}")
                    scan.add_response(f"server /api/runs/{run['run_id']}", detail)
            if path == "/api/conversations":
                for item in response.json().get("conversations", [])[:10]:
                    detail = await admin.get(f"/api/conversations/{item['id']}")
                    scan.add_response(f"server /api/conversations/{item['id']}", detail)
    finally:
        for each in (chat, models, admin):
            await each.aclose()
        await lifespan.__aexit__(None, None, None)
        store.close()


async def test_no_secret_leaves_the_process(
    world: dict[str, Any],
    upstreams: tuple[EchoingUpstreams, str],
    keys: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    scan = Scan(dict(keys))
    await python_api(world, scan)
    command_line(world, scan)
    pilothouse_keys: dict[str, str] = {}
    await server(world, scan, pilothouse_keys)

    fake, _ = upstreams
    for vendor, name in (
        ("openai", "OPENAI_API_KEY"),
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("gemini", "GEMINI_API_KEY"),
        ("jira", "JIRA_TOKEN"),
    ):
        sent = fake.seen[vendor]
        assert any(keys[name] in value for value in sent), f"{vendor} never received {name}"

    scan.add_folder(world["home"])
    assert any(p.name.endswith((".db", ".db-wal")) for p in world["home"].rglob("*"))
    logs = "\n".join(
        f"{r.getMessage()}\n{r.exc_text or ''}\n{r.stack_info or ''}" for r in caplog.records
    )
    scan.add("captured logs", logs)
    scan.add("captured log text", caplog.text)
    assert len(scan.seen) > 60, "the scan saw too little to mean anything"
    leaks = [
        f"{where}: ...{blob[max(0, blob.find(v.encode()) - 120) : blob.find(v.encode()) + 40]!r}"
        for where, blob in scan.seen
        for v in scan.secrets.values()
        if v.encode() in blob
    ]
    assert scan.hits() == [], "\n".join(leaks[:20])
    # not vacuous: the echoes came back and were masked, in each place they could leak
    masked = {where.split(" ")[0].rstrip(":") for where, blob in scan.seen if b"[REDACTED]" in blob}
    assert {"api", "cli", "server", "home"} <= masked, masked
