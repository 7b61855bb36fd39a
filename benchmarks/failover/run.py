"""The failover matrix: every fault of the fake upstream (tests/fakes/faulty_upstream.py),
JSON and streaming, through the gateway and through the Python API, each with a healthy
fallback behind the faulty upstream. Counts the requests, the failures a user would see,
and the latency the failover added (median, against the same path with no fault).

    python benchmarks/failover/run.py                    # 20 requests per cell
    python benchmarks/failover/run.py -n 50 --readme benchmarks/README.md

Limits are the route's and the Python API's defaults except the time limits, which are
short so that a stalled upstream costs seconds, not minutes (connect 1 s, first byte
1 s, idle 1 s, total 3 s), and the breakers, which by default never open here
(`--breaker-threshold 1000`), so that every request meets the fault and pays the whole
failover: the worst case. With the product's default (5 failures open a breaker for
30 s) the requests after the fifth failure skip the faulty upstream and pay almost
nothing (`--breaker-threshold 5` shows it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the fake upstream and the rig live in tests/

import httpx  # noqa: E402
from tests.failover import rig as rigging  # noqa: E402
from tests.fakes.faulty_upstream import FAILS_AFTER_TEXT, FAILS_BEFORE_TEXT  # noqa: E402

from pilothouse.errors import ModelError  # noqa: E402
from pilothouse.models.breaker import BreakerBoard, BreakerPolicy  # noqa: E402
from pilothouse.models.compose import ResiliencePolicy, build_model  # noqa: E402
from pilothouse.models.timeout import TimeoutPolicy  # noqa: E402
from pilothouse.server.routes import RetrySettings  # noqa: E402
from pilothouse.types import Message, ModelRequest, StreamContinued  # noqa: E402

LIMITS = {"connect_s": 1.0, "first_byte_s": 1.0, "idle_s": 1.0, "total_s": 3.0}
MODES = ["ok", "refused", *FAILS_BEFORE_TEXT, *FAILS_AFTER_TEXT]
AFTER_TEXT = FAILS_AFTER_TEXT
ASK = rigging.ASK
REQUEST = ModelRequest((Message.user(ASK["messages"][0]["content"]),))


@dataclass
class Cell:
    path: str
    kind: str
    mode: str
    continued: bool
    requests: int = 0
    failures: int = 0
    latencies: list[float] | None = None

    def p50_ms(self) -> float:
        return statistics.median(self.latencies or [0.0]) * 1000


def expected_texts(r: rigging.Rig) -> set[str]:
    # slow_headers within total_s is answered by the faulty upstream itself: fine
    return {rigging.HEALTHY_TEXT, r.faulty.text}


def gateway_ok(reply: httpx.Response, stream: bool, texts: set[str], continued: bool) -> bool:
    if reply.status_code != 200:
        return False
    if not stream:
        return reply.json()["choices"][0]["message"]["content"] in texts
    payloads = rigging.sse_payloads(reply.text)
    if not payloads or payloads[-1] != "[DONE]":
        return False
    text = []
    for payload in payloads[:-1]:
        chunk = json.loads(payload)
        if "error" in chunk:
            return False
        for choice in chunk.get("choices") or ():
            text.append(choice["delta"].get("content") or "")
    whole = "".join(text)
    return whole in texts or (continued and whole.endswith(rigging.HEALTHY_TEXT))


def run_gateway(r: rigging.Rig, cell: Cell, n: int, threshold: int) -> None:
    first = "down:m" if cell.mode == "refused" else "faulty:m"
    second = "continuing:m" if cell.continued else "healthy:m"
    route = {"targets": [first, second], "continue_streams": cell.continued}
    stream = cell.kind == "stream"
    texts = expected_texts(r)
    cell.latencies = []
    breaker = {"failure_threshold": threshold, "recovery_s": 30}
    with (
        r.gateway({"chain": route}, breaker=breaker) as base,
        httpx.Client(base_url=base, timeout=30) as http,
    ):
        for _ in range(n):
            started = time.perf_counter()
            try:
                reply = http.post(
                    "/v1/chat/completions", json={"model": "chain", "stream": stream, **ASK}
                )
                ok = gateway_ok(reply, stream, texts, cell.continued)
            except httpx.HTTPError:
                ok = False
            cell.latencies.append(time.perf_counter() - started)
            cell.requests += 1
            cell.failures += 0 if ok else 1


async def run_python(r: rigging.Rig, cell: Cell, n: int, threshold: int) -> None:
    first = "down:m" if cell.mode == "refused" else "faulty:m"
    second = "continuing:m" if cell.continued else "healthy:m"
    policy = ResiliencePolicy(timeout=TimeoutPolicy(**LIMITS), continue_streams=cell.continued)
    board = BreakerBoard(BreakerPolicy(failure_threshold=threshold))
    model = build_model([first, second], r.settings(), policy=policy, board=board)
    texts = expected_texts(r)
    cell.latencies = []
    try:
        for _ in range(n):
            started = time.perf_counter()
            try:
                if cell.kind == "stream":
                    continued = False
                    text: list[str] = []
                    response = None
                    async for event in model.stream(REQUEST):
                        continued = continued or isinstance(event, StreamContinued)
                        if event.kind == "text_delta":
                            text.append(event.text)  # type: ignore[union-attr]
                        elif event.kind == "end":
                            response = event.response  # type: ignore[union-attr]
                        elif event.kind == "error":
                            response = None
                    ok = response is not None and (
                        response.text in texts or (continued and cell.continued)
                    )
                else:
                    response = await model.complete(REQUEST)
                    ok = response.text in texts
            except ModelError:
                ok = False
            cell.latencies.append(time.perf_counter() - started)
            cell.requests += 1
            cell.failures += 0 if ok else 1
    finally:
        await model.aclose()


def table(cells: list[Cell], load: str, n: int) -> str:
    base = {(c.path, c.kind): c.p50_ms() for c in cells if c.mode == "ok"}
    lines = [
        "| mode | JSON gateway | JSON Python | stream gateway | stream Python |",
        "|---|---:|---:|---:|---:|",
    ]
    by_key = {(c.mode, c.continued, c.kind, c.path): c for c in cells}
    rows: list[tuple[str, bool]] = [(m, False) for m in MODES] + [(m, True) for m in AFTER_TEXT]
    for mode, continued in rows:
        label = f"{mode} (continue_streams)" if continued else mode
        out = []
        for kind in ("json", "stream"):
            for path in ("gateway", "python"):
                cell = by_key.get((mode, continued, kind, path))
                if cell is None:
                    out.append("n/a")
                    continue
                added = cell.p50_ms() - base[(path, kind)]
                out.append(f"{cell.failures}/{cell.requests} · {round(added) + 0:+d} ms")
        lines.append(f"| {label} | " + " | ".join(out) + " |")
    total = sum(c.requests for c in cells)
    return "\n".join(lines) + f"\n\n{total} requests, {n} per cell; load average {load}.\n"


PREAMBLE = """\
Every fault of the fake upstream (`tests/fakes/faulty_upstream.py`), JSON and
streaming, through the gateway (a route of two targets) and through the Python API
(`build_model` with two ids), the faulty upstream first and a healthy one behind it:
`benchmarks/failover/run.py` (`-n` requests per cell, `--readme` writes this section).
Each cell is *failures the user saw / requests*, then the latency the failover added
(median, against the same path with no fault). Time limits are short so that a stall
costs seconds (connect 1 s, first byte 1 s, idle 1 s, total 3 s); retries are the
defaults (2 attempts; none on a rate limit or a timeout when a fallback follows);
breakers never open here, so every request meets the fault and pays the whole
failover (with the default breaker, 5 failures, the requests after the fifth skip the
faulty upstream and add about nothing). "Refused" is a port with nothing listening.

