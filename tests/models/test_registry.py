"""Model ids, provider entries and readiness."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.errors import ConfigError
from pilothouse.models.providers import resolve_endpoint
from pilothouse.models.readiness import readiness
from pilothouse.models.registry import split_model_id


def settings(tmp_path: Path, environ: dict[str, str] | None = None, **data: object) -> Settings:
    return Settings.from_sources(home=tmp_path, environ=environ or {}, file_data=data)


def test_model_ids_split_on_the_first_colon() -> None:
    assert split_model_id("openai:gpt-4.1-mini") == ("openai", "gpt-4.1-mini")
    assert split_model_id("local:/models/x:y.gguf") == ("local", "/models/x:y.gguf")
    assert split_model_id("ollama:llama3.2:3b") == ("ollama", "llama3.2:3b")


@pytest.mark.parametrize("bad", ["gpt-4", ":x", "openai:", ""])
def test_bad_model_ids_say_what_a_good_one_looks_like(bad: str) -> None:
    with pytest.raises(ConfigError, match="provider:model"):
        split_model_id(bad)


def test_unknown_provider_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"anthropic.*openai"):
        resolve_endpoint("nosuch", settings(tmp_path))


def test_a_custom_provider_inherits_a_preset(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        providers={"corp": {"preset": "openai", "base_url": "https://llm.corp.example/v1/"}},
    )
    endpoint = resolve_endpoint("corp", s)
    assert endpoint.protocol == "openai"
    assert endpoint.base_url == "https://llm.corp.example/v1"


def test_azure_takes_endpoint_and_version_from_the_environment(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        environ={
            "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com",
            "AZURE_OPENAI_API_KEY": "k",
            "OPENAI_API_VERSION": "2025-01-01",
        },
    )
    endpoint = resolve_endpoint("azure", s)
    assert endpoint.base_url == "https://res.openai.azure.com"
    assert endpoint.api_version == "2025-01-01"
    assert endpoint.auth_headers() == {"api-key": "k"}


def test_endpoint_repr_masks_the_key(tmp_path: Path) -> None:
    s = settings(tmp_path, environ={"OPENAI_API_KEY": "sk-hidden-42"})
    endpoint = resolve_endpoint("openai", s)
    assert "sk-hidden-42" not in repr(endpoint)
    assert endpoint.auth_headers() == {"Authorization": "Bearer sk-hidden-42"}


def test_cloud_readiness_depends_on_the_key(tmp_path: Path) -> None:
    assert not readiness("openai:gpt-4.1-mini", settings(tmp_path)).ready
    assert "OPENAI_API_KEY" in readiness("openai:gpt-4.1-mini", settings(tmp_path)).detail
    ready = readiness("openai:gpt-4.1-mini", settings(tmp_path, {"OPENAI_API_KEY": "x"}))
    assert ready.ready
    assert readiness("ollama:llama3.2", settings(tmp_path)).ready
