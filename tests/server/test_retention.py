"""Trace retention in the server: pruned at start-up and then periodically when
`[traces] keep_days` is above 0, off the event loop, a failed pass logged and survived,
the task stopped on shutdown; nothing pruned when keep_days is 0."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from pilothouse.config import Settings
from pilothouse.server.app import create_app
from pilothouse.server.retention import TracePruner
from pilothouse.storage.retention import PruneReport
from pilothouse.storage.traces import TraceStore
from tests.server.conftest import running
from tests.storage.aged_runs import days_ago, record_run


def settings_keeping(tmp_path: Path, keep_days: float) -> Settings:
    return Settings.from_sources(
        home=tmp_path / "home", environ={}, file_data={"traces": {"keep_days": keep_days}}
    )


def add_run(settings: Settings, age_days: float) -> str:
    with TraceStore.for_settings(settings) as store:
        return record_run(store, days_ago(age_days), days_ago(age_days) + 1)


def stored(settings: Settings) -> set[str]:
    with TraceStore.for_settings(settings) as store:
        return {r.run_id for r in store.list_runs(limit=100)}


async def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_prunes_at_start_and_then_periodically(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pilothouse.server.retention")
    settings = settings_keeping(tmp_path, 7)
    old, recent = add_run(settings, 10), add_run(settings, 1)
    pruner = TracePruner(settings, interval_s=0.05)
    pruner.start()
    try:
        await wait_for(lambda: pruner.passes >= 1)
        assert stored(settings) == {recent}
        assert pruner.last_report == PruneReport(runs=1, spans=3)
        assert "deleted 1 runs and 3 spans older than 7 days" in caplog.text
        later = add_run(settings, 30)  # appears after the first pass
        await wait_for(lambda: later not in stored(settings))
        assert old not in stored(settings) and recent in stored(settings)
    finally:
        await pruner.aclose()
    assert not pruner.running


async def test_keep_days_zero_prunes_nothing(tmp_path: Path) -> None:
    settings = settings_keeping(tmp_path, 0)
    old = add_run(settings, 400)
    pruner = TracePruner(settings, interval_s=0.01)
    pruner.start()
    assert not pruner.running
    assert await pruner.prune_once() is None
    await asyncio.sleep(0.1)
    await pruner.aclose()
    assert stored(settings) == {old}


async def test_a_failing_pass_is_logged_and_the_next_one_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_keeping(tmp_path, 7)
    settings.home.mkdir(parents=True)
    settings.database_path.write_bytes(b"this is not an SQLite database, " * 100)
    pruner = TracePruner(settings, interval_s=0.05)
    pruner.start()
    try:
        await wait_for(lambda: pruner.passes >= 2)  # it went on after failing
        assert pruner.running
        assert pruner.last_report is None
        assert "trace retention: pruning" in caplog.text and "failed" in caplog.text
        settings.database_path.unlink()
        old = add_run(settings, 10)
        await wait_for(lambda: pruner.last_report is not None)
        assert old not in stored(settings)
    finally:
        await pruner.aclose()


def test_the_server_prunes_at_start_up_and_stops_the_task_on_shutdown(tmp_path: Path) -> None:
    settings = settings_keeping(tmp_path, 30)
    old, recent = add_run(settings, 31), add_run(settings, 29)
    app = create_app(settings, no_auth=True)
    with running(app) as (base, _), httpx.Client(base_url=base) as http:
        deadline = time.monotonic() + 10
        while app.pruner.passes < 1:
            assert time.monotonic() < deadline, "no pass at start-up"
            time.sleep(0.01)
        assert app.pruner.running
        assert http.get("/healthz").status_code == 200
        assert stored(settings) == {recent}
    assert not app.pruner.running
    assert old not in stored(settings)


def test_the_server_keeps_everything_when_keep_days_is_zero(tmp_path: Path) -> None:
    settings = settings_keeping(tmp_path, 0)
    old = add_run(settings, 1000)
    app = create_app(settings, no_auth=True)
    with running(app) as (base, _), httpx.Client(base_url=base) as http:
        assert http.get("/healthz").status_code == 200
        assert not app.pruner.running
        assert app.pruner.passes == 0
    assert stored(settings) == {old}


async def test_shutdown_cancels_the_task_while_the_loop_goes_on(tmp_path: Path) -> None:
    settings = settings_keeping(tmp_path, 30)
    app = create_app(settings, no_auth=True)
    async with app.router.lifespan_context(app):
        assert app.pruner.running
        await wait_for(lambda: app.pruner.passes >= 1)
    assert not app.pruner.running
