"""Profiles drive behaviour whatever hosts the model: the prompt variant follows the
model's name, not its host, and a model whose profile says `native_tools = false` gets
emulated tool calls on an OpenAI-compatible server that refuses the `tools` field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.models.emulation import EmulatedToolsModel
from pilothouse.models.registry import create_model
from pilothouse.testing.loopback import serve_app
from pilothouse.testing.wire import Reply
from tests.fakes.openai_api import FakeOpenAI


class LocalServer(FakeOpenAI):
    """Ollama or vLLM on this machine: no key, the OpenAI wire format, and, with
    `refuse_tools` (vLLM started without a tool-call parser), a request that carries
    `tools` is refused."""

    def __init__(self, *, refuse_tools: bool = True) -> None:
        super().__init__(flavor="vllm")
        self.refuse_tools = refuse_tools

    async def _gate(self, request: Request) -> Response | None:
        await self.record(request)
        if self.refuse_tools and "tools" in self.requests[-1]:
            return self.json_response(
                {
                    "object": "error",
                    "message": '"auto" tool choice requires --enable-auto-tool-choice and '
                    "--tool-call-parser to be set",
                    "type": "BadRequestError",
                    "code": 400,
                },
                400,
            )
        return None


@pytest.fixture
def server() -> Iterator[tuple[LocalServer, str]]:
    fake = LocalServer()
    with serve_app(fake.app) as url:
        yield fake, url


def host_settings(tmp_path: Path, url: str, **profile: Any) -> Settings:
    providers: dict[str, Any] = {"ollama": {"base_url": url}, "vllm": {"base_url": url}}
    if profile:
        providers["vllm"]["profile"] = profile
    return Settings.from_sources(
        home=tmp_path / "home", environ={}, file_data={"providers": providers}
    )


@pytest.mark.parametrize(
    ("model_id", "opening"),
    [
        ("ollama:qwen2.5-coder:7b", "Qwen, you are"),
        ("vllm:Qwen/Qwen2.5-Coder-7B-Instruct", "Qwen, you are"),
        ("ollama:llama3.2", "Llama, you are"),
        ("ollama:phi3", "You are the test helpdesk"),
    ],
)
async def test_the_prompt_variant_follows_the_model_not_its_host(
    copilot_dir: Path, tmp_path: Path, model_id: str, opening: str
) -> None:
    fake = LocalServer(refuse_tools=False)
    for family, words in (("qwen", "Qwen"), ("llama", "Llama")):
        (copilot_dir / "prompts" / f"instructions.{family}.prompty").write_text(
            f"---\nname: testdesk\n---\nsystem:\n{words}, you are the test helpdesk.\n"
        )
    fake.push(Reply("Use WireGuard [1]."))
    with serve_app(fake.app) as url:
        copilot = await Copilot.open(
            copilot_dir, settings=host_settings(tmp_path, url), model=model_id
        )
        try:
            answer = await copilot.ask("Which VPN client do we use?")
        finally:
            await copilot.aclose()
    assert answer.status == "completed", answer.error
    assert fake.requests[-1]["messages"][0]["content"].startswith(opening)


def envelope(**content: Any) -> Reply:
    return Reply(json.dumps(content))


async def test_a_small_model_on_a_server_without_tool_calls_gets_emulated_tools(
    server: tuple[LocalServer, str], copilot_dir: Path, tmp_path: Path
) -> None:
    fake, url = server
    settings = host_settings(tmp_path, url)
    model = create_model("ollama:qwen2.5-coder:1.5b", settings)
    assert isinstance(model, EmulatedToolsModel)
    await model.aclose()
    fake.push(  # the stepped turn: a decision, the arguments, the answer
        envelope(decision="call:lookup"),
        envelope(term="laptop-7"),
        envelope(answer="laptop-7 is in the asset register."),
    )
    copilot = await Copilot.open(copilot_dir, settings=settings, model="ollama:qwen2.5-coder:1.5b")
    try:
        answer = await copilot.ask("Is laptop-7 registered?")
    finally:
        await copilot.aclose()
    assert answer.status == "completed", answer.error
    assert answer.text.startswith("laptop-7 is in the asset register.")
    assert [outcome.call.name for outcome in answer.tool_calls] == ["lookup"]
    assert answer.tool_calls[0].content.strip('"') == "laptop-7: asset found"
    for body in fake.requests[-3:]:
        assert "tools" not in body
        assert body["response_format"]["type"] == "json_schema"  # constrained decoding
    assert "laptop-7: asset found" in json.dumps(fake.requests[-1]["messages"])


async def test_a_model_with_native_tools_sends_them_and_this_host_refuses(
    server: tuple[LocalServer, str], copilot_dir: Path, tmp_path: Path
) -> None:
    _fake, url = server
    model = create_model("vllm:Qwen/Qwen2.5-Coder-7B-Instruct", host_settings(tmp_path, url))
    assert not isinstance(model, EmulatedToolsModel)
    await model.aclose()
    copilot = await Copilot.open(
        copilot_dir,
        settings=host_settings(tmp_path, url),
        model="vllm:Qwen/Qwen2.5-Coder-7B-Instruct",
    )
    try:
        answer = await copilot.ask("Is laptop-7 registered?")
    finally:
        await copilot.aclose()
    assert answer.status == "failed"
    assert "tool-call-parser" in str(answer.error)


async def test_a_host_can_say_its_models_have_no_native_tools(
    server: tuple[LocalServer, str], copilot_dir: Path, tmp_path: Path
) -> None:
    fake, url = server
    settings = host_settings(tmp_path, url, native_tools=False)
    # A question its passages answer: the stepped turn answers it without a decision.
    fake.push(envelope(sources=[1], answer="Use WireGuard [1]."))
    copilot = await Copilot.open(
        copilot_dir, settings=settings, model="vllm:Qwen/Qwen2.5-Coder-7B-Instruct"
    )
    try:
        answer = await copilot.ask("Which VPN client do we use?")
    finally:
        await copilot.aclose()
    assert answer.status == "completed", answer.error
    assert answer.text.startswith("Use WireGuard [1].")
    assert "tools" not in fake.requests[-1]
    assert fake.requests[-1]["response_format"]["type"] == "json_schema"


async def test_old_turns_are_left_out_to_fit_the_window_and_too_much_is_refused(
    copilot_dir: Path, tmp_path: Path
) -> None:
    fake = LocalServer(refuse_tools=False)
    model = "vllm:some/small-model"
    with serve_app(fake.app) as url:
        settings = host_settings(tmp_path, url, context_window=1400)
        copilot = await Copilot.open(copilot_dir, settings=settings, model=model)
        try:
            conversation = None
            for number in ("one", "two", "three"):
                fake.push(Reply(f"Answer {number}."))
                answer = await copilot.ask(
                    f"Question {number}: " + " ".join(["details"] * 250),
                    conversation_id=conversation,
                )
                assert answer.status == "completed", answer.error
                conversation = answer.conversation_id
        finally:
            await copilot.aclose()
        sent = json.dumps(fake.requests[-1]["messages"])
        assert fake.requests[-1]["messages"][0]["content"].startswith("You are the test helpdesk")
        assert "Question three" in sent and "Question two" in sent
        assert "Question one" not in sent and "Answer one." not in sent
        assert "Question one" in json.dumps(fake.requests[0]["messages"])

        before = len(fake.requests)
        copilot = await Copilot.open(copilot_dir, settings=settings, model=model)
        try:
            answer = await copilot.ask("Help: " + " ".join(["everything"] * 2000))
        finally:
            await copilot.aclose()
    assert answer.status == "failed"
    assert "context window of 1400 tokens" in str(answer.error)
    assert len(fake.requests) == before  # refused before anything was sent
