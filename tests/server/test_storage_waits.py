"""A shared database that is slow or locked does not freeze the server: a request that
needs it waits in a worker thread (bounded, then 503 `storage_unavailable`), while
requests that need no database (`/healthz`) answer meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pilothouse.config import DATABASE_URL_ENV, Settings
from pilothouse.models import FunctionModel
from pilothouse.server.app import create_app
from pilothouse.server.keys import KeyStore
from pilothouse.storage.backends import close_database
from tests.server.conftest import running
from tests.server.test_storage_outage import DEFINITION


@pytest.fixture
def settings(tmp_path: Path, postgres_url: str) -> Iterator[Settings]:
    """PostgreSQL storage that waits at most 1 s for a connection or a lock."""
    settings = Settings.from_sources(
        home=tmp_path / "home",
        file_data={"storage": {"connect_timeout_s": 1}},
        environ={DATABASE_URL_ENV: postgres_url},
    )
    yield settings
    close_database(settings)


def wait_for_lock_waiter(postgres_url: str) -> None:
    """Until a server connection waits for a row lock (the request got that far)."""
    import psycopg

    deadline = time.monotonic() + 30
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND application_name = 'pilothouse'"
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.05)
    raise AssertionError("no server connection waited for the locked row")


def while_locked(
    postgres_url: str, lock: str, args: tuple[str, ...], base: str, headers: dict[str, str]
) -> httpx.Response:
    """GET /v1/models with `headers` while another connection holds `lock` (SQL run in
    its open transaction): /healthz answers while that request waits; returns the
    request's answer (the lock is released once it is back)."""
    return locked_during(
        postgres_url, lock, args, base, lambda: httpx.get(f"{base}/v1/models", headers=headers)
    )


def locked_during(
    postgres_url: str,
    lock: str,
    args: tuple[str, ...],
    base: str,
    call: Callable[[], httpx.Response],
) -> httpx.Response:
    """`call` (an HTTP request to the server at `base`) while another connection holds
    `lock`: /healthz answers while that request waits; returns the request's answer."""
    import psycopg

    results: list[httpx.Response] = []
    locker = psycopg.connect(postgres_url)  # a transaction: the lock stays held
    try:
        locker.execute(lock, args)

        def request() -> None:
            results.append(call())

        waiter = threading.Thread(target=request)
        waiter.start()
        wait_for_lock_waiter(postgres_url)
        health = httpx.get(f"{base}/healthz", timeout=20)
        assert health.status_code == 200, health.text
        waiter.join(60)
    finally:
        locker.rollback()
        locker.close()
    [answer] = results
    return answer


def test_a_locked_rate_bucket_does_not_freeze_the_server(
    settings: Settings, postgres_url: str
) -> None:
    """The key's `rate_buckets` row locked by another connection: the rate-limited
    request waits for it off the event loop, /healthz answers meanwhile, the waiting
    request ends in a 503 `storage_unavailable` (Retry-After) once its bounded wait is
    over, and once the lock is gone the key works again."""
    store = KeyStore.for_settings(settings)
    key, record = store.create("limited", ["models"], rate_per_min=100)
    headers = {"Authorization": f"Bearer {key}"}
    with running(create_app(settings, keys=store)) as (base, _):
        assert httpx.get(f"{base}/v1/models", headers=headers, timeout=30).status_code == 200
        lock = "SELECT * FROM rate_buckets WHERE key_id = %s FOR UPDATE"
        blocked = while_locked(postgres_url, lock, (record.id,), base, headers)
        assert blocked.status_code == 503, blocked.text
        assert blocked.json()["error"]["code"] == "storage_unavailable"
        assert blocked.headers["retry-after"] == "1"
        again = httpx.get(f"{base}/v1/models", headers=headers, timeout=30)
        assert again.status_code == 200, again.text


def test_a_locked_key_table_does_not_freeze_the_server(
    settings: Settings, postgres_url: str
) -> None:
    """`api_keys` locked by another connection: a request with a key the server has not
    seen yet waits for it off the event loop, /healthz answers meanwhile, the request
    ends in a 503 `storage_unavailable`, and once the lock is gone the key works."""
    store = KeyStore.for_settings(settings)
    store.create("admin", ["admin"])
    with running(create_app(settings, keys=store)) as (base, _):
        key, _ = store.create("new", ["models"])
        headers = {"Authorization": f"Bearer {key}"}
        lock = "LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE"
        blocked = while_locked(postgres_url, lock, (), base, headers)
        assert blocked.status_code == 503, blocked.text
        assert blocked.json()["error"]["code"] == "storage_unavailable"
        again = httpx.get(f"{base}/v1/models", headers=headers, timeout=30)
        assert again.status_code == 200, again.text


def test_locked_rows_of_other_stores_answer_503_instead_of_hanging(
    settings: Settings, postgres_url: str, tmp_path: Path
) -> None:
    """Every PostgreSQL store's request-path statements are bounded as the keys' are:
    a conversation row locked by another connection makes its deletion, and a locked
    stored-responses table a `previous_response_id`, end in 503 `storage_unavailable`
    after the bounded wait (not when the lock goes), and once the lock is gone both
    work again."""
    folder = tmp_path / "testdesk"
    folder.mkdir()
    (folder / "copilot.yaml").write_text(DEFINITION)
    scripted = [FunctionModel(lambda request: "Hello.", model_id="test:scripted")]
    app = create_app(
        settings, copilots=[folder], no_auth=True, copilot_models={"testdesk": scripted}
    )
    with running(app) as (base, _), httpx.Client(base_url=base, timeout=60) as http:
        history = [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "And now?"},
        ]
        answer = http.post("/v1/chat/completions", json={"model": "testdesk", "messages": history})
        assert answer.status_code == 200, answer.text
        conversation = answer.json()["pilothouse"]["conversation_id"]
        delete = f"/api/conversations/{conversation}"
        lock_row = "SELECT * FROM conversations WHERE id = %s FOR UPDATE"
        blocked = locked_during(
            postgres_url, lock_row, (conversation,), base, lambda: http.delete(delete)
        )
        assert blocked.status_code == 503, blocked.text
        assert blocked.json()["error"]["code"] == "storage_unavailable"

        previous = {"model": "testdesk", "input": "hi", "previous_response_id": "resp_1"}
        assert http.post("/v1/responses", json=previous).status_code == 404  # the table made
        lock_table = "LOCK TABLE responses IN ACCESS EXCLUSIVE MODE"
        blocked = locked_during(
            postgres_url, lock_table, (), base, lambda: http.post("/v1/responses", json=previous)
        )
        assert blocked.status_code == 503, blocked.text
        assert blocked.json()["error"]["code"] == "storage_unavailable"

        assert http.delete(delete).status_code == 204
        assert http.post("/v1/responses", json=previous).status_code == 404
