"""A fallback chain of two failing cloud models followed by the real embedded model:
the answer comes from the local model, streaming included (0.5B in CI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from pilothouse.config import ProviderSettings, Settings
from pilothouse.models.breaker import BreakerBoard
from pilothouse.models.compose import build_model
from pilothouse.testing.loopback import serve_app
from pilothouse.testing.ports import closed_port
from pilothouse.testing.wire import Fail
from pilothouse.types import Message, ModelRequest, StreamEnd, TextDelta
from tests.fakes.anthropic_api import AnthropicFake
from tests.fakes.openai_api import FakeOpenAI
from tests.real_model import real_weights

pytestmark = pytest.mark.real_model


@pytest.mark.parametrize(
    ("openai_failure", "anthropic_failure"),
    [("refused", Fail(503, "overloaded")), (Fail(503, "down"), Fail(429, "slow down", "600"))],
    ids=["refused-then-503", "503-then-429"],
)
async def test_two_failing_cloud_models_then_the_local_model_streams(
    tmp_path: Path, openai_failure: object, anthropic_failure: Fail
) -> None:
    gguf = real_weights()
    openai, anthropic = FakeOpenAI(), AnthropicFake()
    with serve_app(openai.app) as openai_url, serve_app(anthropic.app) as anthropic_url:
        if openai_failure == "refused":
            openai_url = f"http://127.0.0.1:{closed_port()}/v1"
        else:
            openai.push(*[openai_failure] * 3)  # every retry fails too
        anthropic.push(*[anthropic_failure] * 3)
        key = SecretStr("test-key")
        settings = Settings.from_sources(
            home=tmp_path,
            environ={},
            file_data={
                "providers": {
                    "openai": ProviderSettings(base_url=openai_url, api_key=key).model_dump(),
                    "anthropic": ProviderSettings(base_url=anthropic_url, api_key=key).model_dump(),
                },
                "local": {"context_size": 2048},
            },
        )
        chain = build_model(
            ["openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5", f"local:{gguf}"],
            settings,
            board=BreakerBoard(),
        )
        request = ModelRequest(
            (Message.user("What is the capital of France? Answer in one word."),),
            max_output_tokens=12,
            temperature=0.0,
        )
        events = [event async for event in chain.stream(request)]
        await chain.aclose()
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.response.model == f"local:{gguf}"
    assert "paris" in text.lower()
    assert len(anthropic.requests) >= 1  # it was tried and failed before the local model
