"""The failover matrix: every fault of the fake upstream (tests/fakes/faulty_upstream.py),
JSON and streaming, through the gateway and through the Python API, each with a healthy
fallback behind the faulty upstream. Counts the requests, the failures a user would see,
and the latency the failover added (median, against the same path with no fault).

Three chains (`--chains NAME=N,...`, N requests per cell):

- `two`: the faulty upstream, then a healthy one (the continuation rows too);
- `three`: two faulty upstreams in the same mode, then a healthy one;
- `local`: the faulty upstream, then the embedded model (the 0.5B weights assembled by
  `make test` under PILOTHOUSE_TEST_HOME, or `--gguf PATH`); its added latency is
  against the embedded model answering alone.

    python benchmarks/failover/run.py                    # two=20,three=10
    PILOTHOUSE_TEST_HOME=... python benchmarks/failover/run.py --chains two=20,three=10,local=3 \
        --readme benchmarks/README.md

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
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the fake upstream and the rig live in tests/

import httpx  # noqa: E402
from tests.failover import rig as rigging  # noqa: E402
from tests.fakes.faulty_upstream import (  # noqa: E402
    FAILS_AFTER_TEXT,
    FAILS_BEFORE_TEXT,
    FaultyUpstream,
)

from pilothouse.errors import ModelError  # noqa: E402
from pilothouse.models.breaker import BreakerBoard, BreakerPolicy  # noqa: E402
from pilothouse.models.compose import ResiliencePolicy, build_model  # noqa: E402
from pilothouse.models.timeout import TimeoutPolicy  # noqa: E402
from pilothouse.server.gateway.routes import RetrySettings  # noqa: E402
from pilothouse.testing.loopback import serve_app  # noqa: E402
from pilothouse.testing.ports import closed_port  # noqa: E402
from pilothouse.types import (  # noqa: E402
    Message,
    ModelRequest,
    StreamContinued,
    StreamEnd,
    StreamError,
)

LIMITS = {"connect_s": 1.0, "first_byte_s": 1.0, "idle_s": 1.0, "total_s": 3.0}
MODES = ["ok", "refused", *FAILS_BEFORE_TEXT, *FAILS_AFTER_TEXT]
AFTER_TEXT = FAILS_AFTER_TEXT
CHAINS = ("two", "three", "local")
ALONE = "alone"  # the local chain's baseline: the embedded model answering by itself
LOCAL_MAX_TOKENS = 16


@dataclass
class Chain:
    """A chain of targets, by the failing upstream's mode."""

    name: str
    n: int
    gguf: str = ""

    def ids(self, mode: str, continued: bool) -> list[str]:
        if mode == ALONE:
            return [self.local_id]
        first = "down:m" if mode == "refused" else "faulty:m"
        if self.name == "local":
            return [first, self.local_id]
        last = "continuing:m" if continued else "healthy:m"
        if self.name == "three":
            return [first, "down2:m" if mode == "refused" else "faulty2:m", last]
        return [first, last]

    @property
    def local_id(self) -> str:
        return f"local:{self.gguf}"

    def ask(self) -> dict[str, Any]:
        if self.name == "local":  # the embedded model's answer kept short
            return {**rigging.ASK, "max_tokens": LOCAL_MAX_TOKENS}
        return dict(rigging.ASK)

    def request(self) -> ModelRequest:
        content = rigging.ASK["messages"][0]["content"]
        limit = LOCAL_MAX_TOKENS if self.name == "local" else None
        return ModelRequest((Message.user(content),), max_output_tokens=limit)

    def rows(self) -> list[tuple[str, bool]]:
        if self.name == "local":
            return [(ALONE, False), *((m, False) for m in MODES if m != "ok")]
        rows = [(m, False) for m in MODES]
        if self.name == "two":
            rows += [(m, True) for m in AFTER_TEXT]
        return rows


@dataclass
class Cell:
    chain: str
    path: str
    kind: str
    mode: str
    continued: bool
    requests: int = 0
    failures: int = 0
    latencies: list[float] = field(default_factory=list)
    why: Counter[str] = field(default_factory=Counter)
    """What each failure the user saw was."""

    def p50_ms(self) -> float:
        return statistics.median(self.latencies or [0.0]) * 1000

    def count(self, started: float, failure: str | None) -> None:
        self.latencies.append(time.perf_counter() - started)
        self.requests += 1
        if failure is not None:
            self.failures += 1
            self.why[failure] += 1


