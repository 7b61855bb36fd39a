"""Profiles are data: matched by glob on the model's name at its host, with prices
that give costs."""

from __future__ import annotations

import pytest

from pilothouse.errors import ConfigError
from pilothouse.models.profiles import _profiles, check_overrides, profile_for
from pilothouse.types import Usage


def test_the_shipped_profiles_load() -> None:
    assert len(_profiles()) > 10


@pytest.mark.parametrize(
    ("model_id", "family", "native_tools"),
    [
        ("local:qwen2.5-coder-1.5b", "qwen", False),
        ("local:/models/any.gguf", "qwen", False),
        ("openai:gpt-4.1-mini", "gpt", True),
        ("azure:gpt-4o-mini", "gpt", True),
        ("anthropic:claude-sonnet-4-5", "claude", True),
        ("gemini:gemini-2.5-flash", "gemini", True),
        ("ollama:llama3.2", "llama", True),
        ("vllm:some/unknown", "generic", True),
        # the host never decides the family: "ollama" and "llamacpp" contain "llama"
        ("ollama:qwen2.5-coder:7b", "qwen", True),
        ("vllm:Qwen/Qwen2.5-Coder-7B-Instruct", "qwen", True),
        ("llamacpp:mistral-7b-instruct.gguf", "mistral", True),
        ("ollama:phi3", "generic", True),
        ("openrouter:anthropic/claude-sonnet-4", "claude", True),
        ("openrouter:google/gemini-2.5-flash", "gemini", True),
        ("azure:my-gpt-4.1-mini-deployment", "gpt", True),
        # small coder models have their tools emulated wherever they run
        ("ollama:qwen2.5-coder:1.5b", "qwen", False),
        ("vllm:Qwen/Qwen2.5-Coder-0.5B-Instruct", "qwen", False),
        ("llamacpp:qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "qwen", False),
    ],
)
def test_family_by_model_id(model_id: str, family: str, native_tools: bool) -> None:
    profile = profile_for(model_id)
    assert profile.family == family
    assert profile.native_tools is native_tools


def test_emulated_tools_offer_the_answer_first_except_on_the_0_5b() -> None:
    # measured per model: see profiles.toml and tests/models/local/test_real_model.py
    assert profile_for("local:qwen2.5-coder-1.5b").emulation_answer_first is True
    assert profile_for("local:qwen2.5-coder-0.5b").emulation_answer_first is False
    gguf = "local:/data/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    assert profile_for(gguf).emulation_answer_first is False
    assert profile_for("local:qwen2.5-coder-0.5b").native_tools is False


def test_more_specific_entries_win() -> None:
    assert profile_for("openai:gpt-4.1-mini").input_price == 0.40
    assert profile_for("openai:gpt-4.1").input_price == 2.00
    assert profile_for("openai:gpt-4o-mini-2024-07-18").input_price == 0.15


def test_cost_counts_cached_input_at_its_own_price() -> None:
    profile = profile_for("openai:gpt-4.1-mini")
    cost = profile.cost(
        Usage(input_tokens=1_000_000, output_tokens=1_000_000, cached_tokens=500_000)
    )
    assert cost == pytest.approx(0.5 * 0.40 + 0.5 * 0.10 + 1.60)


def test_unknown_prices_give_no_cost() -> None:
    assert profile_for("vllm:x").cost(Usage(10, 10)) is None
    assert profile_for("local:qwen2.5-coder-1.5b").cost(Usage(10, 10)) == 0.0


def test_the_same_model_has_the_same_profile_on_every_host() -> None:
    ollama = profile_for("ollama:qwen2.5-coder:0.5b")
    vllm = profile_for("vllm:Qwen/Qwen2.5-Coder-0.5B-Instruct")
    assert (ollama.family, ollama.native_tools, ollama.emulation_answer_first) == (
        vllm.family,
        vllm.native_tools,
        vllm.emulation_answer_first,
    )
    assert (
        profile_for("anthropic:claude-sonnet-4-5").input_price
        == profile_for("openrouter:anthropic/claude-sonnet-4-5").input_price
    )


def test_provider_scoped_entries_apply_only_to_their_host() -> None:
    assert profile_for("local:anything.gguf").native_tools is False
    assert profile_for("local:anything.gguf").context_window == 8192
    assert profile_for("vllm:anything.gguf").native_tools is True
    assert profile_for("anthropic:claude-next").default_max_tokens == 4096
    assert profile_for("anthropic:claude-next").context_window == 200000


def test_overrides_replace_fields_and_unknown_fields_are_refused() -> None:
    profile = profile_for("vllm:some/unknown", {"native_tools": False, "context_window": 4096})
    assert (profile.family, profile.native_tools, profile.context_window) == (
        "generic",
        False,
        4096,
    )
    with pytest.raises(ConfigError, match=r"\[providers.x\] profile: unknown profile fields natve"):
        check_overrides({"natve_tools": False}, "[providers.x] profile")
