"""Managed copilots shared by replicas on one PostgreSQL database, two apps in one
process (tests/server/test_replicas.py runs two real servers): each replica opens what
another published under its own code policy, and a copilot it already holds unchanged
is not replaced."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pilothouse.config import DATABASE_URL_ENV, Settings
from pilothouse.server.app import create_app
from pilothouse.server.keys import KeyStore
from pilothouse.server.management.replication import CopilotReplication
from pilothouse.server.management.state import copilots_dir, management_of
from pilothouse.storage.backends import close_database

from .conftest import as_multipart

PLAIN = "name: greeter\ninstructions: You greet people, {edition}.\nmodel:\n  primary: local:x\n"
TOOLS_PY = "from pilothouse.tools import tool\n\n\n@tool\ndef ping() -> str:\n    return 'pong'\n"
WITH_CODE = PLAIN + "tools:\n  - python: tools.py\n    functions: [ping]\n"


class Replica:
    def __init__(self, app: Any, client: httpx.AsyncClient, settings: Settings) -> None:
        self.app, self.client, self.settings = app, client, settings

    @property
    def replication(self) -> CopilotReplication:
        replication = management_of(self.app.context).replication
        assert replication is not None
        return replication

    def serves(self, name: str) -> bool:
        return name in self.app.context.copilots


@pytest.fixture
async def replicas(tmp_path: Path, postgres_url: str) -> AsyncIterator[list[Replica]]:
    """Two replicas on one database, started one after the other: the first lets
    uploads bring code, the second not; the first has a managed copilot `legacy` in its
    data directory from before."""
    stack: list[Any] = []
    made: list[Replica] = []
    admin = ""
    legacy = tmp_path / "replica-1" / "copilots" / "legacy"  # made before the shared store
    legacy.mkdir(parents=True)
    (legacy / "copilot.yaml").write_text(PLAIN.format(edition="old").replace("greeter", "legacy"))
    for n, allow in enumerate((True, False)):
        settings = Settings.from_sources(
            home=tmp_path / f"replica-{n + 1}",
            file_data={"storage": {"connect_timeout_s": 1}},  # waits of 1 s at most
            environ={DATABASE_URL_ENV: postgres_url},
        )
        store = KeyStore.for_settings(settings)
        if n == 0:
            admin, _ = store.create("admin", ["admin"])
        app = create_app(settings, keys=store, allow_code_upload=allow)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {admin}"},
            timeout=60,
        )
        stack += [lifespan, client]
        made.append(Replica(app, client, settings))
    yield made
    for item in reversed(stack):
        if isinstance(item, httpx.AsyncClient):
            await item.aclose()
        else:
            await item.__aexit__(None, None, None)
    for replica in made:
        close_database(replica.settings)


async def test_each_replica_applies_its_own_code_policy(
    replicas: list[Replica], caplog: pytest.LogCaptureFixture
) -> None:
    """A copilot with Python tools, uploaded to the replica that allows code, is not
    served by the one that does not (which says why and keeps no folder); once it is
    replaced by a version without code, both serve it."""
    first, second = replicas
    upload = {"copilot.yaml": WITH_CODE.format(edition="first"), "tools.py": TOOLS_PY}
    created = await first.client.post("/api/copilots", files=as_multipart(upload))
    assert created.status_code == 201, created.text
    with caplog.at_level(logging.ERROR, "pilothouse.server.management.replication"):
        await second.replication.sync()
    assert not second.serves("greeter")
    assert not (copilots_dir(second.settings) / "greeter").exists()
    assert "greeter" in caplog.text and "upload_tool_modules" in caplog.text, caplog.text

    plain = {"copilot.yaml": PLAIN.format(edition="second")}
    replaced = await first.client.put("/api/copilots/greeter", files=as_multipart(plain))
    assert replaced.status_code == 200, replaced.text
    await second.replication.sync()
    assert second.serves("greeter")
    copilot = second.app.context.copilots.get("greeter")
    assert "second" in copilot.definition.instructions
    assert not (copilots_dir(second.settings) / "greeter" / "tools.py").exists()


async def test_an_unchanged_copilot_is_not_replaced_and_names_stay_unique(
    replicas: list[Replica],
) -> None:
    """A replica that already serves the published folder byte for byte keeps the
    copilot it has (a restart does not reopen everything); a name another replica
    published cannot be created again (409), even before this replica has applied it."""
    first, second = replicas
    plain = {"copilot.yaml": PLAIN.format(edition="one")}
    assert (await first.client.post("/api/copilots", files=as_multipart(plain))).status_code == 201
    await second.replication.sync()
    served = second.app.context.copilots.get("greeter")
    assert served is not None
    second.replication.served.clear()  # as after a restart: nothing known to be applied
    second.replication.seen = 0
    await second.replication.sync()
    assert second.app.context.copilots.get("greeter") is served

    store = first.replication.store
    await first.replication.sync()
    store.publish("newcomer", b"not applied anywhere yet", new=True)
    again = await first.client.post(
        "/api/copilots",
        files=as_multipart({"copilot.yaml": PLAIN.replace("greeter", "newcomer")}),
    )
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "copilot_exists"
    assert not first.serves("newcomer")
    assert not (copilots_dir(first.settings) / "newcomer").exists()


async def test_a_change_that_cannot_be_published_is_undone(
    replicas: list[Replica], postgres_url: str
) -> None:
    """Publishing blocked (another session holds the publication lock for longer than
    the database's wait): the update answers 503 `storage_unavailable` and the replica
    serves the copilot it had, from the folder it had; nothing was published."""
    import psycopg

    from pilothouse.storage.copilot_folders_postgres import PUBLISH_LOCK

    first = replicas[0]
    plain = {"copilot.yaml": PLAIN.format(edition="one")}
    assert (await first.client.post("/api/copilots", files=as_multipart(plain))).status_code == 201
    version = await asyncio.to_thread(first.replication.store.latest_version)
    with psycopg.connect(postgres_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (PUBLISH_LOCK,))
        changed = {"copilot.yaml": PLAIN.format(edition="two")}
        reply = await first.client.put("/api/copilots/greeter", files=as_multipart(changed))
    assert reply.status_code == 503, reply.text
    assert reply.json()["error"]["code"] == "storage_unavailable"
    now = first.app.context.copilots.get("greeter")
    assert now is not None and "people, one." in now.definition.instructions
    folder = copilots_dir(first.settings) / "greeter"
    assert "people, one." in (folder / "copilot.yaml").read_text()
    assert await asyncio.to_thread(first.replication.store.latest_version) == version


async def test_a_managed_copilot_from_before_the_shared_store_is_published(
    replicas: list[Replica],
) -> None:
    """A copilot the first replica's API made before its server used the shared store
    is published when it starts, and the second serves it from its own data directory."""
    first, second = replicas
    assert first.serves("legacy") and second.serves("legacy")
    copilot = second.app.context.copilots.get("legacy")
    assert copilot.folder == copilots_dir(second.settings).resolve() / "legacy"
    assert [r.name for r in first.replication.store.changes(0)] == ["legacy"]
