"""A raw model and a copilot read a Chat Completions body the same way: the same bad
message gets the same 400 (message and param) on both paths; what only a copilot
refuses (images, tool calls in its history) is a 400 naming the message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pilothouse.config import Settings
from pilothouse.models import FunctionModel
from pilothouse.server.app import create_app
from tests.server.conftest import COPILOT_NAME, running

RAW = "test:echo"


@pytest.fixture
def base(copilot_dir: Path, settings: Settings) -> Iterator[str]:
    app = create_app(
        settings,
        no_auth=True,
        copilots=[copilot_dir],
        copilot_models={COPILOT_NAME: [FunctionModel(lambda r: "ok", model_id=RAW)]},
        models={RAW: FunctionModel(lambda r: "pong", model_id=RAW)},
    )
    with running(app) as (url, _):
        yield url


def error_of(base: str, model: str, messages: list[Any]) -> tuple[int, dict[str, Any]]:
    with httpx.Client(base_url=base, timeout=30) as http:
        reply = http.post("/v1/chat/completions", json={"model": model, "messages": messages})
    return reply.status_code, reply.json().get("error", {})


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": 7}],
        [{"role": "user", "content": [{"type": "text", "text": 7}]}],
        [{"role": "user", "content": [{"type": "text"}]}],
        [{"role": "system", "content": {"a": 1}}, {"role": "user", "content": "hi"}],
        [{"role": "assistant", "content": 5}, {"role": "user", "content": "hi"}],
        [{"role": "user", "content": []}],
    ],
    ids=["number", "text-number", "text-missing", "system-object", "assistant-number", "empty"],
)
def test_the_same_bad_message_gets_the_same_error_on_both_paths(
    base: str, messages: list[Any]
) -> None:
    raw_status, raw = error_of(base, RAW, messages)
    copilot_status, copilot = error_of(base, COPILOT_NAME, messages)
    assert raw_status == copilot_status == 400
    assert (copilot["message"], copilot["param"]) == (raw["message"], raw["param"])


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "http://x/a.png"}}],
                }
            ],
            "messages[0].content",
        ),
        (
            [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "r"},
                {"role": "user", "content": "and?"},
            ],
            "messages[1]",
        ),
        ([{"role": "assistant", "content": "hi"}], "messages"),
    ],
    ids=["image", "tool-history", "last-not-user"],
)
def test_what_only_a_copilot_refuses_names_the_message(
    base: str, messages: list[Any], param: str
) -> None:
    assert error_of(base, RAW, messages)[0] == 200
    status, error = error_of(base, COPILOT_NAME, messages)
    assert status == 400 and error["param"] == param, error
