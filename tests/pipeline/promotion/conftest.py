"""A copilot with a promotion policy, scripted current and candidate models (better,
worse offline, worse in shadow, worse in canary, failing, hanging), a scripted judge,
and a real server to send live traffic to."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pilothouse.config import Settings
from pilothouse.errors import UnavailableError
from pilothouse.models import FunctionModel
from pilothouse.models.base import Model
from pilothouse.models.profiles import ModelProfile
from pilothouse.models.testing import Turn
from pilothouse.pipeline.promotion.controller import Promotions
from pilothouse.server.app import create_app
from pilothouse.storage.evals import EvalStore
from pilothouse.storage.promotion_records import PromotionRecord
from pilothouse.storage.promotions import SqlitePromotionStore
from pilothouse.types import ModelRequest
from tests.pipeline.conftest import bad_answer, good_answer, make_copilot
from tests.server.conftest import running

POLICY = """\
model:
  primary: test:current
promotion:
  judge: test:judge
  on_breach: {on_breach}
  offline:
    gates:
      - {{metric: pass, tolerance: 0.0}}
  shadow:
    sample: 1.0
    min_requests: 3
    thresholds:
      - {{metric: error_rate, max: 0.0}}
      - {{metric: agreement, min: 0.8}}
  canary:
    steps: [0.5, 0.75]
    min_requests: 2
    guard_after: 1
    guards:
      - {{metric: error_rate, max: 0.0}}
      - {{metric: citations, tolerance: 0.0}}
"""
_MARKERS = re.compile(r"\s*\[\d+\]")


def uncited(request: ModelRequest) -> Turn:
    """The good answer about the VPN without its [n]: as correct (a matched source still
    passes the eval checks), but it cites nothing (the canary's citations guard)."""
    turn = good_answer(request)
    if isinstance(turn, str) and "WireGuard" in turn:
        return "The VPN client is WireGuard. Connect to vpn.testcorp.example on port 51820."
    return turn


def verbose(request: ModelRequest) -> Turn:
    """Passes every eval check, but says more than the current model (shadow's
    agreement threshold)."""
    turn = good_answer(request)
    if isinstance(turn, str) and "WireGuard" in turn:
        return turn + " It is also the client for the branch offices, and it updates itself."
    return turn


def failing(request: ModelRequest) -> Turn:
    return UnavailableError("the candidate's provider is down")


async def hanging(request: ModelRequest) -> Turn:
    await asyncio.sleep(3600)
    return "never"


def judge(request: ModelRequest) -> Turn:
    """Agreement: yes when both answers name the same VPN client and say nothing more
    than the current model's does (citation markers aside), else no; groundedness: yes."""
    text = request.messages[-1].text
    verdict = "yes"
    if "ANSWER B:" in text:
        a, b = (
            _MARKERS.sub("", t).strip() for t in text.split("ANSWER A:", 1)[1].split("ANSWER B:", 1)
        )
        same = a == b or ("WireGuard" in a and "WireGuard" in b and "branch" not in b)
        verdict = "yes" if same else "no"
    return json.dumps({"reason": "scripted", "verdict": verdict})


BODIES: dict[str, Callable[[ModelRequest], Any]] = {
    "test:current": good_answer,
    "test:better": good_answer,
    "test:worse": bad_answer,
    "test:uncited": uncited,
    "test:verbose": verbose,
    "test:failing": failing,
    "test:hanging": hanging,
    "test:judge": judge,
}
QWEN = ModelProfile(family="qwen", input_price=None)


def model_factory(model_id: str) -> list[Model]:
    body = BODIES.get(model_id)
    if body is None:
        raise UnavailableError(f"no such test model {model_id}")
    profile = QWEN if model_id == "test:better" else None
    return [FunctionModel(body, model_id=model_id, profile=profile)]


def write_copilot(tmp_path: Path, *, on_breach: str = "rollback", policy: str = POLICY) -> Path:
    folder = make_copilot(tmp_path)
    definition = folder / "copilot.yaml"
    definition.write_text(definition.read_text() + policy.format(on_breach=on_breach))
    return folder


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_copilot(tmp_path)


@pytest.fixture
def promotions(settings: Settings) -> Iterator[Promotions]:
    found = Promotions(
        settings,
        SqlitePromotionStore.for_settings(settings),
        EvalStore.for_settings(settings),
        model_factory=model_factory,
    )
    yield found
    found.store.close()
    found.evals.close()


async def started(promotions: Promotions, folder: Path, candidate: str) -> PromotionRecord:
    """A promotion through its offline stage."""
    plan = await promotions.prepare(folder, candidate)
    record = promotions.start(plan, started_by="test")
    return await promotions.run_offline(record)


def serve(
    settings: Settings, folder: Path, current: str = "test:current", *, keys: Any = None
) -> Any:
    """The copilot served on a real loopback server (no keys unless `keys` is a key
    store), its current model scripted."""
    app = create_app(
        settings,
        copilots=[folder],
        no_auth=keys is None,
        keys=keys,
        copilot_models={"evaldesk": model_factory(current)},
        model_factory=model_factory,
        promotion_poll_s=0.1,
        sync_knowledge=True,
    )
    return running(app)


def ask(base: str, question: str, **extension: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "evaldesk",
        "messages": [{"role": "user", "content": question}],
    }
    if extension:
        body["pilothouse"] = extension
    response = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def wait_for(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)
