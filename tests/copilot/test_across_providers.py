"""One copilot folder, unchanged, on every cloud protocol (against the wire-format
fakes): the prompt variant for each model family is picked automatically, tools round
trip, and an approval-gated tool pauses and resumes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from pilothouse.config import ProviderSettings, Settings
from pilothouse.copilot import Copilot
from pilothouse.testing.loopback import serve_app
from pilothouse.testing.wire import Call, FakeVendor, Reply
from tests.fakes.anthropic_api import AnthropicFake
from tests.fakes.gemini_api import GeminiFake
from tests.fakes.openai_api import FakeOpenAI

PROVIDERS: dict[str, tuple[Callable[[], FakeVendor], str, str]] = {
    # provider: (fake, model id, the variant's first words)
    "openai": (FakeOpenAI, "openai:gpt-4.1-mini", "GPT, you are"),
    "anthropic": (AnthropicFake, "anthropic:claude-sonnet-4-5", "Claude, you are"),
    "gemini": (GeminiFake, "gemini:gemini-2.5-flash", "Gemini, you are"),
}


def system_text(provider: str, body: dict[str, Any]) -> str:
    if provider == "openai":
        return str(body["messages"][0]["content"])
    if provider == "anthropic":
        system = body["system"]
        return system if isinstance(system, str) else " ".join(b["text"] for b in system)
    return " ".join(p["text"] for p in body["systemInstruction"]["parts"])


def user_texts(provider: str, body: dict[str, Any]) -> str:
    if provider == "openai":
        return repr(body["messages"])
    return repr(body.get("messages") or body.get("contents"))


@pytest.fixture(params=sorted(PROVIDERS))
def provider(
    request: pytest.FixtureRequest, copilot_dir: Path, tmp_path: Path
) -> Iterator[tuple[str, Any, Settings, str]]:
    name = request.param
    make_fake, model_id, _ = PROVIDERS[name]
    prompts = copilot_dir / "prompts"
    for family, words in (("gpt", "GPT"), ("claude", "Claude"), ("gemini", "Gemini")):
        (prompts / f"instructions.{family}.prompty").write_text(
            f"---\nname: testdesk\n---\nsystem:\n{words}, you are the test helpdesk. Cite as [n].\n"
        )
    fake = make_fake()
    with serve_app(fake.app) as url:
        settings = Settings.from_sources(
            home=tmp_path / "home",
            environ={},
            file_data={
                "providers": {
                    name: ProviderSettings(base_url=url, api_key=SecretStr("test-key")).model_dump()
                }
            },
        )
        yield name, fake, settings, model_id


async def test_the_same_folder_answers_with_its_family_prompt_and_citations(
    provider: tuple[str, Any, Settings, str], copilot_dir: Path
) -> None:
    name, fake, settings, model_id = provider
    fake.push(Reply("Use WireGuard [1]."))
    copilot = await Copilot.open(copilot_dir, settings=settings, model=model_id)
    answer = await copilot.ask("Which VPN client do we use?")
    await copilot.aclose()
    assert answer.status == "completed", answer.error
    assert answer.text == "Use WireGuard [1]."
    assert answer.model == model_id
    assert answer.citations[0].source.endswith("vpn.md")
    body = fake.requests[-1]
    assert system_text(name, body).startswith(PROVIDERS[name][2])
    assert "WireGuard" in user_texts(name, body)  # the grounding passage was sent


async def test_tool_calls_and_approval_on_every_protocol(
    provider: tuple[str, Any, Settings, str], copilot_dir: Path
) -> None:
    _name, fake, settings, model_id = provider
    fake.push(
        Reply(tool_calls=(Call("call_1", "lookup", {"term": "laptop-7"}),)),
        Reply(tool_calls=(Call("call_2", "create_ticket", {"summary": "laptop-7 is broken"}),)),
        Reply("Ticket opened for laptop-7."),
    )
    copilot = await Copilot.open(copilot_dir, settings=settings, model=model_id)
    paused = await copilot.ask("laptop-7 is broken, look it up and open a ticket")
    assert paused.status == "awaiting_approval", paused.error
    assert paused.tool_calls[0].content.strip('"') == "laptop-7: asset found"
    call_id = paused.pending[0].call.id
    answer = await copilot.approve(paused.run_id, approve=[call_id])
    await copilot.aclose()
    assert answer.status == "completed", answer.error
    assert answer.text == "Ticket opened for laptop-7."
    assert "HD-" in answer.tool_calls[-1].content
    # the vendor received both tool results back in its own format
    assert "laptop-7: asset found" in repr(fake.requests[1])
    assert "HD-" in repr(fake.requests[2])