def answer_ok(chain: Chain, r: rigging.Rig, text: str, continued: bool) -> bool:
    """What the user got is an answer: the healthy one (or the faulty upstream's own,
    when it was merely slow), or any text from the embedded model."""
    if chain.name == "local":
        return bool(text.strip())
    if text in (rigging.HEALTHY_TEXT, r.faulty.text):
        return True
    return continued and text.endswith(rigging.HEALTHY_TEXT)


def gateway_text(reply: httpx.Response, stream: bool) -> str | None:
    """The answer's text, or None when the user saw a failure."""
    if reply.status_code != 200:
        return None
    if not stream:
        content = reply.json()["choices"][0]["message"]["content"]
        return content if isinstance(content, str) else None
    payloads = rigging.sse_payloads(reply.text)
    if not payloads or payloads[-1] != "[DONE]":
        return None
    text = []
    for payload in payloads[:-1]:
        chunk = json.loads(payload)
        if "error" in chunk:
            return None
        for choice in chunk.get("choices") or ():
            text.append(choice["delta"].get("content") or "")
    return "".join(text)


def run_gateway(r: rigging.Rig, chain: Chain, cell: Cell, threshold: int) -> None:
    route = {"targets": chain.ids(cell.mode, cell.continued), "continue_streams": cell.continued}
    stream = cell.kind == "stream"
    breaker = {"failure_threshold": threshold, "recovery_s": 30}
    with (
        r.gateway({"chain": route}, breaker=breaker) as base,
        httpx.Client(base_url=base, timeout=60) as http,
    ):
        for _ in range(chain.n):
            started = time.perf_counter()
            failure: str | None = None
            try:
                body = {"model": "chain", "stream": stream, **chain.ask()}
                reply = http.post("/v1/chat/completions", json=body)
                text = gateway_text(reply, stream)
                if reply.status_code != 200:
                    failure = f"HTTP {reply.status_code}: {reply.text[:160]}"
                elif text is None:
                    failure = "a stream that ended with an error event or without [DONE]"
                elif not answer_ok(chain, r, text, cell.continued):
                    failure = f"the answer {text[:60]!r}"
            except httpx.HTTPError as error:
                failure = f"{type(error).__name__}: {error}"
            cell.count(started, failure)


async def run_python(r: rigging.Rig, chain: Chain, cell: Cell, threshold: int) -> None:
    policy = ResiliencePolicy(timeout=TimeoutPolicy(**LIMITS), continue_streams=cell.continued)
    board = BreakerBoard(BreakerPolicy(failure_threshold=threshold))
    ids = chain.ids(cell.mode, cell.continued)
    model = build_model(ids, r.settings(), policy=policy, board=board)
    request = chain.request()
    try:
        for _ in range(chain.n):
            started = time.perf_counter()
            failure = None
            try:
                if cell.kind == "stream":
                    continued = False
                    response = None
                    async for event in model.stream(request):
                        continued = continued or isinstance(event, StreamContinued)
                        if isinstance(event, StreamEnd):
                            response = event.response
                        elif isinstance(event, StreamError):
                            response = None
                    if response is None:
                        failure = "a stream that ended with an error event"
                    elif not answer_ok(chain, r, response.text, continued and cell.continued):
                        failure = f"the answer {response.text[:60]!r}"
                else:
                    response = await model.complete(request)
                    if not answer_ok(chain, r, response.text, False):
                        failure = f"the answer {response.text[:60]!r}"
            except ModelError as error:
                failure = f"{type(error).__name__}: {str(error)[:160]}"
            cell.count(started, failure)
    finally:
        await model.aclose()


