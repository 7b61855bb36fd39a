"""Profiles are data: matched by glob, with prices that give costs."""

from __future__ import annotations

import pytest

from pilothouse.models.profiles import _profiles, profile_for
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
