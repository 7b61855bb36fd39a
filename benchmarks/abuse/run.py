"""Abusive clients against a real `pilothouse serve`, while normal requests go on.

    python benchmarks/abuse/run.py                    # the guarded server (pilothouse serve)
    python benchmarks/abuse/run.py --server plain     # the same app on plain uvicorn+httptools
    python benchmarks/abuse/run.py --json out.json    # the figures as JSON too

A mock OpenAI upstream (aiohttp, in this process) answers the server's one gateway
route. For `--seconds` (default 30) a bounded set of abusers runs, each from its own
loopback address (127.0.0.2 and up, as many attackers would be):

- `--big` clients (default 40) open a connection and send an unfinished header of
  8 MiB in 64 KiB pieces, then start again when the server closes it;
- `--slow` clients (default 100) send `--slow-prefix` bytes of a header at once (30,000,
  just under the server's 32 KiB limit: the most a connection can make it hold), then
  one byte a second;
- `--idle` clients (default 200) open a connection and send nothing, reopening when
  it is closed.

Meanwhile one normal client (127.0.0.1, keep-alive) calls `GET /v1/models` and
`POST /v1/chat/completions` (the gateway route) in turn, as fast as answers come. The
same client runs alone for `--seconds` first: the baseline. Reported: the server's
RSS (idle, peak under attack; sampled every 50 ms from /proc), and the normal
requests' count, success rate and latency (p50, p99, max) in both phases. Linux only
(/proc, 127.0.0.0/8).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

HEAD = b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n"
COMPLETION = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 0,
    "model": "mock",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
PLAIN_SERVER = """
import sys, uvicorn
from pathlib import Path
from pilothouse.server.app import create_app
from pilothouse.storage import load_settings
app = create_app(load_settings(), routes=Path(sys.argv[2]))
uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[1]), http="httptools",
    loop="uvloop", lifespan="on", log_level="warning", access_log=False)).run()
