"""Messages round-trip through their plain-data form."""

from __future__ import annotations

import json

import pytest

from pilothouse.types import (
    ImagePart,
    Message,
    ToolCallPart,
    ToolResultPart,
    message_from_dict,
    message_to_dict,
    parse_tool_arguments,
)


def test_every_part_kind_round_trips_through_json() -> None:
    messages = [
        Message.system("Be brief."),
        Message.user("What is this?", ImagePart(data="aGk=", media_type="image/png")),
        Message.assistant("Let me look.", (ToolCallPart("c1", "lookup", {"q": "x"}),)),
        Message.assistant("", (ToolCallPart("c2", "broken", {}, raw_arguments="{oops"),)),
        Message.tool(ToolResultPart("c1", "lookup", "found", is_error=False)),
    ]
    for message in messages:
        assert message_from_dict(json.loads(json.dumps(message_to_dict(message)))) == message


def test_unknown_kinds_and_roles_are_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        message_from_dict({"role": "user", "parts": [{"kind": "video"}]})
    with pytest.raises(ValueError, match="role"):
        message_from_dict({"role": "wizard", "parts": []})


def test_tool_arguments_parsing_keeps_what_is_not_an_object() -> None:
    assert parse_tool_arguments('{"a": 1}') == ({"a": 1}, None)
    assert parse_tool_arguments("") == ({}, None)
    assert parse_tool_arguments("[1, 2]") == ({}, "[1, 2]")
    assert parse_tool_arguments("{bad") == ({}, "{bad")


def test_an_image_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError):
        ImagePart()
    with pytest.raises(ValueError):
        ImagePart(url="http://x", data="y")
    assert ImagePart(url="http://x/a.png").as_data_url() == "http://x/a.png"
    assert (
        ImagePart(data="eA==", media_type="image/jpeg").as_data_url()
        == "data:image/jpeg;base64,eA=="
    )
