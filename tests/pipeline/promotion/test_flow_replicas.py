"""Promotions across replicas: two servers deciding the same stage at the same moment
(each with its own store on one database) move it once, and its timeline says so
once; a promotion ended in promote on another replica edits this replica's copy of
the copilot folder too."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import httpx

from pilothouse.config import Settings
from pilothouse.pipeline.promotion.controller import Promotions
from pilothouse.pipeline.promotion.flow import PromotionFlow
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


async def test_a_promotion_decided_on_another_replica_edits_this_replicas_copy(
    promotions: Promotions, folder: Path, settings: Settings
) -> None:
    """Replicas on several machines hold their own copy of the copilot folder (at the
    same path): a promotion another replica ended in promote writes copilot.yaml there,
    not here. This server applies the same edit to its copy when it sees the promotion
    end (its copy still holding the text from before), and serves the edited copilot."""
    record = await started(promotions, folder, "test:better")
    before = (folder / "copilot.yaml").read_text()
    elsewhere = tmp_copy(folder)
    with serve(settings, folder) as (base, _):
        wait_for(lambda: _primary(base) == "test:current")
        # the other replica: its own copy of the folder, the same promotion record
        promotions.flow.promote(replace(record, folder=str(elsewhere)), by="replica-2")
        final = promotions.store.get(record.promotion_id)
        assert (final.stage, final.status) == ("done", "promoted")
        assert (folder / "copilot.yaml").read_text() == before  # not here yet
        wait_for(lambda: _primary(base) == "test:better")
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
