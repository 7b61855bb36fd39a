"""A server killed with SIGKILL during shadow, then during canary, resumes in the stage
(and step) it was in, with the counts it had: a real server subprocess with scripted
models, real requests, real kills."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pilothouse.config import Settings
from pilothouse.pipeline.promotion.controller import Promotions
from pilothouse.testing.ports import free_port
from tests.pipeline.promotion.conftest import POLICY, started, wait_for, write_copilot

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = """
import sys
from pathlib import Path
import uvicorn
from pilothouse.config import Settings
from pilothouse.server.app import create_app
from pilothouse.server.connections import ConnectionLimits, uvicorn_config
from tests.pipeline.promotion.conftest import model_factory

home, folder, port = sys.argv[1:4]
settings = Settings.from_sources(home=Path(home), environ={})
app = create_app(
    settings,
    copilots=[folder],
    no_auth=True,
    copilot_models={"evaldesk": model_factory("test:current")},
    model_factory=model_factory,
    promotion_poll_s=0.1,
)
config = uvicorn_config(
    app, limits=ConnectionLimits(), host="127.0.0.1", port=int(port), log_level="warning",
    lifespan="on", loop="asyncio",
)
uvicorn.Server(config).run()
"""
VPN = "Which VPN client do we use? (user {})"


class Server:
    def __init__(self, settings: Settings, folder: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(settings.home), str(folder), str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stderr.read()  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("the server did not start")

    def ask(self, question: str, **extension: str) -> dict[str, str]:
        body: dict[str, object] = {
            "model": "evaldesk",
            "messages": [{"role": "user", "content": question}],
        }
        if extension:
            body["pilothouse"] = extension
        response = httpx.post(f"{self.base}/v1/chat/completions", json=body, timeout=60)
        assert response.status_code == 200, response.text
        extension_out: dict[str, str] = response.json()["pilothouse"]
        return extension_out

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


async def test_a_server_killed_in_shadow_and_in_canary_resumes_where_it_was(
    promotions: Promotions, tmp_path: Path, settings: Settings
) -> None:
    policy = POLICY.replace("min_requests: 3", "min_requests: 6").replace(
        "min_requests: 2", "min_requests: 4"
    )
    folder = write_copilot(tmp_path, policy=policy)
    pid = (await started(promotions, folder, "test:better")).promotion_id
    store = promotions.store

    def count(stage: str, step: int = 0, arm: str = "candidate") -> int:
        return store.count(pid, stage, step, arm)  # type: ignore[arg-type]

    def mirrored(pairs: int) -> bool:
        # A shadow pair is stored candidate first, then current, then decided: waiting
        # for the candidate's alone raced the rest of it (on a busy machine a kill
        # left a pair half-stored, or the stage was read before the decision).
        return count("shadow") == pairs and count("shadow", arm="current") == pairs

    server = Server(settings, folder)
    try:
        for user in range(3):  # shadow, half-way
            server.ask(VPN.format(user))
            wait_for(lambda user=user: mirrored(user + 1))
    finally:
        server.kill()
    assert (store.get(pid).stage, count("shadow")) == ("shadow", 3)

    server = Server(settings, folder)
    try:
        assert (store.get(pid).stage, count("shadow")) == ("shadow", 3)  # resumed, same counts
        for asked in range(3):  # the 3 it lacked (min_requests 6), not 6 anew
            assert store.get(pid).stage == "shadow"
            server.ask(VPN.format(f"again {asked}"))
            wait_for(lambda asked=asked: mirrored(4 + asked))
        wait_for(lambda: store.get(pid).stage == "canary")  # decided on the sixth pair
        sticky: dict[str, str] = {}
        user = 0
        while count("canary") < 2:  # canary step 1, half-way
            answer = server.ask(VPN.format(f"canary {user}"))
            sticky[answer["conversation_id"]] = answer["model"]
            user += 1
            wait_for(lambda user=user: len(store.samples(pid, "canary", 0)) == user)
    finally:
        server.kill()
    before = (store.get(pid).stage, store.get(pid).step, count("canary"))
    assert before == ("canary", 0, 2)

    server = Server(settings, folder)
    try:
        assert (store.get(pid).stage, store.get(pid).step, count("canary")) == before
        for conversation, model in sticky.items():  # conversations keep their model
            assert server.ask(VPN.format("later"), conversation_id=conversation)["model"] == model
        user = 0
        while store.get(pid).status == "running" and user < 200:
            server.ask(VPN.format(f"after {user}"))
            user += 1
        wait_for(lambda: store.get(pid).status == "promoted")
        wait_for(lambda: server.ask(VPN.format("promoted"))["model"] == "test:better")
    finally:
        server.kill()
    kinds = [e.kind for e in store.events(pid)]
    assert kinds.count("stage") == 2 and kinds[-1] == "promoted", kinds