What the figures say: **no user-visible failure in any mode where a healthy fallback
exists and no text was sent yet**, on both paths. A stream that breaks after its
first text (`*_after_text`) ends with an error event (the user sees a failure, never a
silent truncation) unless the route or copilot has `continue_streams` and the
fallback can continue an assistant message (here the healthy upstream declared as a
vLLM host): then none fails. The added latency is the cost of each kind of failure:
one jittered retry (up to 0.25 s) for 5xx, refused, cut, malformed, empty and error
answers; nothing for 429 and 401 (no retry before a fallback) and blank answers (not
retried); the time limit for stalls (`first_byte_s` for streams, `total_s` for JSON,
which cannot tell a stall from a long answer) and for the slow upstream (answered by
that upstream itself, within the limits). The `*_after_text` modes apply to streams
(a JSON answer in those modes is whole). Differences of a few tens of ms are noise.
"""


def write_readme(readme: Path, text: str) -> None:
    current = readme.read_text()
    section = f"## Failover\n\n{PREAMBLE}\n{text}\n"
    pattern = re.compile(r"^## Failover\n.*?(?=^## |\Z)", re.S | re.M)
    updated = (
        pattern.sub(lambda _: section, current)
        if pattern.search(current)
        else (current.rstrip("\n") + "\n\n" + section)
    )
    readme.write_text(updated)


def main() -> None:
    # the fake's dropped connections and every failover are logged: not wanted here
    # (a filter, because uvicorn sets its loggers' levels when a server starts)
    logging.getLogger("uvicorn.error").addFilter(lambda record: record.exc_info is None)
    logging.getLogger("pilothouse").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20, help="requests per cell")
    parser.add_argument("--readme", type=Path, help="write the table into this README")
    parser.add_argument(
        "--breaker-threshold", type=int, default=1000, help="failures that open a breaker"
    )
    args = parser.parse_args()
    rigging.LIMITS.update(LIMITS)
    rigging.RETRY.clear()  # the route's default retries
    rigging.RETRY.update(RetrySettings().model_dump())
    cells: list[Cell] = []
    load_before = Path("/proc/loadavg").read_text().split()[0]
    with tempfile.TemporaryDirectory() as home:
        rows: list[tuple[str, bool]] = [(m, False) for m in MODES]
        rows += [(m, True) for m in AFTER_TEXT]
        for mode, continued in rows:
            with rigging.rig(Path(home), delay_s=0.5, stall_s=10.0) as r:
                r.faulty.mode = "ok" if mode == "refused" else mode
                for kind in ("json", "stream"):
                    if continued and kind == "json":
                        continue
                    for path in ("gateway", "python"):
                        cell = Cell(path, kind, mode, continued)
                        if path == "gateway":
                            run_gateway(r, cell, args.n, args.breaker_threshold)
                        else:
                            asyncio.run(run_python(r, cell, args.n, args.breaker_threshold))
                        cells.append(cell)
                        print(
                            f"{mode:>16} {'+cont' if continued else '':5} {kind:6} {path:7} "
                            f"{cell.failures}/{cell.requests} failed, p50 {cell.p50_ms():.0f} ms",
                            flush=True,
                        )
    load_after = Path("/proc/loadavg").read_text().split()[0]
    text = table(cells, f"{load_before} before, {load_after} after", args.n)
    text += f"Breakers open after {args.breaker_threshold} failures.\n"
    print(text)
    if args.readme:
        write_readme(args.readme, text)


if __name__ == "__main__":
    main()
