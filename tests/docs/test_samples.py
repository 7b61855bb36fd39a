"""Every code sample in README.md and docs/ works as written (rules in samples.py and
docs/cli.md). Offline: cloud models are the local fake vendor servers (their base
URLs in the data directory's config.toml, test keys in the environment); the docs'
server address `http://127.0.0.1:8642` is a real `pilothouse serve` started here on a
free port, and `ph-...` / `$PH_KEY` stand for a key it issued."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.main import get_command

from pilothouse.cli import app
from pilothouse.copilot.definition import CopilotDefinition, parse_definition
from pilothouse.copilot.flow import ConnectionMap, load_flow_definition
from pilothouse.pipeline.suite import parse_suite
from pilothouse.server.gateway.routes import load_routes
from pilothouse.storage import load_settings
from pilothouse.testing.loopback import serve_app
from pilothouse.testing.ports import free_port
from pilothouse.tools.sources import parse_source_entry
from tests.docs.samples import ROOT, Sample, all_samples, commands
from tests.fakes.anthropic_api import AnthropicFake
from tests.fakes.gemini_api import GeminiFake
from tests.fakes.openai_api import FakeOpenAI

SAMPLES = all_samples()
DOCS_ADDRESS = "http://127.0.0.1:8642"


def _ids(kinds: tuple[str, ...]) -> list[Any]:
    return [
        pytest.param(s, id=s.id, marks=pytest.mark.skip(reason=s.skip) if s.skip else ())
        for s in SAMPLES
        if s.lang in kinds
    ]


# --- the sandbox: a data directory, the fake vendors, a server ----------------------


class Sandbox:
    def __init__(self, root: Path, urls: Mapping[str, str]):
        self.home = root / "home"
        self.work = root / "work"  # console sessions run here: examples/ and docs/ linked
        self.home.mkdir()
        self.work.mkdir()
        for name in ("examples", "docs"):
            (self.work / name).symlink_to(ROOT / name)
        (self.home / "config.toml").write_text(
            "".join(f'[providers.{name}]\nbase_url = "{url}"\n' for name, url in urls.items())
        )
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
            "PILOTHOUSE_HOME": str(self.home),
            "PILOTHOUSE_DEFAULT_MODEL": "openai:gpt-4.1-mini",
            "OPENAI_API_KEY": "test-key",
            "ANTHROPIC_API_KEY": "test-key",
            "GEMINI_API_KEY": "test-key",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "COLUMNS": "200",
        }
        self.server: subprocess.Popen[str] | None = None
        self.url = ""
        self.key = ""

    def start_server(self) -> None:
        """`pilothouse serve examples/helpdesk` on a free port; its first-start key."""
        if self.server is not None:
            return
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.server = subprocess.Popen(
            [sys.executable, "-m", "pilothouse", "serve", "examples/helpdesk", "--port", str(port)],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.server.stdout is not None
        self.key = self.server.stdout.readline().strip()  # printed once the app is built
        assert self.key.startswith("ph-"), self.server.stderr.read()  # type: ignore[union-attr]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("the sample server did not start")

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.communicate(timeout=60)

    def served(self, text: str) -> str:
        """The sample with the docs' server address and key placeholders made real."""
        if DOCS_ADDRESS not in text:
            return text
        self.start_server()
        return text.replace(DOCS_ADDRESS, self.url).replace('"ph-..."', json.dumps(self.key))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    openai, anthropic, gemini = FakeOpenAI(), AnthropicFake(), GeminiFake()
    with serve_app(openai.app) as o, serve_app(anthropic.app) as a, serve_app(gemini.app) as g:
        urls = {"openai": o, "anthropic": a, "gemini": g}
        box = Sandbox(tmp_path_factory.mktemp("samples"), urls)
        try:
            yield box
        finally:
            box.stop()


# --- python: run for real -------------------------------------------------------------


@pytest.mark.parametrize("sample", _ids(("python",)))
def test_python_sample_runs(sample: Sample, sandbox: Sandbox, tmp_path: Path) -> None:
    script = tmp_path / "sample.py"
    script.write_text(sandbox.served(sample.text))
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env=sandbox.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{sample.id} failed:\n{result.stderr[-3000:]}"


# --- console: a session replayed ------------------------------------------------------

_CURL = 'curl() { command curl --fail-with-body --show-error "$@"; echo; }\n'


def _console_pages() -> list[Any]:
    pages: dict[Path, list[Sample]] = {}
    for sample in SAMPLES:
        if sample.lang == "console" and not sample.skip:
            pages.setdefault(sample.file, []).append(sample)
    return [pytest.param(blocks, id=str(page.relative_to(ROOT))) for page, blocks in pages.items()]