"""


@dataclass
class Phase:
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        total = len(lat) + self.failures
        return {
            "requests": total,
            "ok": len(lat),
            "success_rate": round(len(lat) / total, 4) if total else None,
            "p50_ms": round(statistics.median(lat), 2) if lat else None,
            "p99_ms": round(lat[int(len(lat) * 0.99) - 1], 2) if len(lat) >= 100 else None,
            "max_ms": round(lat[-1], 2) if lat else None,
            "errors": self.errors,
        }


@dataclass
class Abuse:
    big_connections: int = 0
    big_bytes_sent: int = 0
    slow_connections: int = 0
    idle_connections: int = 0
    answers: dict[str, int] = field(default_factory=dict)

    def answered(self, data: bytes) -> None:
        if data.startswith(b"HTTP/1.1 "):
            status = data[9:12].decode(errors="replace")
        else:
            status = "no answer" if data == b"timeout" else "closed"
        self.answers[status] = self.answers.get(status, 0) + 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# --- the mock upstream ------------------------------------------------------------------


async def mock_upstream(port: int) -> web.AppRunner:
    body = json.dumps(COMPLETION).encode()

    async def chat(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


# --- the server ---------------------------------------------------------------------------


def start_server(
    kind: str, home: Path, port: int, upstream: int
) -> tuple[subprocess.Popen[bytes], str]:
    routes = home / "routes.yaml"
    routes.write_text(
        "providers:\n  bench:\n    preset: openai\n"
        f"    base_url: http://127.0.0.1:{upstream}/v1\n    api_key_env: BENCH_UPSTREAM_KEY\n"
        "routes:\n  mock:\n    targets: [bench:mock]\n"
    )
    env = {**os.environ, "PILOTHOUSE_HOME": str(home), "BENCH_UPSTREAM_KEY": "sk-mock"}
    create = [sys.executable, "-m", "pilothouse", "keys", "create", "--scope", "models"]
    made = subprocess.run(create, env=env, capture_output=True, text=True, check=True)
    key = made.stdout.strip().splitlines()[-1].strip()
    if kind == "plain":
        command = [sys.executable, "-c", PLAIN_SERVER, str(port), str(routes)]
    else:
        command = [sys.executable, "-m", "pilothouse", "serve", "--routes", str(routes),
                   "--port", str(port), "--no-access-log"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process, key
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the server did not start: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]


# --- clients ------------------------------------------------------------------------------


async def normal_client(port: int, key: str, phase: Phase, stop: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    body = {"model": "mock", "messages": [{"role": "user", "content": "ping"}]}
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.1")
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30, transport=transport
    ) as client:
        turn = 0
        while not stop.is_set():
            turn += 1
            started = time.perf_counter()
            try:
                if turn % 2:
                    reply = await client.get("/v1/models")
                else:
                    reply = await client.post("/v1/chat/completions", json=body)
                ok = reply.status_code == 200
                why = str(reply.status_code)
            except httpx.HTTPError as exc:
                ok, why = False, type(exc).__name__
            if ok:
                phase.latencies_ms.append((time.perf_counter() - started) * 1000)
            else:
                phase.failures += 1
                phase.errors[why] = phase.errors.get(why, 0) + 1


async def _connect(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0), limit=2**20)


async def _connections(
    port: int, source: str, stop: asyncio.Event
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """One connection from `source` after another until `stop` is set; a connection
    that fails is tried again 0.1 s later."""
    while not stop.is_set():
        try:
            connection = await _connect(port, source)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        yield connection


async def _drain_answer(reader: asyncio.StreamReader) -> bytes:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, TimeoutError):
        return await asyncio.wait_for(reader.read(4096), 10)
    return b"timeout"


async def big_header(port: int, source: str, abuse: Abuse, stop: asyncio.Event) -> None:
    """8 MiB of one header, in 64 KiB pieces 10 ms apart (6 MiB/s), until the server
    answers or closes; then again, 0.1 s later."""
    piece = b"a" * 65536
    async for reader, writer in _connections(port, source, stop):
        abuse.big_connections += 1
        answer = asyncio.ensure_future(_drain_answer(reader))
        try:
            writer.write(HEAD + b"X-Big: ")
            for _ in range(128):  # 8 MiB, never finished
                if stop.is_set() or answer.done():
                    break
                writer.write(piece)
                await writer.drain()
                abuse.big_bytes_sent += len(piece)
                await asyncio.sleep(0.01)
        except (ConnectionError, OSError):
            pass
        abuse.answered(await answer)
        writer.close()
        await asyncio.sleep(0.1)


async def slow_header(
    port: int, source: str, abuse: Abuse, stop: asyncio.Event, prefix: int
) -> None:
    """`prefix` bytes of a header at once (just under the limit: what costs the server
    most), then one byte a second, never the end of the head."""
    async for reader, writer in _connections(port, source, stop):
        abuse.slow_connections += 1
        try:
            writer.write(HEAD + b"X-Pad: " + b"a" * prefix)
            while not stop.is_set() and not reader.at_eof():
                writer.write(b"X")
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    data = await asyncio.wait_for(reader.read(4096), 1.0)
                    abuse.answered(data)
                    break
        except (ConnectionError, OSError):
            pass
        writer.close()


async def idle(port: int, source: str, abuse: Abuse, stop: asyncio.Event) -> None:
    async for reader, writer in _connections(port, source, stop):
        abuse.idle_connections += 1
        with contextlib.suppress(TimeoutError, ConnectionError):
            data = await asyncio.wait_for(reader.read(4096), 60)
            abuse.answered(data)
        writer.close()


async def sample_rss(pid: int, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], rss_kib(pid))
        await asyncio.sleep(0.05)


# --- the run ------------------------------------------------------------------------------


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    load_at_start = os.getloadavg()
    upstream_port = free_port()
    runner = await mock_upstream(upstream_port)
    home = Path(tempfile.mkdtemp(prefix="pilothouse-abuse-"))
    port = free_port()
    process, key = await asyncio.to_thread(start_server, args.server, home, port, upstream_port)
    try:
        baseline, attacked, abuse = Phase(), Phase(), Abuse()
        stop = asyncio.Event()
        await asyncio.sleep(1)
        idle_rss = rss_kib(process.pid)
        peak_alone = [idle_rss]
        watchers = [asyncio.create_task(sample_rss(process.pid, peak_alone, stop))]
        watchers.append(asyncio.create_task(normal_client(port, key, baseline, stop)))
        await asyncio.sleep(args.seconds)
        stop.set()
        await asyncio.gather(*watchers)

        stop = asyncio.Event()
        peak = [rss_kib(process.pid)]
        sources = iter(f"127.0.0.{n}" for n in range(2, 255))
        tasks = [asyncio.create_task(sample_rss(process.pid, peak, stop))]
        slow = functools.partial(slow_header, prefix=args.slow_prefix)
        for kind, count in ((big_header, args.big), (slow, args.slow), (idle, args.idle)):
            source = next(sources)
            for index in range(count):
                if index and index % 50 == 0:  # at most 50 from one address
                    source = next(sources)
                tasks.append(asyncio.create_task(kind(port, source, abuse, stop)))
        await asyncio.sleep(2)  # the attack is under way before normal requests start
        tasks.append(asyncio.create_task(normal_client(port, key, attacked, stop)))
        await asyncio.sleep(args.seconds)
        stop.set()
        await asyncio.wait(tasks, timeout=30)
        after = rss_kib(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        await runner.cleanup()
    return {
        "server": args.server,
        "seconds": args.seconds,
        "abusers": {
            "big": args.big,
            "slow": args.slow,
            "slow_prefix": args.slow_prefix,
            "idle": args.idle,
        },
        "load_at_start": load_at_start,
        "load_at_end": os.getloadavg(),
        "rss_mib": {
            "idle": round(idle_rss / 1024, 1),
            "peak_normal_only": round(peak_alone[0] / 1024, 1),
            "peak_under_attack": round(peak[0] / 1024, 1),
            "after": round(after / 1024, 1),
        },
        "normal_alone": baseline.summary(),
        "normal_under_attack": attacked.summary(),
        "abuse": asdict(abuse),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=["guarded", "plain"], default="guarded")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--big", type=int, default=40)
    parser.add_argument("--slow", type=int, default=100)
    parser.add_argument("--idle", type=int, default=200)
    parser.add_argument(
        "--slow-prefix", type=int, default=30_000, help="header bytes a slow client sends at once"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
