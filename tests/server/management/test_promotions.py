"""Promotions in the management API, over a real server with scripted models: start
one (the offline stage runs on the server), follow it, abort it, read its report; each
route needs promote:<copilot>; bad input is refused before anything starts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pilothouse.config import Settings
from pilothouse.server.keys import KeyStore
from tests.pipeline.promotion.conftest import serve, write_copilot
from tests.server.conftest import make_key


@pytest.fixture
def keys(settings: Settings) -> Iterator[KeyStore]:
    store = KeyStore(settings.database_path)
    yield store
    store.close()


def call(base: str, key: str, method: str, path: str, **options: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.request(method, f"{base}{path}", headers=headers, timeout=60, **options)


def until(base: str, key: str, check: Any, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view: dict[str, Any] = call(base, key, "GET", "/api/promotions/evaldesk").json()
        if check(view):
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.1)


def test_a_promotion_through_the_api(settings: Settings, tmp_path: Path, keys: KeyStore) -> None:
    folder = write_copilot(tmp_path)
    promoter = make_key(keys, "promote:evaldesk", "chat:evaldesk")
    chat_only = make_key(keys, "chat:evaldesk")
    other = make_key(keys, "promote:finance")
    with serve(settings, folder, keys=keys) as (base, _):
        refused = call(
            base,
            chat_only,
            "POST",
            "/api/promotions",
            json={"copilot": "evaldesk", "to": "test:better"},
        )
        assert refused.status_code == 403 and "promote:evaldesk" in refused.text
        started = call(
            base,
            promoter,
            "POST",
            "/api/promotions",
            json={"copilot": "evaldesk", "to": "test:better"},
        )
        assert started.status_code == 202, started.text
        view = started.json()
        assert (view["stage"], view["status"], view["current"]) == (
            "offline",
            "running",
            "test:current",
        )
        assert view["started_by"].startswith("api:key_")
        twice = call(
            base,
            promoter,
            "POST",
            "/api/promotions",
            json={"copilot": "evaldesk", "to": "test:uncited"},
        )
        assert twice.status_code == 409 and twice.json()["error"]["code"] == "promotion_under_way"
        view = until(base, promoter, lambda v: v["stage"] == "shadow")
        assert view["eval_run"].startswith("ev-") and view["offline"]["chosen"]
        gate = view["offline"]["arms"][0]["gates"][0]
        assert gate["passed"] and gate["verdict"] == "no detectable difference"
        # a key that may promote another copilot learns nothing of this one's promotion:
        # the answer an unknown copilot or id gets (it was a 403, which told it exists)
        hidden = call(base, other, "GET", "/api/promotions/evaldesk")
        assert hidden.status_code == 404 and "has no promotion" in hidden.text
        by_id = call(base, other, "GET", f"/api/promotions/{view['promotion_id']}")
        assert by_id.status_code == 404 and "no promotion" in by_id.text
        assert call(base, other, "POST", "/api/promotions/evaldesk/abort").status_code == 404
        assert call(base, other, "GET", "/api/promotions").json() == {"promotions": []}
        listed = call(base, promoter, "GET", "/api/promotions").json()["promotions"]
        assert [p["promotion_id"] for p in listed] == [view["promotion_id"]]
        nothing = call(base, promoter, "POST", "/api/promotions/evaldesk/approve")
        assert (
            nothing.status_code == 409 and nothing.json()["error"]["code"] == "nothing_to_approve"
        )
        assert call(base, promoter, "GET", "/api/promotions/evaldesk/report").status_code == 404
        aborted = call(
            base, promoter, "POST", "/api/promotions/evaldesk/abort", json={"reason": "not now"}
        )
        assert aborted.status_code == 200, aborted.text
        assert aborted.json()["status"] == "rolled_back"
        assert aborted.json()["reason"].endswith(": not now")
        html = call(base, promoter, "GET", f"/api/promotions/{view['promotion_id']}/report")
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert "rolled back" in html.text
        markdown = call(
            base, promoter, "GET", "/api/promotions/evaldesk/report", params={"format": "md"}
        )
        assert markdown.text.startswith("# Promotion pr-")
        again = call(base, promoter, "POST", "/api/promotions/evaldesk/abort")
        assert again.status_code == 409 and again.json()["error"]["code"] == "promotion_over"


def test_bad_input_is_refused_before_anything_starts(
    settings: Settings, tmp_path: Path, keys: KeyStore
) -> None:
    folder = write_copilot(tmp_path)
    key = make_key(keys, "admin")
    with serve(settings, folder, keys=keys) as (base, _):
        unknown = call(
            base, key, "POST", "/api/promotions", json={"copilot": "evaldesk", "to": "test:nosuch"}
        )
        assert unknown.status_code == 400 and "no such test model" in unknown.text
        missing = call(
            base, key, "POST", "/api/promotions", json={"copilot": "nosuch", "to": "test:better"}
        )
        assert missing.status_code == 404
        bad_variant = call(
            base, key, "POST", "/api/promotions",
            json={"copilot": "evaldesk", "to": "test:better", "variant": "../outside.prompty"},
        )  # fmt: skip
        assert bad_variant.status_code == 400 and "inside the copilot folder" in bad_variant.text
        assert call(base, key, "GET", "/api/promotions").json() == {"promotions": []}
        yaml = folder / "copilot.yaml"
        yaml.write_text(yaml.read_text().replace("sample: 1.0", "sample: 1.5"))
        invalid = call(
            base, key, "POST", "/api/promotions", json={"copilot": "evaldesk", "to": "test:better"}
        )
    assert invalid.status_code == 422, invalid.text
    problem = invalid.json()["error"]["problems"][0]
    assert problem["file"].endswith("copilot.yaml") and problem["line"] > 1
    assert (
        problem["field"] == "promotion.shadow.thresholds.0.max" or "promotion" in problem["field"]
    )