@pytest.mark.parametrize("blocks", _console_pages())
def test_console_session_runs(blocks: list[Sample], sandbox: Sandbox, tmp_path: Path) -> None:
    if any("curl " in b.text for b in blocks) and shutil.which("curl") is None:
        pytest.skip("curl is not installed on this machine")
    script = "set -euo pipefail\n" + _CURL
    for sample in blocks:
        for command in commands(sandbox.served(sample.text), prompt=True):
            script += f"echo '# {sample.id}' >&2\n{command}\n"
    env = {**sandbox.env, "PH_KEY": sandbox.key}
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=sandbox.work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (
        f"a command failed (the last '# file:line' names its sample):\n"
        f"{result.stderr[-3000:]}\n{result.stdout[-2000:]}"
    )


# --- bash: every pilothouse command parses ---------------------------------------------


def _parses(argv: list[str]) -> None:
    """Resolve `pilothouse ARGV` down to its command and parse its options and
    arguments, without running it (click raises UsageError on a wrong one)."""
    command: Any = get_command(app)
    context = command.make_context("pilothouse", list(argv), resilient_parsing=False)
    while hasattr(command, "commands"):
        rest = [*getattr(context, "_protected_args", ()), *context.args]
        if not rest:
            break
        name, *rest = rest
        command = command.get_command(context, name)
        assert command is not None, f"no command {name!r} in pilothouse {' '.join(argv)}"
        context = command.make_context(name, rest, parent=context)


@pytest.mark.parametrize("sample", _ids(("bash", "sh", "shell")))
def test_bash_sample_commands_parse(sample: Sample) -> None:
    checked = 0
    for line in commands(sample.text, prompt=False):
        for part in line.replace("&&", ";").replace("|", ";").split(";"):
            words = shlex.split(part, comments=True)
            if words[:1] == ["pilothouse"]:
                _parses(words[1:])
                checked += 1
    if "pilothouse " in sample.text:
        assert checked, f"{sample.id}: no pilothouse command found"


# --- data: toml, yaml, json -----------------------------------------------------------


@pytest.mark.parametrize("sample", _ids(("toml",)))
def test_toml_sample_is_valid(sample: Sample, tmp_path: Path) -> None:
    data = tomllib.loads(sample.text)
    if "project" in data or "build-system" in data:
        return  # a package's pyproject.toml: parsing is what can be checked
    (tmp_path / "config.toml").write_text(sample.text)
    load_settings(tmp_path, environ={})  # a ConfigError names the file and field


class _AnyVariable(dict[str, str]):
    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return "value-of-" + key


@pytest.mark.parametrize("sample", _ids(("yaml",)))
def test_yaml_sample_is_valid(sample: Sample, tmp_path: Path) -> None:
    data = yaml.safe_load(sample.text)
    if isinstance(data, list):
        return  # not a Pilothouse file (CI steps, for instance): parsing is the check
    assert isinstance(data, dict), sample.id
    if "cases" in data:
        parse_suite(sample.text, sample.file)
    elif "routes" in data:
        (tmp_path / "routes.yaml").write_text(sample.text)
        load_routes(tmp_path / "routes.yaml")
    elif "name" in data and "instructions" in data:
        parse_definition(sample.text, sample.file)
    elif sample.text.startswith("# connections.yaml"):  # a Prompt flow connection map
        (tmp_path / "connections.yaml").write_text(sample.text)
        ConnectionMap.load(tmp_path)
    elif "nodes" in data:  # a Prompt flow flow.dag.yaml
        (tmp_path / "flow.dag.yaml").write_text(sample.text)
        load_flow_definition(tmp_path)
    else:  # a part of copilot.yaml
        assert set(data) <= set(CopilotDefinition.model_fields), sample.id
        CopilotDefinition.model_validate({"name": "sample", "instructions": "Help.", **data})
        plugins = _declared_plugins(sample.file)
        for index, entry in enumerate(data.get("tools") or []):
            if isinstance(entry, dict) and plugins & {str(entry.get("connector")), *entry}:
                continue  # a plugin the page itself defines (not installed here)
            parse_source_entry(entry, index, _AnyVariable(), sample.id)


def _declared_plugins(page: Path) -> set[str]:
    """Names the page's own pyproject samples declare as `pilothouse.*` entry points."""
    names: set[str] = set()
    for sample in SAMPLES:
        if sample.file == page and sample.lang == "toml":
            groups = tomllib.loads(sample.text).get("project", {}).get("entry-points", {})
            for group, entries in groups.items():
                if group.startswith("pilothouse."):
                    names.update(entries)
    return names


@pytest.mark.parametrize("sample", _ids(("json",)))
def test_json_sample_parses(sample: Sample) -> None:
    json.loads(sample.text)


def test_every_sample_has_a_known_language() -> None:
    known = {"python", "console", "bash", "sh", "shell", "toml", "yaml", "json"}
    strange = [f"{s.id} ({s.lang})" for s in SAMPLES if s.lang not in known]
    assert not strange, f"samples in a language the test does not check: {strange}"
    assert len(SAMPLES) > 50
