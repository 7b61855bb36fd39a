from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pilothouse.cli import app, common, log_output
from pilothouse.models import breaker
from pilothouse.testing.loopback import serve_app
from tests.fakes.anthropic_api import AnthropicFake
from tests.fakes.openai_api import FakeOpenAI

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def _environment(home: Path, env: dict[str, str] | None) -> dict[str, str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("_API_KEY") and k != "PILOTHOUSE_DEFAULT_MODEL"
    }
    environ.update({"PILOTHOUSE_HOME": str(home), "COLUMNS": "200", **(env or {})})
    return environ


def _logger_levels() -> dict[str, int]:
    loggers = logging.Logger.manager.loggerDict.values()
    found = {lg.name: lg.level for lg in loggers if isinstance(lg, logging.Logger)}
    return {**found, "root": logging.getLogger().level}


def _restore_levels(levels: dict[str, int]) -> None:
    """Logger levels as they were (a command sets some: `tools call` quiets its tools)."""
    for name in _logger_levels():
        logger = logging.getLogger() if name == "root" else logging.getLogger(name)
        logger.setLevel(levels.get(name, logging.NOTSET))


@pytest.fixture
def cli(home: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run `pilothouse ARGS...` in this process (typer's CliRunner) with its own data
    directory and environment, as a fresh process would: the process-wide state a
    command keeps (its redactor, the circuit breakers, the one-line log handler and the
    logger levels) starts afresh for each call. An uncaught exception ends the
    "process" with exit code 1 and its traceback on stderr. `cli_process` runs a real
    process."""
    runner = CliRunner()

    def run(
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        del timeout  # a real process's limit; pytest's own timeout covers this one
        environ = _environment(home, env)
        unset: dict[str, str | None] = {k: None for k in os.environ if k not in environ}
        root = logging.getLogger()
        levels = _logger_levels()
        with monkeypatch.context() as m:
            m.setattr(common, "_redactor", None)
            m.setattr(breaker, "_PROCESS_BOARD", breaker.BreakerBoard())
            try:
                result = runner.invoke(app, list(args), input=input, env={**unset, **environ})
            finally:
                for handler in [
                    h for h in root.handlers if h.get_name() == log_output.HANDLER_NAME
                ]:
                    root.removeHandler(handler)
                _restore_levels(levels)
                logging.captureWarnings(False)
        stderr = result.stderr
        error = result.exception
        if error is not None and not isinstance(error, SystemExit):
            stderr += "".join(traceback.format_exception(error))
        return subprocess.CompletedProcess(
            ["pilothouse", *args], result.exit_code, result.stdout, stderr
        )

    return run


@pytest.fixture
def opened_pools(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every psycopg connection pool opened while the test runs, held until it ends. A
    pool a command leaves open is otherwise closed by the garbage collector, sometimes
    in one of its own worker threads ("cannot join current thread"): held here, it stays
    open for the test to see. Pools still open at the end are closed."""
    from psycopg_pool import ConnectionPool

    opened: list[Any] = []
    open_pool = ConnectionPool.open

    def recording(pool: Any, *args: Any, **kwargs: Any) -> None:
        opened.append(pool)
        open_pool(pool, *args, **kwargs)

    monkeypatch.setattr(ConnectionPool, "open", recording)
    yield opened
    for pool in opened:
        pool.close()


@pytest.fixture
def cli_process(home: Path) -> Run:
    """Run `pilothouse ARGS...` as a real process with its own data directory (the
    smoke tests: start-up, signals, stdin and terminal handling as a user sees them)."""

    def run(
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pilothouse", *args],
            env=_environment(home, env),
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
