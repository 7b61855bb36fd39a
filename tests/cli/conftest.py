from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pilothouse.testing.loopback import serve_app
from tests.fakes.anthropic_api import AnthropicFake
from tests.fakes.openai_api import FakeOpenAI

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def cli(home: Path) -> Run:
    """Run `pilothouse ARGS...` as a real process with its own data directory."""

    def run(
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.endswith("_API_KEY") and k != "PILOTHOUSE_DEFAULT_MODEL"
        }
        environ.update({"PILOTHOUSE_HOME": str(home), "COLUMNS": "200", **(env or {})})
        return subprocess.run(
            [sys.executable, "-m", "pilothouse", *args],
            env=environ,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def openai_fake() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with serve_app(fake.app) as url:
        yield fake, url


@pytest.fixture
def anthropic_fake() -> Iterator[tuple[AnthropicFake, str]]:
    fake = AnthropicFake()
    with serve_app(fake.app) as url:
        yield fake, url
