"""Promotions across replicas: two servers deciding the same stage at the same moment
(each with its own store on one database) move it once, and its timeline says so
once; a promotion ended in promote on another replica edits this replica's copy of
the copilot folder too."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from pilothouse.config import Settings
from pilothouse.pipeline.promotion import flow as flow_module
from pilothouse.pipeline.promotion.controller import Promotions
from pilothouse.pipeline.promotion.flow import PromotionFlow, follow_promoted
from pilothouse.pipeline.promotion.report import write_report
from pilothouse.server import promotions as server_promotions
from pilothouse.storage.promotion_records import PromotionRecord
from pilothouse.storage.promotions import SqlitePromotionStore
from pilothouse.testing.conformance.promotion_store import record
from tests.pipeline.promotion.conftest import serve, started, wait_for


def replicas(tmp_path: Path) -> tuple[PromotionFlow, PromotionFlow, SqlitePromotionStore]:
    settings = Settings.from_sources(home=tmp_path / "home", environ={})
    first = SqlitePromotionStore(tmp_path / "db.sqlite3")
    second = SqlitePromotionStore(tmp_path / "db.sqlite3")
    return PromotionFlow(first, settings), PromotionFlow(second, settings), first


def test_a_step_passed_on_two_replicas_is_passed_once(tmp_path: Path) -> None:
    first, second, store = replicas(tmp_path)
    store.create(record("pr-pass", stage="canary", step=0))
    seen = store.get("pr-pass")  # both read it before either decided
    moved = first.passed(seen, "canary step 1: 40 requests, no guard breached")
    late = second.passed(seen, "canary step 1: 41 requests, no guard breached")
    assert moved is not None and (moved.stage, moved.step) == ("canary", 1)
    assert late is None
    assert [(e.kind, e.step) for e in store.events("pr-pass")] == [("passed", 0), ("step", 1)]


def test_a_breach_seen_on_two_replicas_is_one_breach(tmp_path: Path) -> None:
    first, second, store = replicas(tmp_path)
    store.create(record("pr-hold", stage="shadow", policy={"on_breach": "hold"}))
    seen = store.get("pr-hold")
    held = first.breach(seen, "shadow: error rate 0.4 > 0.1")
    late = second.breach(seen, "shadow: error rate 0.5 > 0.1")
    assert held is not None and held.status == "held" and late is None
    assert [e.kind for e in store.events("pr-hold")] == ["breach", "held"]
    assert store.get("pr-hold").reason == "shadow: error rate 0.4 > 0.1"


@pytest.mark.parametrize("report_s", [0.0, 0.5], ids=["idle", "slow-report"])
async def test_a_promotion_decided_on_another_replica_edits_this_replicas_copy(
    promotions: Promotions,
    folder: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    report_s: float,
) -> None:
    """Replicas on several machines hold their own copy of the copilot folder (at the
    same path): a promotion another replica ended in promote writes copilot.yaml there,
    not here. This server applies the same edit to its copy when it sees the promotion
    end (its copy still holding the text from before), and serves the edited copilot.
    slow-report: the other replica's report takes 0.5 s, as on a busy machine; this
    server sees the promotion end before `promote` returns (it polls every 0.1 s), so
    what proves the edit is this server's is its own call, not the file's timing."""
    record = await started(promotions, folder, "test:better")
    before = (folder / "copilot.yaml").read_text()
    elsewhere = tmp_copy(folder)

    def writing(*args: Any, **kwargs: Any) -> Any:
        time.sleep(report_s)
        return write_report(*args, **kwargs)

    edits: list[tuple[str, bool, bool]] = []  # this server's: where, held `before`, wrote

    def following(final: PromotionRecord) -> bool:
        held = (Path(final.folder) / "copilot.yaml").read_text() == before
        written = follow_promoted(final)
        edits.append((final.folder, held, written))
        return written

    monkeypatch.setattr(flow_module, "write_report", writing)
    monkeypatch.setattr(server_promotions, "follow_promoted", following)
    with serve(settings, folder) as (base, _):
        wait_for(lambda: _primary(base) == "test:current")
        # the other replica: its own copy of the folder, the same promotion record
        promotions.flow.promote(replace(record, folder=str(elsewhere)), by="replica-2")
        final = promotions.store.get(record.promotion_id)
        assert (final.stage, final.status) == ("done", "promoted")
        assert (elsewhere / "copilot.yaml").read_text() == final.previous["promoted_yaml"]
        wait_for(lambda: _primary(base) == "test:better")
    assert edits == [(record.folder, True, True)]  # here by this server, not the other
    assert (folder / "copilot.yaml").read_text() == final.previous["promoted_yaml"]
    assert "primary: test:better\n" in final.previous["promoted_yaml"]


def tmp_copy(folder: Path) -> Path:
    copy = folder.parent / f"{folder.name}-replica-2"
    shutil.copytree(folder, copy)
    return copy


def _primary(base: str) -> str | None:
    reply = httpx.get(f"{base}/api/copilots/evaldesk", timeout=30)
    if reply.status_code != 200:
        return None
    primary: str | None = reply.json()["definition"]["model"]["primary"]
    return primary