def table(chain: Chain, cells: list[Cell]) -> str:
    mine = [c for c in cells if c.chain == chain.name]
    baseline = ALONE if chain.name == "local" else "ok"
    base = {(c.path, c.kind): c.p50_ms() for c in mine if c.mode == baseline}
    lines = [
        "| mode | JSON gateway | JSON Python | stream gateway | stream Python |",
        "|---|---:|---:|---:|---:|",
    ]
    by_key = {(c.mode, c.continued, c.kind, c.path): c for c in mine}
    for mode, continued in chain.rows():
        label = f"{mode} (continue_streams)" if continued else mode
        if mode == ALONE:
            label = "none: the embedded model alone (p50)"
        out = []
        for kind in ("json", "stream"):
            for path in ("gateway", "python"):
                cell = by_key.get((mode, continued, kind, path))
                if cell is None:
                    out.append("n/a")
                    continue
                if mode == ALONE:
                    out.append(f"{cell.failures}/{cell.requests} · {cell.p50_ms():.0f} ms")
                    continue
                added = cell.p50_ms() - base[(path, kind)]
                out.append(f"{cell.failures}/{cell.requests} · {round(added) + 0:+d} ms")
        lines.append(f"| {label} | " + " | ".join(out) + " |")
    total = sum(c.requests for c in mine)
    return "\n".join(lines) + f"\n\n{total} requests, {chain.n} per cell.\n"


TITLES = {
    "two": "Chain of two: the faulty upstream, then a healthy one",
    "three": "Chain of three: two faulty upstreams (the same fault), then a healthy one",
    "local": "The faulty upstream, then the embedded model (Qwen2.5-Coder 0.5B, {max} tokens)",
}

PREAMBLE = """\
Every fault of the fake upstream (`tests/fakes/faulty_upstream.py`), JSON and
streaming, through the gateway (a route) and through the Python API (`build_model`),
the faulty upstream first and a healthy fallback behind it, in three chains: two
upstreams, three (two faulty in the same mode, then the healthy one), and a faulty
upstream before the embedded model. `benchmarks/failover/run.py` (`--chains
two=N,three=N,local=N` sets the requests per cell, `--readme` writes this section).
Each cell is *failures the user saw / requests*, then the latency the failover added
(median, against the same path with no fault; for the embedded model, against that
model answering alone). Time limits are short so that a stall costs seconds (connect
1 s, first byte 1 s, idle 1 s, total 3 s); retries are the defaults (2 attempts; none
on a rate limit or a timeout when a fallback follows); breakers never open here, so
every request meets the fault and pays the whole failover (with the default breaker,
5 failures, the requests after the fifth skip the faulty upstream and add about
nothing). "Refused" is a port with nothing listening.

What the figures say: **no user-visible failure in any mode where a healthy fallback
exists and no text was sent yet**, on both paths and in every chain. A stream that
breaks after its first text (`*_after_text`) ends with an error event (the user sees a
failure, never a silent truncation) unless the route or copilot has
`continue_streams` and the fallback can continue an assistant message (here the
healthy upstream declared as a vLLM host): then none fails. The added latency is the
cost of each kind of failure: one jittered retry (up to 0.25 s) for 5xx, refused,
cut, malformed, empty and error answers; nothing for 429 and 401 (no retry before a
fallback) and blank answers (not retried); the time limit for stalls (`first_byte_s`
for streams, `total_s` for JSON, which cannot tell a stall from a long answer) and
for the slow upstream (answered by that upstream itself, within the limits). In the
chain of three each faulty upstream costs its own share. The `*_after_text` modes
apply to streams (a JSON answer in those modes is whole). Differences of a few tens of
ms are noise; the embedded model's own time varies by more than that on a busy machine.
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


@contextmanager
def upstreams(home: Path, chain: Chain) -> Iterator[tuple[rigging.Rig, list[FaultyUpstream]]]:
    """The rig and its faulty upstreams: a second one (and a second closed port) for
    the chain of three, the embedded model's settings for the local chain."""
    with ExitStack() as stack:
        r = stack.enter_context(rigging.rig(home, delay_s=0.5, stall_s=10.0))
        faulty = [r.faulty]
        if chain.name == "three":
            second = FaultyUpstream(name="faulty2", delay_s=0.5, stall_s=10.0)
            url = stack.enter_context(serve_app(second))
            r.extra_providers["faulty2"] = {"preset": "openai", "base_url": f"{url}/v1"}
            down = f"http://127.0.0.1:{closed_port()}/v1"
            r.extra_providers["down2"] = {"preset": "openai", "base_url": down}
            faulty.append(second)
        if chain.name == "local":
            r.extra_settings["local"] = {"context_size": 2048}
        yield r, faulty


