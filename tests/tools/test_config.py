"""The `tools:` configuration format: entry kinds, ${env:NAME} secrets, options."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from pilothouse.config import Settings
from pilothouse.tools.config import OpenAPIEntry, PythonEntry
from pilothouse.tools.errors import ToolConfigError
from pilothouse.tools.loader import load_tools
from pilothouse.tools.sources import parse_entry

PETSTORE = str(Path(__file__).parent / "data" / "openapi" / "petstore-3.0.yaml")


def test_entry_kinds_and_shorthands() -> None:
    assert isinstance(parse_entry("https://x.example/openapi.json", 0, {}, "c"), OpenAPIEntry)
    python = parse_entry("mypkg.tools:lookup", 1, {}, "c")
    assert isinstance(python, PythonEntry) and python.location() == (
        "mypkg.tools",
        None,
        ["lookup"],
    )
    with pytest.raises(ToolConfigError, match=r"c: tools\[2\]: an entry needs exactly one of"):
        parse_entry({"openapi": "a", "mcp": "b"}, 2, {}, "c")
    with pytest.raises(ToolConfigError, match=r"tools\[3\] \(connector\): connector"):
        parse_entry({"connector": "salesforce", "base_url": "https://x"}, 3, {}, "c")
    with pytest.raises(ToolConfigError, match="colour: Extra inputs are not permitted"):
        parse_entry({"openapi": "a", "colour": "red"}, 4, {}, "c")


def test_secrets_come_only_from_the_environment() -> None:
    entry = parse_entry(
        {"openapi": "a", "auth": {"type": "bearer", "token": "${env:TOK}"}}, 0, {"TOK": "t-1"}, "c"
    )
    assert isinstance(entry, OpenAPIEntry)
    assert entry.auth is not None and entry.auth.token.get_secret_value() == "t-1"  # type: ignore[union-attr]
    assert "t-1" not in repr(entry)
    with pytest.raises(ToolConfigError, match="literal secret") as info:
        parse_entry({"openapi": "a", "auth": {"type": "bearer", "token": "t-1"}}, 0, {}, "c")
    assert "t-1" not in str(info.value)
    with pytest.raises(ToolConfigError, match="MISSING, which is not set"):
        parse_entry(
            {"openapi": "a", "auth": {"type": "bearer", "token": "${env:MISSING}"}}, 0, {}, "c"
        )
    with pytest.raises(ToolConfigError, match="literal secret"):
        parse_entry(
            {"mcp": "https://m.example/mcp", "headers": {"Authorization": "Bearer x"}}, 0, {}, "c"
        )
    # non-secret fields may use references too; bindings from the environment stay secret
    entry = parse_entry(
        {"openapi": "${env:DOC}", "bindings": {"tenant": "${env:TENANT}", "region": "eu"}},
        0,
        {"DOC": "https://d.example/o.json", "TENANT": "acme"},
        "c",
    )
    assert entry.openapi == "https://d.example/o.json"  # type: ignore[union-attr]
    assert isinstance(entry.bindings["tenant"], SecretStr) and entry.bindings["region"] == "eu"


async def test_only_prefix_approval_and_bindings(tmp_path: Path) -> None:
    entry = {
        "openapi": PETSTORE,
        "base_url": "https://petstore.example/v3",
        "only": ["getPetById", "deletePet", "findPetsByStatus"],
        "prefix": "pets_",
        "approval": {"deletePet": True, "findPetsByStatus": True},
        "bindings": {"petId": 7},
    }
    async with await load_tools([entry], tmp_path) as ts:
        assert sorted(ts.names) == ["pets_deletePet", "pets_findPetsByStatus", "pets_getPetById"]
        assert ts.get("pets_findPetsByStatus").requires_approval  # type: ignore[union-attr]
        assert "petId" not in ts.get("pets_getPetById").spec().parameters["properties"]  # type: ignore[union-attr]
    with pytest.raises(ToolConfigError, match="bindings nope match no parameter"):
        await load_tools([{**entry, "bindings": {"nope": 1}}], tmp_path)
    with pytest.raises(ToolConfigError, match="`only` names unknown tools x"):
        await load_tools([{**entry, "only": ["x"]}], tmp_path)
    with pytest.raises(ToolConfigError, match="two tools are named"):
        await load_tools([entry, entry], tmp_path)
    relaxed = {**entry, "approval": {"*": False}, "bindings": {}}
    async with await load_tools([relaxed], tmp_path) as ts:
        assert not any(t.requires_approval for t in ts)


async def test_relative_server_url_in_a_file_needs_base_url(tmp_path: Path) -> None:
    with pytest.raises(ToolConfigError, match="set `base_url`"):
        await load_tools([{"openapi": PETSTORE}], tmp_path)


async def test_python_entry_via_the_loader(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text(
        "def shout(text: str) -> str:\n    '''Upper-case text.'''\n    return text.upper()\n"
    )
    settings = Settings(home=tmp_path, environ={})
    entry = {"python": "helpers.py", "functions": ["shout"], "approval": {"shout": False}}
    async with await load_tools([entry], tmp_path, settings) as ts:
        assert (await ts.call("shout", {"text": "hi"})).content == "HI"
    with pytest.raises(ToolConfigError, match="list the `functions`"):
        await load_tools([{"python": "helpers.py"}], tmp_path)
