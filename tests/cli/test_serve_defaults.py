"""`pilothouse serve` runs beside the local model servers a newcomer may have started:
its default port is none of theirs."""

from __future__ import annotations

from urllib.parse import urlsplit

from pilothouse.cli.serve import DEFAULT_PORT
from pilothouse.models.providers import PROVIDERS


def test_the_default_port_is_not_a_local_model_servers() -> None:
    local = [entry for name in PROVIDERS.names() if (entry := PROVIDERS.find(name)) is not None]
    ports = {
        urlsplit(e.base_url).port
        for e in local
        if urlsplit(e.base_url).hostname in ("127.0.0.1", "localhost")
    }
    assert {8000, 8080, 11434, 1234} <= ports  # vLLM, llama.cpp server, Ollama, LM Studio
    assert DEFAULT_PORT not in ports | {4000, 8321}  # nor LiteLLM's or Llama Stack's