def parse_chains(spec: str, gguf: str) -> list[Chain]:
    chains = []
    for item in spec.split(","):
        name, _, count = item.partition("=")
        if name not in CHAINS:
            raise SystemExit(f"--chains: {name!r} is not one of {', '.join(CHAINS)}")
        chains.append(Chain(name, int(count or 10), gguf))
    return chains


def local_weights(given: str | None) -> str:
    if given:
        return given
    from pilothouse.models.local.catalog import CATALOG, weights_path
    from pilothouse.models.local.weights import is_verified

    home = os.environ.get("PILOTHOUSE_TEST_HOME")
    spec = CATALOG["qwen2.5-coder-0.5b"]
    if not home or not is_verified(spec, Path(home) / "models"):
        raise SystemExit("the local chain needs --gguf PATH or PILOTHOUSE_TEST_HOME (make test)")
    return str(weights_path(spec, Path(home) / "models"))


def main() -> None:
    # the fake's dropped connections and every failover are logged: not wanted here
    # (a filter, because uvicorn sets its loggers' levels when a server starts)
    logging.getLogger("uvicorn.error").addFilter(lambda record: record.exc_info is None)
    logging.getLogger("pilothouse").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", default="two=20,three=10", help="chains and requests per cell")
    parser.add_argument("--gguf", help="the embedded model's weights for the local chain")
    parser.add_argument("--readme", type=Path, help="write the tables into this README")
    parser.add_argument(
        "--breaker-threshold", type=int, default=1000, help="failures that open a breaker"
    )
    args = parser.parse_args()
    wants_local = "local" in {item.partition("=")[0] for item in args.chains.split(",")}
    chains = parse_chains(args.chains, local_weights(args.gguf) if wants_local else "")
    rigging.LIMITS.update(LIMITS)
    rigging.RETRY.clear()  # the route's default retries
    rigging.RETRY.update(RetrySettings().model_dump())
    cells: list[Cell] = []
    load_before = Path("/proc/loadavg").read_text().split()[0]
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as home:
        for chain in chains:
            for mode, continued in chain.rows():
                with upstreams(Path(home), chain) as (r, faulty):
                    for upstream in faulty:
                        upstream.mode = "ok" if mode in ("refused", ALONE) else mode
                    for kind in ("json", "stream"):
                        if continued and kind == "json":
                            continue
                        for path in ("gateway", "python"):
                            cell = Cell(chain.name, path, kind, mode, continued)
                            if path == "gateway":
                                run_gateway(r, chain, cell, args.breaker_threshold)
                            else:
                                asyncio.run(run_python(r, chain, cell, args.breaker_threshold))
                            cells.append(cell)
                            print(
                                f"{chain.name:>5} {mode:>16} {'+cont' if continued else '':5} "
                                f"{kind:6} {path:7} {cell.failures}/{cell.requests} failed, "
                                f"p50 {cell.p50_ms():.0f} ms",
                                flush=True,
                            )
                            unexpected = mode not in AFTER_TEXT or continued
                            for why, times in cell.why.items() if unexpected else ():
                                print(f"      {times} x {why}", flush=True)
    load_after = Path("/proc/loadavg").read_text().split()[0]
    parts = []
    for chain in chains:
        title = TITLES[chain.name].format(max=LOCAL_MAX_TOKENS)
        parts.append(f"### {title}\n\n{table(chain, cells)}")
    total = sum(c.requests for c in cells)
    failures = sum(c.failures for c in cells)
    avoidable = sum(c.failures for c in cells if c.mode not in AFTER_TEXT or c.continued)
    text = "\n".join(parts) + (
        f"\n{total} requests in all, {failures} failures the user saw, {avoidable} of them "
        "where a healthy fallback existed and no text was sent (or the stream was to be "
        f"continued); {time.monotonic() - started:.0f} s, load average {load_before} before, "
        f"{load_after} after. Breakers open after {args.breaker_threshold} failures.\n"
    )
    print(text)
    if args.readme:
        write_readme(args.readme, text)


if __name__ == "__main__":
    main()
