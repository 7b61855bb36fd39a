"""The Studio in a real browser, end to end, over a real server: sign in, create a
copilot from a template, an invalid edit shown at its field, upload documents (one good,
one corrupt, one unsupported), search, ask a question and see its citation, open the
cited passage and the run's trace, approve a tool call, compare two eval arms, the
empty promotions list (test_studio_promotions.py follows one); and an answer cut off
by the server going away mid-stream. Screenshots of every view are saved (see conftest.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pilothouse.config import Settings
from pilothouse.models import FunctionModel, tool_call
from pilothouse.models.testing import Turn
from pilothouse.pipeline.runner import EvalPlan, EvalRunner
from pilothouse.server.app import create_app
from pilothouse.server.keys import KeyStore
from pilothouse.storage.evals import EvalStore
from pilothouse.studio import install_studio
from pilothouse.types import ModelRequest
from tests.pipeline.conftest import bad_answer, good_answer, make_copilot

from .conftest import Running, running

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SLOW = 120_000  # ms: creating a copilot embeds its knowledge on a busy 2-core machine
WARRANTY = "# Warranty\n\nThe Skylark T2 warranty lasts 3 years from delivery.\n"
PASSAGE = re.compile(r"\[(\d+)\] \([^)]*\)\n(.*?)(?=\n\[\d+\] \(|\Z)", re.S)


def _question(request: ModelRequest) -> str:
    return next(m.text for m in reversed(request.messages) if m.role == "user")


def _cite(request: ModelRequest, word: str) -> int:
    """The number of the passage (as the model was shown them) that holds `word`."""
    for message in request.messages:
        for number, text in PASSAGE.findall(message.text):
            if word in text:
                return int(number)
    return 1


def faq_model(request: ModelRequest) -> Turn:
    """The new copilot's model: cites the warranty passage; starts a return (a tool that
    needs approval) and then reports it."""
    if request.messages[-1].role == "tool":
        return "The return is started: RMA-5001 is on its way to you."
    question = _question(request)
    if "SO-1001" in question:
        return tool_call("request_return", {"order_id": "SO-1001", "reason": "it is too loud"})
    return f"The T2 warranty lasts 3 years [{_cite(request, 'warranty')}]."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, str]]:
    tmp = tmp_path_factory.mktemp("studio")
    home = tmp / "home"
    home.mkdir()
    settings = Settings.from_sources(home=home, environ={})
    bodies = {"test:good": good_answer, "test:bad": bad_answer}
    with EvalStore.for_settings(settings) as store:
        runner = EvalRunner(
            settings,
            store,
            model_factory=lambda m: [FunctionModel(bodies[m], model_id=m)],  # type: ignore[arg-type]
        )
        plan = EvalPlan(folder=str(make_copilot(tmp)), models=("test:good", "test:bad"))
        with ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
            pool.submit(asyncio.run, runner.start(plan)).result()
    keys = KeyStore(settings.database_path)
    admin, _ = keys.create("studio-admin", ["admin"])
    slow = FunctionModel(
        lambda r: "This answer streams slowly, word by word, " * 40,
        model_id="test:slow",
        chunk_size=6,
        delay_s=0.05,
    )
    app = create_app(
        settings,
        keys=keys,
        models={"test:slow": slow},
        copilot_models={"faq": [FunctionModel(faq_model, model_id="test:faq-model")]},
        allow_code_upload=True,  # the starter template's sample tools are Python
    )
    install_studio(app)
    with running(app) as served:
        yield served, admin
    keys.close()


def _sign_in(page: Any, url: str, key: str) -> None:
    page.goto(f"{url}/studio/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Studio views").wait_for()


def test_the_whole_flow_in_a_browser(
    browser: Any, server: tuple[Running, str], shots: Path
) -> None:
    from playwright.sync_api import expect

    served, key = server
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{served.url}/studio/")
    page.get_by_label("API key").fill("ph-not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    page.screenshot(path=shots / "01-sign-in.png")
    _sign_in(page, served.url, key)
    assert "ph-" not in page.url  # the key never goes into a URL
    assert page.evaluate("sessionStorage.getItem('pilothouse.studio.key')") == key

    # A copilot from the template.
    page.get_by_role("link", name="Copilots").click()
    page.get_by_role("button", name="New copilot").click()
    page.get_by_label("Name").fill("faq")
    expect(page.get_by_label("Template")).to_have_value("starter")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="faq", level=1)).to_be_visible(timeout=SLOW)
    expect(page.get_by_label("Primary model")).to_be_visible()
    page.screenshot(path=shots / "02-copilot-editor.png", full_page=True)

    # An invalid edit: the server's problem is shown at the field; the text stays.
    page.get_by_label("Primary model").fill("gpt4")
    page.get_by_role("button", name="Save").click()
    problem = page.locator("#primary-problems")
    expect(problem).to_contain_text("model.primary", timeout=SLOW)
    expect(page.get_by_label("Primary model")).to_have_value("gpt4")
    page.screenshot(path=shots / "03-invalid-edit.png", full_page=True)
    page.get_by_label("Primary model").fill("")
    page.get_by_label("Passages per question (top_k)").fill("4")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved:")).to_be_visible(timeout=SLOW)

    # Knowledge: upload one good, one corrupt and one unsupported file.
    page.get_by_role("link", name="Its knowledge").click()
    expect(page.get_by_label("Knowledge base")).to_have_value("faq")
    page.get_by_label("Files (PDF").set_input_files(
        [
            {"name": "warranty.md", "mimeType": "text/markdown", "buffer": WARRANTY.encode()},
            {"name": "scan.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.7 cut short"},
            {"name": "setup.exe", "mimeType": "application/octet-stream", "buffer": b"MZ\x90"},
        ]
    )
    page.get_by_role("button", name="Upload").click()
    results = page.get_by_role("table", name="Upload results")
    expect(results).to_contain_text("added", timeout=SLOW)
    expect(results).to_contain_text("not a valid PDF")
    expect(results).to_contain_text("unsupported file type '.exe'")
    expect(page.get_by_role("cell", name="Warranty", exact=True)).to_be_visible()
    page.get_by_label("Question or keywords").fill("how long is the warranty")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator(".hits li").first).to_contain_text("score")
    page.screenshot(path=shots / "04-knowledge.png", full_page=True)
    page.get_by_role("row", name=re.compile("Warranty")).get_by_role(
        "button", name="Passages"
    ).click()
    expect(page.get_by_role("dialog")).to_contain_text("3 years")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)

    # The playground: a cited answer; the passage and the trace open from it.
    page.get_by_role("link", name="Playground").click()
    page.get_by_label("Ask").select_option("faq")
    page.get_by_label("Message").fill("How long is the warranty?")
    page.get_by_label("Message").press("Control+Enter")
    answer = page.locator("article.msg.assistant").last
    expect(answer).to_contain_text("3 years", timeout=SLOW)
    expect(answer.get_by_role("button", name=re.compile(r"\[\d\] Warranty"))).to_be_visible()
    page.screenshot(path=shots / "05-playground-citation.png")
    answer.locator("button.cite").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("The Skylark T2 warranty lasts 3 years")
    page.screenshot(path=shots / "06-cited-passage.png")
    dialog.get_by_role("button", name="Close").click()

    # A tool call that needs approval, approved in place.
    page.get_by_label("Message").fill("Please return order SO-1001, it is too loud")
    page.get_by_role("button", name="Send").click()
    pending = page.get_by_role("group", name="Tool calls waiting for approval")
    expect(pending).to_contain_text("request_return", timeout=SLOW)
    page.screenshot(path=shots / "07-approval.png")
    pending.get_by_role("button", name="Approve").click()
    expect(page.locator("article.msg.assistant").last).to_contain_text("RMA-5001", timeout=SLOW)
    expect(page.locator("article.msg.assistant").last.locator("details.tool")).to_contain_text(
        "request_return"
    )
    page.screenshot(path=shots / "08-approved.png")

    # The first answer's trace: the span tree with the model call's prompt.
    page.locator("article.msg.assistant").first.get_by_role("link", name="trace").click()
    expect(page.get_by_role("heading", name=re.compile("^Run"))).to_be_visible()
    expect(page.locator(".span-name").first).to_contain_text("faq")
    tree = page.locator(".tree.root")
    expect(tree).to_contain_text("retrieval")
    expect(tree).to_contain_text("chat test:faq-model")
    expect(tree).to_contain_text("Question: How long is the warranty?")  # the prompt
    expect(tree).to_contain_text(re.compile(r"\d+ → \d+ tokens"))
    page.screenshot(path=shots / "09-trace.png", full_page=True)

    # Evals: two arms compared, with the chart and the regressed cases.
    page.get_by_role("link", name="Evals").click()
    expect(page.get_by_role("heading", name=re.compile("Regressed cases"))).to_be_visible()
    expect(page.locator(".chart canvas")).to_be_visible()
    expect(page.locator("tr.worse").first).to_contain_text("pass")
    page.screenshot(path=shots / "10-evals.png", full_page=True)

    page.get_by_role("link", name="Promotions").click()
    expect(page.get_by_text("No promotions yet.")).to_be_visible()
    page.screenshot(path=shots / "11-promotions.png")
    assert errors == []


def test_an_answer_cut_off_by_the_server_keeps_the_text(
    browser: Any, server: tuple[Running, str], shots: Path
) -> None:
    from playwright.sync_api import expect

    served, key = server
    page = browser.new_page()
    _sign_in(page, served.url, key)
    page.get_by_role("link", name="Playground").click()
    page.get_by_label("Ask").select_option("test:slow")
    page.get_by_label("Message").fill("Tell me a long story")
    page.get_by_role("button", name="Send").click()
    answer = page.locator("article.msg.assistant").last
    expect(answer).to_contain_text("word by word", timeout=SLOW)
    assert served.drop_connections() >= 1
    expect(answer.get_by_role("alert")).to_contain_text("connection to the server was lost")
    expect(answer).to_contain_text("word by word")  # what arrived stays
    expect(page.get_by_label("Message")).to_have_value("Tell me a long story")
    page.screenshot(path=shots / "12-server-went-away.png")


def test_under_no_auth_on_loopback_without_signing_in(
    browser: Any, tmp_path: Path, shots: Path
) -> None:
    from playwright.sync_api import expect

    from pilothouse.models.testing import echo_last_user

    settings = Settings.from_sources(home=tmp_path, environ={})
    echo = FunctionModel(echo_last_user, model_id="test:echo")
    app = create_app(settings, no_auth=True, models={"test:echo": echo})
    install_studio(app)
    with running(app) as served:
        page = browser.new_page()
        page.goto(f"{served.url}/studio/#/playground")
        expect(page.get_by_text("--no-auth")).to_be_visible()  # no sign-in asked
        page.get_by_label("Ask").select_option("test:echo")
        page.get_by_label("Message").fill("echo this back")
        page.get_by_role("button", name="Send").click()  # a same-origin JSON POST
        expect(page.locator("article.msg.assistant").last).to_contain_text("echo this back")
        page.get_by_role("link", name="Knowledge").click()
        expect(page.get_by_text("Uploads are off under")).to_be_visible()
        page.screenshot(path=shots / "13-no-auth.png")
