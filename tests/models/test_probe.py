"""Readiness that asks the server: server-backed models are ready only when their
server answers and serves them; answers are cached briefly per server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.models.probe import ReadinessProbe, is_server_backed
from pilothouse.testing.loopback import serve_app
from pilothouse.testing.ports import closed_port
from tests.models.fake_model_servers import (
    ModelServer,
    llamacpp_models,
    ollama_models,
    vllm_models,
)


def settings_for(tmp_path: Path, environ: dict[str, str] | None = None, **urls: str) -> Settings:
    providers = {name: {"base_url": url} for name, url in urls.items()}
    return Settings.from_sources(
        home=tmp_path / "home", file_data={"providers": providers}, environ=environ or {}
    )


@pytest.fixture
def ollama() -> Iterator[tuple[ModelServer, str]]:
    server = ModelServer(ollama_models("llama3.2:latest", "qwen2.5-coder:7b"))
    with serve_app(server.app) as url:
        yield server, f"{url}/v1"


async def test_no_server_means_not_ready_with_how_to_start_it(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    probe = ReadinessProbe(settings_for(tmp_path, ollama=url))
    state = await probe.check("ollama:llama3.2")
    assert not state.ready
    assert state.detail == (
        f"no server answers at {url} (connection refused): start it with `ollama serve`"
    )


async def test_a_server_that_answers_and_serves_the_model_is_ready(
    tmp_path: Path, ollama: tuple[ModelServer, str]
) -> None:
    server, url = ollama
    probe = ReadinessProbe(settings_for(tmp_path, ollama=url))
    states = await probe.check_many(["ollama:llama3.2", "ollama:qwen2.5-coder:7b", "ollama:phi4"])
    assert states["ollama:llama3.2"].ready  # Ollama lists pulled models with their tag
    assert states["ollama:qwen2.5-coder:7b"].ready
    assert states["ollama:llama3.2"].detail == f"served at {url}"
    missing = states["ollama:phi4"]
    assert not missing.ready
    assert missing.detail == (
        f"the server at {url} does not serve 'phi4' (it serves: llama3.2:latest, "
        "qwen2.5-coder:7b); `ollama pull phi4`"
    )
    assert len(server.requests) == 1  # one request for three models on one server


async def test_vllm_and_llamacpp_servers(tmp_path: Path) -> None:
    vllm = ModelServer(vllm_models("Qwen/Qwen2.5-7B-Instruct"), key="vk-1")
    llamacpp = ModelServer(llamacpp_models("/models/qwen2.5-0.5b-q8_0.gguf"))
    with serve_app(vllm.app) as v, serve_app(llamacpp.app) as ll:
        settings = settings_for(
            tmp_path, {"VLLM_API_KEY": "vk-1"}, vllm=f"{v}/v1", llamacpp=f"{ll}/v1"
        )
        states = await ReadinessProbe(settings).check_many(
            ["vllm:Qwen/Qwen2.5-7B-Instruct", "vllm:other", "llamacpp:any"]
        )
        wrong_key = await ReadinessProbe(
            settings_for(tmp_path, {"VLLM_API_KEY": "nope"}, vllm=f"{v}/v1")
        ).check("vllm:Qwen/Qwen2.5-7B-Instruct")
    assert states["vllm:Qwen/Qwen2.5-7B-Instruct"].ready
    assert vllm.requests[0]["authorization"] == "Bearer vk-1"
    other = states["vllm:other"]
    assert not other.ready and "does not serve 'other'" in other.detail
    # llama.cpp's server answers with its one model whatever name is asked for
    assert states["llamacpp:any"].ready
    assert not wrong_key.ready
    assert wrong_key.detail == f"the server at {v}/v1 is not usable: it refused the key (HTTP 401)"
    assert "nope" not in wrong_key.detail


async def test_a_server_without_a_model_list_is_ready_and_a_slow_one_is_not(
    tmp_path: Path,
) -> None:
    no_list = ModelServer([], listing=False)
    slow = ModelServer(ollama_models("llama3.2:latest"), delay_s=2)
    with serve_app(no_list.app) as a, serve_app(slow.app) as b:
        answered = await ReadinessProbe(settings_for(tmp_path, lmstudio=f"{a}/v1")).check(
            "lmstudio:qwen"
        )
        silent = await ReadinessProbe(
            settings_for(tmp_path, ollama=f"{b}/v1"), timeout_s=0.2
        ).check("ollama:llama3.2")
    assert answered.ready and answered.detail == f"server answers at {a}/v1"
    assert not silent.ready
    assert silent.detail == f"the server at {b}/v1 is not usable: no answer within 0.2 s"


async def test_answers_are_remembered_for_a_few_seconds(
    tmp_path: Path, ollama: tuple[ModelServer, str]
) -> None:
    server, url = ollama
    now = [1000.0]
    probe = ReadinessProbe(settings_for(tmp_path, ollama=url), ttl_s=10, clock=lambda: now[0])
    await probe.check("ollama:llama3.2")
    now[0] += 9
    await probe.check("ollama:llama3.2")
    assert len(server.requests) == 1
    now[0] += 2
    await probe.check("ollama:llama3.2")
    assert len(server.requests) == 2 and probe.requests == 2


async def test_what_is_asked_and_what_is_not(tmp_path: Path) -> None:
    proxy = ModelServer(ollama_models("gpt-4.1-mini"))
    with serve_app(proxy.app) as url:
        keyed = Settings.from_sources(home=tmp_path, environ={"OPENAI_API_KEY": "sk-test"})
        behind_proxy = Settings.from_sources(
            home=tmp_path, environ={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": f"{url}/v1"}
        )
        cloud = ReadinessProbe(keyed)
        assert (await cloud.check("openai:gpt-4.1-mini")).ready and cloud.requests == 0
        assert not is_server_backed("anthropic:claude-haiku-4-5", keyed)
        assert is_server_backed("openai:gpt-4.1-mini", behind_proxy)  # a changed base URL
        proxied = await ReadinessProbe(behind_proxy).check("openai:gpt-4.1-mini")
    assert proxied.ready and len(proxy.requests) == 1
    # without a key a cloud model is not ready, and nothing is asked
    bare = ReadinessProbe(Settings.from_sources(home=tmp_path, environ={}))
    assert (await bare.check("openai:gpt-4.1-mini")).detail == "no key: set OPENAI_API_KEY"
    bad = await bare.check("nosuchprovider:x")
    assert not bad.ready and "nosuchprovider" in bad.detail
    assert bare.requests == 0
