"""With no copilot: the embedded local model (0.5B in CI) answers the official openai
SDK through the gateway, in JSON and streaming."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from pilothouse.config import Settings
from pilothouse.server.app import create_app
from tests.real_model import real_weights
from tests.server.conftest import running

pytestmark = pytest.mark.real_model


def test_the_embedded_model_answers_the_sdk(tmp_path: Path) -> None:
    gguf = real_weights()
    settings = Settings.from_sources(home=tmp_path / "home", environ={})
    model = "small"  # a route: clients cannot name a file, a routes file may
    routes = {"routes": {"small": {"targets": [f"local:{gguf}"]}}}
    question = [{"role": "user", "content": "What is the capital of France? One word."}]
    with (
        running(create_app(settings, no_auth=True, routes=routes)) as (base, _),
        openai.OpenAI(base_url=f"{base}/v1", api_key="none", max_retries=0) as client,
    ):
        reply = client.chat.completions.create(model=model, messages=question, max_tokens=20)  # type: ignore[arg-type]
        chunks = list(
            client.chat.completions.create(
                model=model,
                messages=question,  # type: ignore[arg-type]
                max_tokens=20,
                stream=True,
            )
        )
    assert "paris" in (reply.choices[0].message.content or "").lower()
    assert reply.model.startswith("local:")
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "paris" in streamed.lower()
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
