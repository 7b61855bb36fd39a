"""Schemathesis against the whole app's OpenAPI document (the OpenAI-compatible API and
the management API), served by uvicorn on 127.0.0.1 with an admin key: no generated
request may get a server error (5xx).

Bounded: a fixed number of examples per operation, derandomized, no example database,
so the run is the same every time and takes about a minute on two cores.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.models import FunctionModel
from pilothouse.server.app import create_app
from pilothouse.server.keys import KeyStore
from pilothouse.testing.ports import free_port
from tests.server.management.conftest import copilot_files, write_folder

EXAMPLES_PER_OPERATION = 50


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, admin key) of the app serving one copilot on a free loopback port."""
    root = tmp_path_factory.mktemp("schemathesis")
    config = Settings.from_sources(home=root / "home", environ={})
    config.home.mkdir()
    folder = write_folder(root / "helpdesk", copilot_files("helpdesk"))  # the documented example
    model = FunctionModel(lambda request: "It is WireGuard [1].", model_id="local:qwen")
    copilot = asyncio.run(Copilot.open(folder, settings=config, models=[model]))
    store = KeyStore(config.database_path)
    admin, _ = store.create("schemathesis", ["admin"])
    app = create_app(config, copilots=[copilot], keys=store)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), loop="asyncio", log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the app did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.config.port}", admin
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        store.close()


def operations(base: str) -> list[Any]:
    loaded = schemathesis.openapi.from_url(f"{base}/openapi.json")
    return [result.ok() for result in loaded.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(live: tuple[str, str], mode: GenerationMode) -> None:
    """Every operation, valid (positive) or invalid (negative) requests: no 5xx."""
    base, admin = live
    failures: list[str] = []
    for operation in operations(base):

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            case.call_and_validate(
                base_url=base,
                headers={"Authorization": f"Bearer {admin}"},
                checks=[not_a_server_error],
                timeout=30,
            )

        try:
            check()
        except Unsatisfiable:
            continue  # nothing in this operation can be made invalid (negative mode)
        except (Exception, BaseExceptionGroup) as exc:  # collect all, then fail with each
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_the_document_covers_both_apis(live: tuple[str, str]) -> None:
    paths = {operation.path for operation in operations(live[0])}
    assert {"/api/copilots", "/api/approvals/{run_id}", "/api/knowledge/search"} <= paths
    assert "/v1/chat/completions" in paths
