"""`pilothouse promote ... --simulate SUITE`: a policy tried without users. The copilot
is served in this process on a loopback port (the real server: routing, mirroring,
canary, the same store) and a suite's questions (or captured conversations, which
`pilothouse eval capture` turns into a suite) are sent to it as live traffic at a
given rate, until the promotion ends, is held, or the requests run out.

Each request is one simulated user's (OpenAI's `user` field, so two users asking the
same question are two conversations to the canary): a case's earlier turns travel with
it, the way an OpenAI client resends a conversation; a run paused for approval is
decided as the suite says (denied unless it approves), like a user would."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pilothouse.config import Settings
from pilothouse.pipeline.suite import Suite, load_suite
from pilothouse.server.app import create_app
from pilothouse.server.connections import ConnectionLimits, uvicorn_config
from pilothouse.server.ops import GracefulServer

log = logging.getLogger(__name__)

SEED = 20261207


@dataclass(frozen=True, slots=True)
class Request:
    case: str
    messages: tuple[dict[str, str], ...]
    approve: bool


@dataclass
class Tally:
    sent: int = 0
    answered: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        p50 = ordered[len(ordered) // 2] if ordered else None
        return {"sent": self.sent, "answered": self.answered, "failed": self.failed, "p50_s": p50}


def find_suite(folder: Path, name: str, suites: list[str]) -> Suite:
    """A suite by its name among the copilot's suites, or a suite file's path."""
    path = Path(name)
    if path.is_file():
        return load_suite(path)
    for relative in suites:
        suite = load_suite(folder / relative)
        if suite.suite == name or Path(relative).stem == name:
            return suite
    raise FileNotFoundError(f"--simulate {name}: no such suite file, nor a suite of {folder}")


def requests_of(suite: Suite) -> list[Request]:
    out = []
    for case in suite.cases:
        earlier = tuple({"role": t.role, "content": t.text} for t in case.conversation)
        messages = (*earlier, {"role": "user", "content": case.question})
        out.append(Request(case.id, messages, suite.approves(case)))
    return out


async def replay(
    base: str,
    copilot: str,
    requests: list[Request],
    *,
    rate: float,
    limit: int,
    concurrency: int,
    done: Callable[[], bool],
    progress: Callable[[Tally], None] | None = None,
) -> Tally:
    """Send `requests` round and round (shuffled, seeded), `rate` a second with at most
    `concurrency` in flight, until `done()` or `limit` requests were sent."""
    tally = Tally()
    order = random.Random(SEED)
    slots = asyncio.Semaphore(concurrency)
    pending: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(base_url=base, timeout=None) as client:
        deck: list[Request] = []
        next_at = time.monotonic()
        while tally.sent < limit and not done():
            if not deck:
                deck = list(requests)
                order.shuffle(deck)
            wait = next_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await slots.acquire()
            if done():
                slots.release()
                break
            request = deck.pop()
            tally.sent += 1
            next_at = max(next_at + 1 / rate, time.monotonic())
            user = f"simulated-{tally.sent}"
            task = asyncio.create_task(_one(client, copilot, request, user, tally, slots, progress))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    return tally


async def _one(
    client: httpx.AsyncClient,
    copilot: str,
    request: Request,
    user: str,
    tally: Tally,
    slots: asyncio.Semaphore,
    progress: Callable[[Tally], None] | None,
) -> None:
    started = time.perf_counter()
    try:
        body = {"model": copilot, "messages": list(request.messages), "user": user}
        answer = await _post(client, body)
        pending = answer.get("pilothouse", {}).get("pending_approvals") or []
        if pending:
            decision = "approve" if request.approve else "deny"
            ext = {"run_id": pending[0]["run_id"], decision: [p["call_id"] for p in pending]}
            await _post(client, {**body, "pilothouse": ext})
        tally.answered += 1
        tally.latencies.append(time.perf_counter() - started)
    except (httpx.HTTPError, ValueError) as exc:
        tally.failed += 1
        log.warning("simulated request %s failed: %s", request.case, exc)
    finally:
        slots.release()
        if progress is not None:
            progress(tally)


async def _post(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/chat/completions", json=body)
    if response.status_code != 200:
        raise ValueError(f"HTTP {response.status_code}: {response.text[:200]}")
    data: dict[str, Any] = response.json()
    return data


class LocalServer:
    """The copilot served in this process on a free loopback port, without keys."""

    def __init__(self, settings: Settings, folder: Path, *, poll_s: float = 0.5) -> None:
        app = create_app(settings, copilots=[folder], no_auth=True, promotion_poll_s=poll_s)
        self.context = app.context
        config = uvicorn_config(
            app,
            limits=ConnectionLimits(),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="on",
            access_log=False,
        )
        self.server = GracefulServer(config, app.context)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> str:
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise RuntimeError("the server stopped before it started")
            await asyncio.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def settle(self) -> None:
        """Wait for the promotion to score what it was given."""
        if self.context.promotions is not None:
            await self.context.promotions.settle()

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task
