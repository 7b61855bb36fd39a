"""The gateway follows the model's profile: a model without native tool calls gets
them emulated (no `tools` field upstream), where every other OpenAI-protocol target
is passed the body as it is."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from pilothouse.config import Settings
from pilothouse.server.app import create_app
from pilothouse.testing.loopback import serve_app
from pilothouse.testing.wire import Reply
from tests.fakes.openai_api import FakeOpenAI
from tests.server.conftest import running

LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a term up",
        "parameters": {
            "type": "object",
            "properties": {"term": {"type": "string"}},
            "required": ["term"],
        },
    },
}


def test_a_model_without_native_tools_gets_emulated_tool_calls(tmp_path: Path) -> None:
    upstream = FakeOpenAI(flavor="vllm")
    upstream.push(
        Reply(json.dumps({"tool_calls": [{"name": "lookup", "arguments": {"term": "vpn"}}]})),
        Reply("plain"),
    )
    with serve_app(upstream.app) as url:
        settings = Settings.from_sources(home=tmp_path / "home", environ={"K": "test-key"})
        providers = {
            "small": {"preset": "vllm", "base_url": url, "api_key_env": "K"},
            "big": {"preset": "vllm", "base_url": url, "api_key_env": "K"},
        }
        providers["small"]["profile"] = {"native_tools": False}
        app = create_app(settings, no_auth=True, routes={"providers": providers, "routes": {}})
        body = {"messages": [{"role": "user", "content": "vpn?"}], "tools": [LOOKUP]}
        with running(app) as (base, _):
            emulated = httpx.post(
                f"{base}/v1/chat/completions", json={"model": "small:tiny", **body}, timeout=30
            )
            native = httpx.post(
                f"{base}/v1/chat/completions", json={"model": "big:large", **body}, timeout=30
            )
    assert emulated.status_code == 200, emulated.text
    [call] = emulated.json()["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "lookup"
    assert json.loads(call["function"]["arguments"]) == {"term": "vpn"}
    first, second = upstream.requests
    assert "tools" not in first and first["response_format"]["type"] == "json_schema"
    assert native.status_code == 200 and second["tools"][0]["function"]["name"] == "lookup"
