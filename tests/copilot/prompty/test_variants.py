"""Per-model-family prompt variants: `instructions.claude.prompty` beside the base."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.copilot.prompty import load_prompty, variant_path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in (
        "instructions.prompty",
        "instructions.claude.prompty",
        "instructions.qwen.prompty",
    ):
        (tmp_path / name).write_text(f"---\nmodel: m\n---\n{name}\n", encoding="utf-8")
    return tmp_path


def test_family_variant_is_picked_when_it_exists(folder: Path) -> None:
    base = folder / "instructions.prompty"
    assert variant_path(base, "claude") == folder / "instructions.claude.prompty"
    assert variant_path(base, "qwen") == folder / "instructions.qwen.prompty"
    assert load_prompty(variant_path(base, "qwen")).render()[0].text == "instructions.qwen.prompty"


def test_base_is_used_when_there_is_no_variant_or_no_family(folder: Path) -> None:
    base = folder / "instructions.prompty"
    assert variant_path(base, "gpt") == base
    assert variant_path(base, None) == base
    assert variant_path(base, "") == base
    assert variant_path(str(base), "gemini") == base


def test_family_name_is_matched_case_insensitively(folder: Path) -> None:
    base = folder / "instructions.prompty"
    assert variant_path(base, "Claude") == folder / "instructions.claude.prompty"


def test_a_directory_named_like_a_variant_is_not_a_variant(folder: Path) -> None:
    (folder / "instructions.llama.prompty").mkdir()
    assert variant_path(folder / "instructions.prompty", "llama") == folder / "instructions.prompty"


@pytest.mark.parametrize("family", ["../claude", "claude/x", ".hidden", "a b", "qwen.prompty"])
def test_family_that_could_reach_another_path_is_refused(folder: Path, family: str) -> None:
    with pytest.raises(ValueError, match="model family"):
        variant_path(folder / "instructions.prompty", family)
