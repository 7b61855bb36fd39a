"""PostgreSQL restarted (crash-like) in the middle of a burst of chat requests to a
real `pilothouse serve` on it: every request either completes or fails with a clear
503 (`storage_unavailable`, Retry-After), no conversation is half-written, and the
same server answers again once the database is back, without being restarted. The
eval-run, promotion and stored-response stores answer 503 the same way."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pilothouse.config import DATABASE_URL_ENV, Settings
from pilothouse.models import FunctionModel
from pilothouse.server.app import create_app
from pilothouse.server.keys import KeyStore
from pilothouse.storage.backends import close_database
from pilothouse.testing.loopback import serve_app
from pilothouse.testing.postgres import ThrowawayPostgres
from tests.fakes.openai_api import FakeOpenAI
from tests.server.conftest import running
from tests.server.replicas import Replica, start_replicas

DEFINITION = """\
name: testdesk
instructions: You are the test helpdesk.
model:
  primary: corp:gpt-test
limits: {max_tool_steps: 1, max_output_tokens: 50}
memory: {window: 4, summarize: false}
"""


@pytest.fixture
def served(
    tmp_path: Path, postgres_server: ThrowawayPostgres
) -> Iterator[tuple[ThrowawayPostgres, Replica, str, str]]:
    """A replica on a crash-safe server of this test's own (`postgres_server` first: it
    skips, or fails under `make test`, where no PostgreSQL can be had)."""
    folder = tmp_path / "testdesk"
    folder.mkdir()
    (folder / "copilot.yaml").write_text(DEFINITION)
    fake = FakeOpenAI()
    with ThrowawayPostgres(durable=True) as server, serve_app(fake.app) as fake_url:
        url = server.database("outage")
        (tmp_path / "config.toml").write_text(
            f'[providers.corp]\npreset = "openai"\nbase_url = "{fake_url}"\n'
            'api_key_env = "CORP_KEY"\n'
        )
        settings = Settings.from_sources(home=tmp_path / "k", environ={DATABASE_URL_ENV: url})
        with KeyStore.for_settings(settings) as keys:
            key, _ = keys.create("staff", ["chat:testdesk"])
        close_database(settings)
        [replica] = start_replicas(tmp_path, 1, [str(folder)], url, {"CORP_KEY": "test-key"})
        try:
            yield server, replica, key, url
        finally:
            replica.stop()


def test_a_database_restart_mid_burst_fails_clearly_and_recovers(
    served: tuple[ThrowawayPostgres, Replica, str, str],
) -> None:
    server, replica, key, url = served
    results: list[tuple[int, dict[str, object], str]] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        with httpx.Client(base_url=replica.base, timeout=60) as http:
            for i in range(12):
                reply = http.post(
                    "/v1/chat/completions",
                    json={
                        "model": "testdesk",
                        "messages": [{"role": "user", "content": f"q{n}.{i}"}],
                    },
                    headers={"Authorization": f"Bearer {key}"},
                )
                with lock:
                    results.append(
                        (reply.status_code, reply.json(), reply.headers.get("retry-after", ""))
                    )
                time.sleep(0.1)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    while len(results) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.restart(immediate=True, down_s=2.0)  # a crash: sessions cut, recovery at start
    for thread in threads:
        thread.join(180)

    statuses = [status for status, _, _ in results]
    assert len(results) == 36 and set(statuses) <= {200, 503}, statuses
    failed = [(body, retry) for status, body, retry in results if status == 503]
    assert failed, "the restart did not hit the burst"
    for body, retry in failed:
        error = body["error"]
        assert isinstance(error, dict) and error["code"] == "storage_unavailable", body
        assert "PostgreSQL at" in str(error["message"]) and retry == "1"

    deadline = time.monotonic() + 60
    while True:  # the same process, no restart: it answers again once its pool reconnects
        after = httpx.post(
            f"{replica.base}/v1/chat/completions",
            json={"model": "testdesk", "messages": [{"role": "user", "content": "still there?"}]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        if after.status_code == 200 or time.monotonic() > deadline:
            break
        assert after.json()["error"]["code"] == "storage_unavailable", after.text
        time.sleep(0.5)
    assert after.status_code == 200, after.text
    assert replica.process.poll() is None

    import psycopg

    with psycopg.connect(url) as conn:
        half = conn.execute(
            "SELECT c.id, c.message_count, COUNT(m.idx) FROM conversations c "
            "LEFT JOIN conversation_messages m ON m.conversation_id = c.id "
            "GROUP BY c.id HAVING c.message_count <> COUNT(m.idx) OR COUNT(m.idx) % 2 = 1"
        ).fetchall()
        answered = conn.execute("SELECT COUNT(*) FROM conversations").fetchone()
    assert half == [], half  # every stored conversation holds whole question-answer pairs
    assert answered is not None and answered[0] >= statuses.count(200)


def test_eval_runs_promotions_and_responses_answer_503_while_the_database_is_down(
    tmp_path: Path, postgres_server: ThrowawayPostgres
) -> None:
    """The stores added for replicas (eval runs, promotions, stored responses) fail as
    the others do while PostgreSQL is down: 503 storage_unavailable at once, and the
    same server answers again once it is back."""
    folder = tmp_path / "testdesk"
    folder.mkdir()
    (folder / "copilot.yaml").write_text(DEFINITION)
    with ThrowawayPostgres(durable=True) as server:  # crash-safe: what it committed stays
        settings = Settings.from_sources(
            home=tmp_path / "home", environ={DATABASE_URL_ENV: server.database("down")}
        )
        scripted = [FunctionModel(lambda request: "Hello.", model_id="test:scripted")]
        app = create_app(
            settings, copilots=[folder], no_auth=True, copilot_models={"testdesk": scripted}
        )
        with running(app) as (base, _), httpx.Client(base_url=base, timeout=60) as http:

            def calls() -> list[httpx.Response]:
                return [
                    http.get("/api/evals"),
                    http.get("/api/promotions"),
                    http.post(
                        "/v1/responses",
                        json={"model": "testdesk", "input": "hi", "previous_response_id": "r_1"},
                    ),
                ]

            assert [r.status_code for r in calls()] == [200, 200, 404]
            server.stop(immediate=True)
            try:
                for reply in calls():
                    assert reply.status_code == 503, reply.text
                    assert reply.json()["error"]["code"] == "storage_unavailable"
                    assert reply.headers["retry-after"] == "1"
            finally:
                server.start()
            deadline = time.monotonic() + 60
            while (statuses := [r.status_code for r in calls()]) != [200, 200, 404]:
                assert time.monotonic() < deadline, statuses
                time.sleep(0.5)
        close_database(settings)
