"""Does shadow traffic delay the user's answer? The user-visible latency of one copilot
with shadow off, and with every request mirrored to a candidate that answers (slowly),
hangs, or fails; measured side by side in one run.

Four real servers (the same app `pilothouse serve` builds, each with its own data
directory) serve the same test copilot; its current model is a test double that
streams its answer in about 60 ms. In three of them a promotion is put straight into
shadow with `sample: 1.0` and a policy that never decides (so the mirroring goes on
for the whole run): the candidate answers in about 0.6 s, hangs (until the copilot's
5 s run limit), or fails at once. One client sends the same question to the four
servers in turn, round after round (the order rotates each round), and times each
answer from the request to its last byte; round i of every server is one pair.

    python benchmarks/promotion/shadow_latency.py --rounds 200 --out shadow.json

Reports per server the median, p90 and mean latency, and for each shadow server the
paired difference of the means against shadow off (B - A, bootstrap 95% interval,
verdict), with the requests mirrored and skipped (a full mirror queue skips).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx
from tests.pipeline.conftest import good_answer, make_copilot

from pilothouse.config import Settings
from pilothouse.errors import UnavailableError
from pilothouse.models import FunctionModel
from pilothouse.models.base import Model
from pilothouse.models.testing import Turn
from pilothouse.pipeline.promotion.controller import Promotions
from pilothouse.pipeline.stats import paired
from pilothouse.server.app import create_app
from pilothouse.storage.evals import EvalStore
from pilothouse.storage.promotions import SqlitePromotionStore
from pilothouse.testing.loopback import running_server
from pilothouse.types import ModelRequest

QUESTION = "Which VPN client do we use?"
POLICY = """\
model:
  primary: bench:current
promotion:
  judge: none
  shadow:
    sample: 1.0
    min_requests: 1000000
    thresholds:
      - {metric: error_rate, max: 1.0}
"""


async def _hang(request: ModelRequest) -> Turn:
    await asyncio.sleep(3600)
    return "never"


def _fail(request: ModelRequest) -> Turn:
    return UnavailableError("the candidate's provider is down")


def _model(model_id: str) -> list[Model]:
    if model_id == "bench:current":  # ~60 ms: 5 chunks of 16 characters, 12 ms apart
        return [FunctionModel(good_answer, model_id=model_id, chunk_size=16, delay_s=0.012)]
    if model_id == "bench:slow":  # ~0.6 s
        return [FunctionModel(good_answer, model_id=model_id, chunk_size=16, delay_s=0.12)]
    if model_id == "bench:hanging":
        return [FunctionModel(_hang, model_id=model_id)]
    if model_id == "bench:failing":
        return [FunctionModel(_fail, model_id=model_id)]
    raise UnavailableError(f"no such benchmark model {model_id}")


def _copilot(root: Path) -> Path:
    folder = make_copilot(root)
    definition = folder / "copilot.yaml"
    text = definition.read_text().replace(
        "limits: {max_tool_steps: 2, max_output_tokens: 100}",
        "limits: {max_tool_steps: 2, max_output_tokens: 100, timeout_s: 5}",
    )
    definition.write_text(text + POLICY)
    return folder


async def _into_shadow(settings: Settings, folder: Path, candidate: str) -> str:
    promotions = Promotions(
        settings,
        SqlitePromotionStore.for_settings(settings),
        EvalStore.for_settings(settings),
        model_factory=_model,
    )
    try:
        record = promotions.start(await promotions.prepare(folder, candidate), started_by="bench")
        moved = promotions.flow.enter(record, "shadow", 0, "the benchmark skips offline")
        assert moved is not None
        return moved.promotion_id
    finally:
        promotions.store.close()
        promotions.evals.close()


@contextmanager
def _server(
    root: Path, candidate: str | None
) -> Iterator[tuple[str, Callable[[], dict[str, int]]]]:
    """A served copilot (in shadow towards `candidate`, when given): its URL, and a
    function that counts what the promotion mirrored."""
    root.mkdir(parents=True)
    settings = Settings.from_sources(home=root / "home", environ={})
    folder = _copilot(root)
    promotion = asyncio.run(_into_shadow(settings, folder, candidate)) if candidate else None
    app = create_app(
        settings,
        copilots=[folder],
        no_auth=True,
        copilot_models={"evaldesk": _model("bench:current")},
        model_factory=_model,
        promotion_poll_s=0.2,
    )

    def counts() -> dict[str, int]:
        if promotion is None or app.context.promotions is None:
            return {}
        live = app.context.promotions._live.get("evaldesk")
        store = SqlitePromotionStore.for_settings(settings)
        try:
            samples = store.samples(promotion, "shadow")
            return {
                "mirrored_scored": sum(1 for s in samples if s.arm == "candidate"),
                "skipped": live.skipped if live is not None else -1,
            }
        finally:
            store.close()

    with running_server(app, lifespan="on", start_timeout_s=120) as (url, _):
        yield url, counts


def _ask(client: httpx.Client, url: str, user: int) -> float:
    body = {
        "model": "evaldesk",
        "user": f"user-{user}",
        "messages": [{"role": "user", "content": QUESTION}],
    }
    started = time.perf_counter()
    response = client.post(f"{url}/v1/chat/completions", json=body)
    took = time.perf_counter() - started
    if response.status_code != 200 or "WireGuard" not in response.text:
        raise RuntimeError(f"{url}: unexpected answer {response.status_code}: {response.text}")
    return took


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": 1000 * statistics.median(ordered),
        "p90_ms": 1000 * ordered[int(0.9 * (len(ordered) - 1))],
        "mean_ms": 1000 * statistics.fmean(ordered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10, help="rounds not measured")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    configs = {"off": None, "slow": "bench:slow", "hanging": "bench:hanging"}
    configs["failing"] = "bench:failing"
    latencies: dict[str, list[float]] = {name: [] for name in configs}
    with tempfile.TemporaryDirectory(prefix="ph-shadow-") as tmp, ExitStack() as stack:
        servers = {
            name: stack.enter_context(_server(Path(tmp) / name, candidate))
            for name, candidate in configs.items()
        }
        names = list(servers)
        with httpx.Client(timeout=60) as client:
            for round_ in range(args.warmup + args.rounds):
                shift = round_ % len(names)
                for name in names[shift:] + names[:shift]:
                    took = _ask(client, servers[name][0], round_)
                    if round_ >= args.warmup:
                        latencies[name].append(took)
        counts = {name: servers[name][1]() for name in names}
    report: dict[str, Any] = {"rounds": args.rounds, "servers": {}}
    for name in names:
        entry: dict[str, Any] = {**_summary(latencies[name]), **counts[name]}
        if name != "off":
            compared = paired(latencies["off"], latencies[name], higher_is_better=False)
            assert compared is not None
            entry["delta_mean_ms"] = 1000 * compared.delta.mean
            entry["delta_ci_ms"] = [1000 * compared.delta.low, 1000 * compared.delta.high]
            entry["verdict"] = compared.verdict
        report["servers"][name] = entry
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
