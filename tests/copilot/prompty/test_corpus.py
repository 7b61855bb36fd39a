"""Every corpus file loads and renders to exactly the messages its .expected.json lists.

The corpus holds realistic Prompty files of each generation, written for these tests
after the shapes of the public examples in microsoft/promptflow (examples/prompty,
examples/flex-flows) and microsoft/prompty (runtime test prompts): chat history loops,
tool calls, JSON evaluators, vision, Mustache, structured output, threads, bindings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pilothouse.copilot.prompty import load_prompty

from .helpers import definition_json, message_json

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(CORPUS.glob("*.prompty"))


def test_corpus_has_several_files_of_each_generation() -> None:
    by_generation: dict[str, int] = {}
    for file in FILES:
        by_generation[file.name[0]] = by_generation.get(file.name[0], 0) + 1
    assert by_generation["a"] >= 3 and by_generation["b"] >= 3 and by_generation["c"] >= 3


def _expected(file: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(file.with_suffix(".expected.json").read_text("utf-8"))
    return data


def _compare_definition(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    for key, value in expected.items():
        if key == "tools":
            assert len(actual["tools"]) == len(value), "tool count"
            for want, got in zip(value, actual["tools"], strict=True):
                for tool_key, tool_value in want.items():
                    assert got[tool_key] == tool_value, f"tools.{want['name']}.{tool_key}"
        else:
            assert actual[key] == value, f"definition.{key}"


@pytest.mark.parametrize("file", FILES, ids=[f.name for f in FILES])
def test_corpus_file_renders_to_expected_messages(file: Path) -> None:
    expected = _expected(file)
    prompty = load_prompty(file, environ=expected.get("environ", {}), defer_connections=True)
    assert prompty.generation == file.name[0].upper()
    _compare_definition(expected["definition"], definition_json(prompty.definition))
    messages = prompty.render(expected["inputs"])
    assert [message_json(m) for m in messages] == expected["messages"]


@pytest.mark.parametrize("file", FILES, ids=[f.name for f in FILES])
def test_corpus_renders_are_stable_across_nonces(file: Path) -> None:
    """Each render uses a fresh nonce, and none of it leaks into the messages."""
    expected = _expected(file)
    prompty = load_prompty(file, environ=expected.get("environ", {}), defer_connections=True)
    first = prompty.render(expected["inputs"])
    second = prompty.render(expected["inputs"])
    assert first == second
    assert all("nonce" not in json.dumps(message_json(m)) for m in first)
