"""Two real `pilothouse serve` processes on one PostgreSQL database, behind nginx (the
example of examples/deployment/nginx.conf), on loopback: a key's rate limit holds
across both, a run paused for approval on one is approved on the other and completes,
a document uploaded through one is cited in an answer from the other, a `/v1/responses`
answer stored by one is continued on the other, and a copilot created, changed and
deleted through one is served, changed and gone on the other."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pilothouse.config import DATABASE_URL_ENV, Settings
from pilothouse.server.keys import KeyStore
from pilothouse.storage.backends import close_database
from pilothouse.testing.loopback import serve_app
from pilothouse.testing.postgres import ThrowawayPostgres
from pilothouse.testing.wire import Call, Reply
from tests.fakes.openai_api import FakeOpenAI
from tests.server.conftest import TOOLS_PY
from tests.server.replicas import Balancer, Replica, start_replicas

DEFINITION = """\
name: testdesk
instructions: You are the test helpdesk. Cite passages as [n].
model:
  primary: corp:gpt-test
knowledge:
  sources: [knowledge]
  retrieval: {mode: hybrid, top_k: 2}
tools:
  - python: tools.py
    functions: [lookup, create_ticket]
limits: {max_tool_steps: 3, max_output_tokens: 100}
memory: {window: 8, summarize: false}
"""


@dataclass
class Deployment:
    fake: FakeOpenAI
    replicas: list[Replica]
    balancer: Balancer
    admin: str
    chat: str
    limited: str

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def deployment(
    postgres_server: ThrowawayPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("replicas")
    url = postgres_server.database("replicas")
    folder = root / "testdesk"
    (folder / "knowledge").mkdir(parents=True)
    (folder / "knowledge" / "vpn.md").write_text(
        "# Remote access\n\n## VPN\n\nThe VPN client is WireGuard on port 51820.\n"
    )
    (folder / "tools.py").write_text(TOOLS_PY)
    (folder / "copilot.yaml").write_text(DEFINITION)
    fake = FakeOpenAI()
    with serve_app(fake.app) as fake_url:
        (root / "config.toml").write_text(
            f'[providers.corp]\npreset = "openai"\nbase_url = "{fake_url}"\n'
            'api_key_env = "CORP_KEY"\n'
        )
        settings = Settings.from_sources(home=root / "keys", environ={DATABASE_URL_ENV: url})
        with KeyStore.for_settings(settings) as keys:
            admin, _ = keys.create("ops", ["admin"])
            chat, _ = keys.create("staff", ["chat:testdesk"])
            limited, _ = keys.create("limited", ["models"], rate_per_min=4)
        close_database(settings)
        replicas = start_replicas(root, 2, [str(folder)], url, {"CORP_KEY": "test-key"})
        balancer = None
        try:
            balancer = Balancer(root / "nginx", replicas)
            yield Deployment(fake, replicas, balancer, admin, chat, limited)
        finally:
            if balancer is not None:
                balancer.stop()
            for replica in replicas:
                replica.stop()


def test_a_rate_limit_holds_across_replicas(deployment: Deployment) -> None:
    """4 requests a minute for the key, whichever replica nginx picks: 10 requests in a
    row through the balancer, both replicas answering, exactly 4 pass."""
    statuses, upstreams = [], set()
    with httpx.Client(base_url=deployment.balancer.base, timeout=30) as client:
        for _ in range(10):
            reply = client.get("/v1/models", headers=deployment.headers(deployment.limited))
            statuses.append(reply.status_code)
            upstreams.add(reply.headers.get("x-pilothouse-upstream"))
    assert statuses.count(200) == 4 and statuses.count(429) == 6, statuses
    assert upstreams == {f"127.0.0.1:{r.port}" for r in deployment.replicas}, upstreams


def ask(base: str, key: str, question: str, model: str = "testdesk") -> dict[str, Any]:
    reply = httpx.post(
        f"{base}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": question}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=180,
    )
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_an_approval_asked_on_one_replica_is_granted_on_the_other(
    deployment: Deployment,
) -> None:
    first, second = deployment.replicas
    deployment.fake.push(
        Reply(tool_calls=(Call("call_1", "create_ticket", {"summary": "printer broken"}),)),
        Reply("Ticket HD-1001 is open."),
    )
    paused = ask(first.base, deployment.chat, "Please open a ticket: the printer is broken")
    info = paused["pilothouse"]
    assert info["status"] == "awaiting_approval", info
    pending = httpx.get(
        f"{second.base}/api/approvals", headers=deployment.headers(deployment.admin), timeout=30
    ).json()["runs"]
    assert info["run_id"] in [run["run_id"] for run in pending]

    decided = httpx.post(
        f"{second.base}/api/approvals/{info['run_id']}",
        json={"approve": ["call_1"]},
        headers=deployment.headers(deployment.admin),
        timeout=180,
    )
    assert decided.status_code == 200, decided.text
    answer = decided.json()
    assert answer["status"] == "completed" and answer["text"] == "Ticket HD-1001 is open."
    tool_results = [m for m in deployment.fake.requests[-1]["messages"] if m["role"] == "tool"]
    assert tool_results and "HD-1001 created" in str(tool_results[-1]["content"])
    again = httpx.post(  # decided already: the other replica cannot take it twice
        f"{first.base}/api/approvals/{info['run_id']}",
        json={"approve": ["call_1"]},
        headers=deployment.headers(deployment.admin),
        timeout=60,
    )
    assert again.status_code == 404


def test_a_document_uploaded_through_one_replica_is_cited_by_the_other(
    deployment: Deployment,
) -> None:
    first, second = deployment.replicas
    uploaded = httpx.post(
        f"{first.base}/api/copilots/testdesk/knowledge/documents",
        files=[
            (
                "files",
                (
                    "parking.md",
                    b"# Visitors\n\n## Parking\n\nVisitor parking is in lot C, "
                    b"behind building 2.\n",
                    "text/markdown",
                ),
            )
        ],
        headers=deployment.headers(deployment.admin),
        timeout=180,
    )
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["files"][0]["status"] == "added"

    deployment.fake.push(Reply("Visitors park in lot C [1]."))
    answer = ask(second.base, deployment.chat, "Where do visitors park their cars?")
    assert answer["choices"][0]["message"]["content"] == "Visitors park in lot C [1]."
    citations = answer["pilothouse"]["citations"]
    assert citations and citations[0]["source"].endswith("parking.md"), citations
    prompt = str(deployment.fake.requests[-1]["messages"])
    assert "lot C, behind building 2" in prompt  # the other replica's grounding


def test_a_response_stored_by_one_replica_is_continued_on_the_other(
    deployment: Deployment,
) -> None:
    """`/v1/responses` on the first replica, then `previous_response_id` on the second:
    the second finds the stored response and sends the model the earlier turn."""
    first, second = deployment.replicas

    def respond(base: str, **body: Any) -> dict[str, Any]:
        reply = httpx.post(
            f"{base}/v1/responses",
            json={"model": "testdesk", **body},
            headers=deployment.headers(deployment.chat),
            timeout=180,
        )
        assert reply.status_code == 200, reply.text
        found: dict[str, Any] = reply.json()
        return found

    deployment.fake.push(Reply("Noted: badge 4711."))
    opened = respond(first.base, input="My badge number is 4711.")
    deployment.fake.push(Reply("Your badge is 4711."))
    continued = respond(
        second.base, input="What is my badge number?", previous_response_id=opened["id"]
    )
    assert continued["previous_response_id"] == opened["id"]
    sent = str(deployment.fake.requests[-1]["messages"])
    assert "My badge number is 4711." in sent and "Noted: badge 4711." in sent


VISITORS = """\
name: visitors
instructions: You greet visitors, {version}.
model:
  primary: corp:gpt-test
