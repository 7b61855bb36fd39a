"""A server killed with SIGKILL in the middle of an upload leaves nothing on disk that
the index or the served copilots do not match, once it starts again: a real
`pilothouse serve` subprocess, a real upload, a real kill."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pilothouse.config import Settings
from pilothouse.knowledge.base import KnowledgeBase
from pilothouse.knowledge.locations import default_base_path
from pilothouse.server.keys import KeyStore
from pilothouse.server.management.recovery import recover_staging
from pilothouse.server.management.state import copilots_dir, uploads_dir
from pilothouse.testing.ports import free_port

V1 = "# Handbook\n\n## Holidays\n\nStaff get 28 days of paid holiday.\n"


def big_markdown(title: str, sections: int) -> str:
    """A document that takes the embedder a while (many chunks)."""
    body = "\n\n".join(
        f"## {title} part {i}\n\n"
        + " ".join(
            f"Step {i}.{j}: check the {title.lower()} setting number {j}." for j in range(40)
        )
        for i in range(sections)
    )
    return f"# {title}\n\n{body}\n"


class Served:
    def __init__(self, home: Path, key: str) -> None:
        self.home = home
        self.key = key
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PILOTHOUSE_HOME": str(home)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pilothouse", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server did not start: {self.errors()}")

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def upload(self, files: dict[str, str], timeout: float = 120) -> httpx.Response:
        return httpx.post(
            f"{self.base}/api/knowledge/documents",
            files=[
                ("files", (name, text.encode(), "text/markdown")) for name, text in files.items()
            ],
            headers=self.headers,
            timeout=timeout,
        )

    def sources(self) -> set[str]:
        reply = httpx.get(f"{self.base}/api/knowledge/documents", headers=self.headers, timeout=30)
        return {d["source"] for d in reply.json()["documents"]}

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def errors(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read().decode(errors="replace")[-3000:]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    home = tmp_path / "home"
    settings = Settings.from_sources(home=home, environ={})
    with KeyStore(settings.database_path) as keys:
        key, _ = keys.create("ops", ["admin"])
    yield home, key


def wait_for(predicate: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return False


def on_disk(folder: Path) -> set[str]:
    return {str(p.absolute()) for p in folder.rglob("*") if p.is_file()}


def indexed(home: Path) -> dict[str, str]:
    settings = Settings.from_sources(home=home, environ={})
    kb = KnowledgeBase.open_local(default_base_path(settings))
    try:
        return {row.source: row.content_hash for row in kb.documents()}
    finally:
        kb.close()


def test_a_server_killed_mid_upload_leaves_no_file_outside_the_index(
    home: tuple[Path, str],
) -> None:
    folder, key = home
    uploads = uploads_dir(Settings.from_sources(home=folder, environ={}), None)
    server = Served(folder, key)
    try:
        first = server.upload({"handbook.md": V1})
        assert first.status_code == 200 and first.json()["files"][0]["status"] == "added"
        v2 = big_markdown("Handbook", 120)
        manual = big_markdown("Manual", 120)
        sent = threading.Thread(
            target=lambda: _ignore_errors(
                lambda: server.upload({"handbook.md": v2, "manual.md": manual}, timeout=300)
            ),
            daemon=True,
        )
        sent.start()
        assert wait_for(lambda: (uploads / "manual.md").exists(), 120), server.errors()
        server.kill()  # both files are written; their ingestion is under way
    finally:
        server.stop()
    sent.join(30)
    before = indexed(folder)
    # the crash left the folder and the index apart: this is what start-up must repair
    assert str((uploads / "manual.md").absolute()) not in before, "ingestion won the race"
    assert (uploads / "manual.md").exists()
    assert [p.name for p in uploads.iterdir() if p.name.endswith(".previous")]

    again = Served(folder, key)
    try:
        sources = again.sources()
        assert on_disk(uploads) == sources  # every file is indexed, every document has its file
        assert (uploads / "handbook.md").read_text() == V1  # the committed version is back
        assert not [p for p in uploads.rglob(".*")]  # no temporary or previous versions
        found = httpx.post(
            f"{again.base}/api/knowledge/search",
            json={"query": "paid holiday", "mode": "bm25"},
            headers=again.headers,
            timeout=60,
        ).json()["results"]
        assert found and found[0]["source"].endswith("handbook.md")
    finally:
        again.stop()


def _ignore_errors(call: object) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the server was killed under it
        call()  # type: ignore[operator]


def test_an_update_that_never_answered_is_rolled_back(tmp_path: Path) -> None:
    settings = Settings.from_sources(home=tmp_path / "home", environ={})
    copilots = copilots_dir(settings)
    staging = copilots / ".staging"
    # the update moved the old folder aside, and died before moving the new one in
    previous = staging / "0123456789abcdef-previous"
    previous.mkdir(parents=True)
    (previous / "copilot.yaml").write_text("name: helpdesk\ninstructions: The old one.\n")
    unfinished = staging / "fedcba9876543210"
    unfinished.mkdir()
    (unfinished / "copilot.yaml").write_text("name: helpdesk\ninstructions: Half.\n")
    # a second update died after moving the new one in, before answering
    (staging / "1111111111111111-previous").mkdir()
    ((staging / "1111111111111111-previous") / "copilot.yaml").write_text(
        "name: other\ninstructions: The old other.\n"
    )
    (copilots / "other").mkdir()
    (copilots / "other" / "copilot.yaml").write_text("name: other\ninstructions: Unanswered.\n")

    done = recover_staging(staging, copilots)
    assert len(done) == 3
    assert "The old one." in (copilots / "helpdesk" / "copilot.yaml").read_text()
    assert "The old other." in (copilots / "other" / "copilot.yaml").read_text()
    assert list(staging.iterdir()) == []
