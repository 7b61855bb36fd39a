"""The Studio's Promotions view in a real browser, over a real server whose copilot has
a promotion policy and scripted models: a key that may only promote (and chat with) the
copilot sees the view; a bad candidate is refused in the form; a good one is started
from the form, followed live through offline, shadow and canary while traffic flows,
approved with the button, and its report and copilot.yaml change are shown."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pilothouse.config import Settings
from pilothouse.server.app import create_app
from pilothouse.server.keys import KeyStore
from pilothouse.studio import install_studio
from tests.pipeline.promotion.conftest import POLICY, model_factory, write_copilot

from .conftest import Running, running
from .test_studio_browser import SLOW, _sign_in

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

APPROVED = POLICY.replace("steps: [0.5, 0.75]", "steps: [0.5]") + "  approve_promote: true\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, str, Path]]:
    tmp = tmp_path_factory.mktemp("studio-promotions")
    settings = Settings.from_sources(home=tmp / "home", environ={})
    folder = write_copilot(tmp, policy=APPROVED)
    keys = KeyStore(settings.database_path)
    key, _ = keys.create("release-manager", ["promote:evaldesk", "chat:evaldesk"])
    app = create_app(
        settings,
        keys=keys,
        copilots=[folder],
        copilot_models={"evaldesk": model_factory("test:current")},
        model_factory=model_factory,
        promotion_poll_s=0.1,
    )
    install_studio(app)
    with running(app) as served:
        yield served, key, folder
    keys.close()


def _status(url: str, key: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    view: dict[str, Any] = httpx.get(
        f"{url}/api/promotions/evaldesk", headers=headers, timeout=30
    ).json()
    return view


def _traffic_until(url: str, key: str, status: str) -> None:
    """Users ask (each their own conversation) until the promotion reaches `status`."""
    headers = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + 180
    user = 0
    while _status(url, key)["status"] != status:
        assert time.monotonic() < deadline, _status(url, key)
        body = {
            "model": "evaldesk",
            "user": f"user-{user}",
            "messages": [{"role": "user", "content": f"Which VPN client do we use? ({user})"}],
        }
        answer = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=60)
        assert answer.status_code == 200, answer.text
        user += 1
        time.sleep(0.1)


def test_a_promotion_started_followed_and_approved_in_the_studio(
    browser: Any, server: tuple[Running, str, Path], shots: Path
) -> None:
    from playwright.sync_api import expect

    served, key, folder = server
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _sign_in(page, served.url, key)
    nav = page.get_by_role("navigation", name="Studio views")
    expect(nav.get_by_role("link", name="Traces")).to_have_count(0)  # admin only
    nav.get_by_role("link", name="Promotions").click()
    expect(page.get_by_text("No promotions yet.")).to_be_visible()

    # An unknown candidate is refused before anything starts.
    page.get_by_label("Copilot").fill("evaldesk")
    page.get_by_label("Candidate model").fill("test:nosuch")
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("alert")).to_contain_text("no such test model")
    page.screenshot(path=shots / "20-promotion-refused.png", full_page=True)

    page.get_by_label("Candidate model").fill("test:better")
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("heading", name="Promotion pr-")).to_be_visible(timeout=SLOW)
    stages = page.get_by_role("list", name="Stages")
    expect(stages.locator("[aria-current=step]")).to_have_text("shadow", timeout=SLOW)
    offline = page.locator("table.figures").first
    expect(offline).to_contain_text("no worse than current")
    expect(offline).to_contain_text("pass")
    page.screenshot(path=shots / "21-promotion-shadow.png", full_page=True)

    # Live traffic moves it through shadow and canary; it then waits for a person.
    _traffic_until(served.url, key, "awaiting_approval")
    expect(page.get_by_role("button", name="Approve: promote")).to_be_visible(timeout=SLOW)
    expect(page.get_by_role("heading", name="Shadow")).to_be_visible()
    canary = page.get_by_role("heading", name="Canary step 1: 50% of new conversations")
    expect(canary).to_be_visible()
    expect(page.get_by_role("list", name="Timeline")).to_contain_text("canary")
    page.screenshot(path=shots / "22-promotion-awaiting-approval.png", full_page=True)

    page.get_by_role("button", name="Approve: promote").click()
    expect(stages.locator("[aria-current=step]")).to_have_text("promote", timeout=SLOW)
    expect(page.get_by_text("promoted").first).to_be_visible()
    expect(page.locator("pre.code")).to_contain_text("primary: test:better")
    report = page.locator("div.report")
    expect(report).to_contain_text("Promotion", timeout=SLOW)
    expect(report).to_contain_text("test:better")
    page.screenshot(path=shots / "23-promotion-promoted.png", full_page=True)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the HTML report").click()
    assert download.value.suggested_filename.startswith("promotion-pr-")
    assert "primary: test:better" in (folder / "copilot.yaml").read_text()
    assert errors == []
