"""Shared by every test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pilothouse.config import DATABASE_URL_ENV, Settings
from pilothouse.models.breaker import process_board
from pilothouse.storage.backends import close_database
from pilothouse.testing.postgres import REQUIRE_ENV, PostgresNotFound, ThrowawayPostgres
from tests import real_model

# The test runner's terminal size is not the tests'. The in-process CLI's consoles
# (cli/common.py) are made when pilothouse.cli is first imported (by tests/cli/conftest.py,
# before any hook runs), and rich fixes their width then from COLUMNS, which
# pytest-xdist's workers set to 80. Without it each command's width comes from the
# environment its test gives it, as in a fresh process, serially or in workers. This
# conftest is imported before every other one.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The real-model tests are one xdist group (used by `--dist loadgroup`)."""
    if not config.pluginmanager.hasplugin("xdist"):
        return  # a venv without the dev extra's pytest-xdist: no such marker
    for item in items:
        if item.get_closest_marker("real_model") is not None:
            item.add_marker(pytest.mark.xdist_group(real_model.GROUP))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("real_model") is not None:
        real_model.one_thread_per_worker(item.config)


@pytest.fixture(autouse=True)
def _fresh_process_breakers() -> Iterator[None]:
    """Each test starts with no breaker state: the process-wide board would otherwise
    carry one test's failures into the next."""
    process_board().clear()
    yield
    process_board().clear()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ThrowawayPostgres]:
    """One throwaway PostgreSQL server (with pgvector) for the whole test session,
    started when a test first asks for it. Skips when none can be found here, unless
    PILOTHOUSE_REQUIRE_POSTGRES=1 (`make test`) makes that a failure."""
    try:
        server = ThrowawayPostgres()
    except PostgresNotFound as exc:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {exc}")
        pytest.skip(str(exc))
    with server:
        yield server


_SCHEMAS = itertools.count(1)


@pytest.fixture
def postgres_url(postgres_server: ThrowawayPostgres) -> str:
    """A URL to an empty PostgreSQL database of this test's own (a fresh schema)."""
    return postgres_server.database(f"t{next(_SCHEMAS)}")


@pytest.fixture
def postgres_settings(tmp_path: Path, postgres_url: str) -> Iterator[Settings]:
    """Settings whose storage is this test's PostgreSQL database (its pool closed at
    the end)."""
    settings = Settings.from_sources(
        home=tmp_path / "home", environ={DATABASE_URL_ENV: postgres_url}
    )
    yield settings
    close_database(settings)
