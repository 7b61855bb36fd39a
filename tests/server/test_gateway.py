"""Gateway mode: the routes file, failover before the first byte (5xx, 429, refused
connections, slow starts, error events), error events after it (never a silent
truncation), upstream 400s passed back, circuit breakers, and mixed chains."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from pilothouse.config import Settings
from pilothouse.errors import ConfigError
from pilothouse.models import FunctionModel
from pilothouse.server.app import create_app
from pilothouse.server.gateway.routes import load_routes
from pilothouse.testing.loopback import serve_app
from pilothouse.testing.ports import closed_port
from pilothouse.testing.wire import CutStream, Fail, MidStreamError, Reply, Stall
from tests.fakes.openai_api import FakeOpenAI, RawSSE
from tests.server.conftest import running

ASK = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def upstreams() -> Iterator[tuple[FakeOpenAI, FakeOpenAI, str, str]]:
    a, b = FakeOpenAI(), FakeOpenAI()
    with serve_app(a.app) as url_a, serve_app(b.app) as url_b:
        yield a, b, url_a, url_b


def gateway(tmp_path: Path, url_a: str, url_b: str, routes: dict[str, Any], **extra: Any) -> Any:
    settings = Settings.from_sources(home=tmp_path / "home", environ={"FAKE_KEY": "test-key"})
    spec = {
        "providers": {
            "a": {"preset": "openai", "base_url": url_a, "api_key_env": "FAKE_KEY"},
            "b": {"preset": "openai", "base_url": url_b, "api_key_env": "FAKE_KEY"},
            "down": {"preset": "openai", "base_url": f"http://127.0.0.1:{closed_port()}/v1"},
        },
        "defaults": {
            "retry": {"max_attempts": 1},
            "timeout": {"first_byte_s": 1.0, "total_s": 2.0},
        },
        "routes": routes,
        **extra,
    }
    return create_app(
        settings,
        no_auth=True,
        routes=spec,
        models={
            "test:backup": FunctionModel(lambda r: "from the backup model", model_id="test:backup")
        },
    )


@pytest.fixture
def chain(
    tmp_path: Path, upstreams: tuple[FakeOpenAI, FakeOpenAI, str, str]
) -> Iterator[tuple[str, FakeOpenAI, FakeOpenAI]]:
    a, b, url_a, url_b = upstreams
    app = gateway(
        tmp_path,
        url_a,
        url_b,
        {
            "gpt": {"targets": ["a:gpt-4.1-mini", "b:gpt-4.1"]},
            "refused-first": {"targets": ["down:x", "b:gpt-4.1"]},
            "to-backup": {"targets": ["a:gpt-4.1-mini", "test:backup"]},
        },
        breaker={"failure_threshold": 3, "recovery_s": 60},
    )
    with running(app) as (base, _):
        yield base, a, b


def sdk(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="none", max_retries=0)


FAILURES = [Fail(500), Fail(503), Fail(429, retry_after="0"), Stall(seconds=5)]
BREAKS = [CutStream("partial ", abrupt=True), CutStream("partial ", abrupt=False)]


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("stream", [False, True])
def test_failover_before_the_first_byte_is_invisible(
    chain: tuple[str, FakeOpenAI, FakeOpenAI], failure: Any, stream: bool
) -> None:
    base, a, b = chain
    a.push(failure)
    b.push(Reply("answer from b"))
    with httpx.Client(base_url=base, timeout=10) as http:
        reply = http.post("/v1/chat/completions", json={"model": "gpt", "stream": stream, **ASK})
    assert reply.status_code == 200
    assert reply.headers["x-pilothouse-model"] == "b:gpt-4.1"
    if stream:
        assert "answer from b" in "".join(
            json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
            for line in reply.text.splitlines()
            if line.startswith("data: {")
        )
        assert reply.text.rstrip().endswith("data: [DONE]")
    else:
        assert reply.json()["choices"][0]["message"]["content"] == "answer from b"
        assert reply.json()["model"] == "gpt-4.1"
    # a's fake may record its request after the gateway gave up on it (a slow start on
    # a busy machine): wait for it rather than race it
    deadline = time.monotonic() + 10
    while not a.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(a.requests) == 1 and len(b.requests) == 1


def test_refused_connection_fails_over(chain: tuple[str, FakeOpenAI, FakeOpenAI]) -> None:
    base, _, b = chain
    b.push(Reply("b answers"))
    with sdk(base) as client:
        reply = client.chat.completions.create(model="refused-first", **ASK)  # type: ignore[call-overload]
    assert reply.choices[0].message.content == "b answers"


def test_an_error_event_first_fails_over(chain: tuple[str, FakeOpenAI, FakeOpenAI]) -> None:
    base, a, b = chain
    a.push(RawSSE(('{"error": {"message": "overloaded", "type": "server_error"}}',)))
    b.push(Reply("fine"))
    with sdk(base) as client:
        chunks = list(client.chat.completions.create(model="gpt", stream=True, **ASK))  # type: ignore[call-overload]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "fine"


@pytest.mark.parametrize("broken", BREAKS)
def test_a_stream_that_breaks_after_content_ends_with_an_error_event(
    chain: tuple[str, FakeOpenAI, FakeOpenAI], broken: Any
) -> None:
    base, a, b = chain
    a.push(broken)
    with httpx.Client(base_url=base, timeout=10) as http:
        raw = http.post("/v1/chat/completions", json={"model": "gpt", "stream": True, **ASK})
    events = [line[6:] for line in raw.text.splitlines() if line.startswith("data: ")]
    assert raw.status_code == 200
    assert "[DONE]" not in events  # never passed off as complete
    error = json.loads(events[-1])["error"]
    assert error["code"] == "stream_interrupted" and "incomplete" in error["message"]
    shown = "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    assert shown == "partial "
    assert b.requests == []  # content was shown: no failover
    a.push(broken)
    with sdk(base) as client, pytest.raises(openai.APIError, match="incomplete"):
        for _ in client.chat.completions.create(model="gpt", stream=True, **ASK):  # type: ignore[call-overload]
            pass


def test_an_upstream_error_event_mid_stream_reaches_the_sdk(
    chain: tuple[str, FakeOpenAI, FakeOpenAI],
) -> None:
    base, a, _ = chain
    a.push(MidStreamError("so far", message="Overloaded"))
    with sdk(base) as client, pytest.raises(openai.APIError, match="Overloaded"):
        for _ in client.chat.completions.create(model="gpt", stream=True, **ASK):  # type: ignore[call-overload]
            pass


def test_an_upstream_400_is_passed_back_without_failover(
    chain: tuple[str, FakeOpenAI, FakeOpenAI],
) -> None:
    base, a, b = chain
    with sdk(base) as client, pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="gpt", temperature=7, **ASK)  # type: ignore[call-overload]
    assert "temperature" in bad.value.message
    assert b.requests == [] and len(a.requests) == 1


def test_every_target_failing_gives_one_clear_error(
    chain: tuple[str, FakeOpenAI, FakeOpenAI],
) -> None:
    base, a, b = chain
    a.push(Fail(500, "a is down"))
    b.push(Fail(502, "b is down"))
    with httpx.Client(base_url=base) as http:
        reply = http.post("/v1/chat/completions", json={"model": "gpt", **ASK})
    assert reply.status_code == 502
    error = reply.json()["error"]
    assert error["code"] == "upstream_failed" and error["type"] == "upstream_error"
    assert "a is down" in error["message"] and "b is down" in error["message"]
    a.push(Fail(429, retry_after="7"))
    b.push(Fail(429, retry_after="3"))
    with httpx.Client(base_url=base) as http:
        limited = http.post("/v1/chat/completions", json={"model": "gpt", **ASK})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"


def test_the_breaker_skips_a_failing_target(chain: tuple[str, FakeOpenAI, FakeOpenAI]) -> None:
    base, a, b = chain
    a.push(Fail(500), Fail(500), Fail(500))
    with sdk(base) as client:
        for _ in range(5):
            client.chat.completions.create(model="gpt", **ASK)  # type: ignore[call-overload]
    assert len(a.requests) == 3  # opened after 3 failures: later calls go straight to b
    assert len(b.requests) == 5


def test_a_chain_can_fall_back_to_a_non_openai_model(
    chain: tuple[str, FakeOpenAI, FakeOpenAI],
) -> None:
    base, a, _ = chain
    a.push(Fail(503), Fail(503))
    with sdk(base) as client:
        reply = client.chat.completions.create(model="to-backup", **ASK)  # type: ignore[call-overload]
        chunks = list(client.chat.completions.create(model="to-backup", stream=True, **ASK))  # type: ignore[call-overload]
    assert reply.choices[0].message.content == "from the backup model"
    assert reply.model == "test:backup"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "from the backup model"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_routes_file_errors_name_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text("routes:\n  x:\n    targets: [nocolon]\n")
    with pytest.raises(ConfigError, match=r"routes.yaml: routes.x.targets"):
        load_routes(path)
    path.write_text("routes: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_routes(path)
    path.write_text("providers:\n  p: {preset: openai, api_key: sk-123}\nroutes: {}\n")
    with pytest.raises(ConfigError, match="api_key_env") as secret:
        load_routes(path)
    assert "sk-123" not in str(secret.value)
    path.write_text("routes:\n  x:\n    targets: [a:b]\n    retry: {max_attempts: 0}\n")
    with pytest.raises(ConfigError, match="max_attempts"):
        load_routes(path)
    settings = Settings.from_sources(home=tmp_path / "h", environ={})
    with pytest.raises(ConfigError, match="unknown provider"):
        create_app(settings, no_auth=True, routes={"routes": {"x": {"targets": ["nope:m"]}}})


def test_clients_cannot_name_files_as_local_models(
    chain: tuple[str, FakeOpenAI, FakeOpenAI],
) -> None:
    base, _, _ = chain
    with httpx.Client(base_url=base) as http:
        for name in ("local:/etc/passwd", "local:../models/x.gguf", "local:nope"):
            reply = http.post("/v1/chat/completions", json={"model": name, **ASK})
            assert reply.status_code == 404, name
            assert reply.json()["error"]["code"] == "model_not_found"


def test_raw_model_chains_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pilothouse.server.gateway import gateway as gateway_module
    from pilothouse.server.gateway.gateway import Gateway
    from pilothouse.server.gateway.routes import RoutesFile

    monkeypatch.setattr(gateway_module, "MAX_CHAINS", 3)
    settings = Settings.from_sources(home=tmp_path / "h", environ={})
    gw = Gateway(settings, RoutesFile())
    for i in range(10):
        assert gw.resolve(f"openai:model-{i}") is not None
    assert len(gw._chains) == 3
    assert gw.resolve("gpt-4o") is None