memory: {{window: 4, summarize: false}}
"""


def eventually(check: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Until `check()` holds (replicas poll the shared store about once a second)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:g} s: {what}")
        time.sleep(0.2)


def test_a_copilot_changed_through_one_replica_is_served_by_the_other(
    deployment: Deployment,
) -> None:
    """Created through the first replica's management API, the copilot answers through
    the second; its instructions edited through the first, the second answers with the
    new ones; deleted through the first, it is gone from the second (its folder too).
    No replica is restarted."""
    first, second = deployment.replicas
    admin = deployment.headers(deployment.admin)
    created = httpx.post(
        f"{first.base}/api/copilots",
        files=[("files", ("copilot.yaml", VISITORS.format(version="edition one"), "text/yaml"))],
        headers=admin,
        timeout=60,
    )
    assert created.status_code == 201, created.text

    def instructions_on_second() -> str | None:
        reply = httpx.get(f"{second.base}/api/copilots/visitors", headers=admin, timeout=30)
        return reply.json()["definition"]["instructions"] if reply.status_code == 200 else None

    eventually(lambda: instructions_on_second() is not None, "the second replica serves it")
    deployment.fake.push(Reply("Welcome."))
    ask(second.base, deployment.admin, "Hello", "visitors")
    assert "edition one" in str(deployment.fake.requests[-1]["messages"])

    edited = httpx.patch(
        f"{first.base}/api/copilots/visitors/files",
        json={"files": {"copilot.yaml": VISITORS.format(version="edition two")}},
        headers=admin,
        timeout=60,
    )
    assert edited.status_code == 200, edited.text
    eventually(lambda: "edition two" in (instructions_on_second() or ""), "the second has the edit")
    deployment.fake.push(Reply("Welcome again."))
    ask(second.base, deployment.admin, "Hi", "visitors")
    assert "edition two" in str(deployment.fake.requests[-1]["messages"])

    deleted = httpx.delete(f"{first.base}/api/copilots/visitors", headers=admin, timeout=60)
    assert deleted.status_code == 204, deleted.text
    eventually(lambda: instructions_on_second() is None, "the copilot is gone from the second")
    gone = httpx.get(f"{second.base}/v1/models/visitors", headers=admin, timeout=30)
    assert gone.status_code == 404
    assert not (second.home / "copilots" / "visitors").exists()
