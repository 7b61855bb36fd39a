"""Two servers deciding the same stage at the same moment (replicas on one database,
each with its own store): the promotion moves once, and its timeline says so once."""

from __future__ import annotations

from pathlib import Path

from pilothouse.config import Settings
from pilothouse.pipeline.promotion.flow import PromotionFlow
from pilothouse.storage.promotions import SqlitePromotionStore
from pilothouse.testing.conformance.promotion_store import record


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
