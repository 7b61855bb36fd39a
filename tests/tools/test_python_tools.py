"""The tool interface through Python function tools: schema from hints and
docstrings, validation errors the model can read, bindings, approval defaults."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field, SecretStr

from pilothouse.tools import PythonTool, Toolset, tool
from pilothouse.tools.errors import ToolConfigError, ToolError
from pilothouse.tools.python import load_python_tools


class Priority(enum.Enum):
    LOW = "low"
    HIGH = "high"


@dataclass
class Address:
    city: str
    zip: str | None = None


@tool(read_only=True)
async def find_orders(
    customer: str,
    status: Literal["open", "closed"] = "open",
    limit: Annotated[int, Field(ge=1, le=50)] = 10,
    tenant: str = "default",
) -> list[dict[str, Any]]:
    """Find a customer's orders.

    Args:
        customer: The customer number, e.g. "C-1".
        status: Which orders.
        limit: How many at most.
        tenant: The tenant (bound by configuration).
    """
    return [{"customer": customer, "status": status, "limit": limit, "tenant": tenant}]


@tool
def create_ticket(title: str, priority: Priority, where: Address, tags: list[str] | None = None):  # type: ignore[no-untyped-def]
    """Open a ticket."""
    return {"title": title, "priority": priority, "city": where.city, "tags": tags or []}


class Out(BaseModel):
    n: int
    title: str


def returns_model(title: str) -> Out:
    """Return a model.

    :param title: the title
    """
    return Out(n=1, title=title)


def test_schema_from_hints_and_docstring() -> None:
    spec = find_orders.spec()
    assert spec.name == "find_orders"
    assert spec.description == "Find a customer's orders."
    props = spec.parameters["properties"]
    assert props["customer"] == {
        "type": "string",
        "description": 'The customer number, e.g. "C-1".',
    }
    assert props["status"]["enum"] == ["open", "closed"]
    assert props["limit"]["maximum"] == 50 and props["limit"]["minimum"] == 1
    assert spec.parameters["required"] == ["customer"]
    assert spec.parameters["additionalProperties"] is False
    assert "title" not in spec.parameters
    # a property literally named "title" survives the title stripping
    assert "title" in PythonTool(returns_model).spec().parameters["properties"]
    assert PythonTool(returns_model).spec().parameters["properties"]["title"]["description"] == (
        "the title"
    )


def test_read_only_and_approval_defaults() -> None:
    assert find_orders.read_only and not find_orders.requires_approval
    assert not create_ticket.read_only and create_ticket.requires_approval
    assert not tool(requires_approval=False)(returns_model).requires_approval


async def test_call_converts_json_to_python_types() -> None:
    result = await create_ticket.call(
        {"title": "VPN down", "priority": "high", "where": {"city": "Oslo"}}
    )
    assert not result.is_error
    assert result.data == {"title": "VPN down", "priority": "high", "city": "Oslo", "tags": []}
    model_result = await PythonTool(returns_model).call({"title": "x"})
    assert model_result.data == {"n": 1, "title": "x"}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({}, "'customer' is a required property"),
        ({"customer": 5}, "'customer': 5 is not of type 'string'"),
        ({"customer": "C", "limit": 500}, "'limit': 500 is greater than the maximum of 50"),
        ({"customer": "C", "status": "pending"}, "'status': 'pending' is not one of"),
        ({"customer": "C", "colour": "red"}, "'colour' was unexpected"),
    ],
)
async def test_bad_arguments_become_error_results(arguments: dict[str, Any], expected: str) -> None:
    result = await find_orders.call(arguments)
    assert result.is_error
    assert expected in result.content
    assert "find_orders" in result.content


async def test_non_object_arguments_are_an_error_result() -> None:
    result = await find_orders.call(["C-1"])  # type: ignore[arg-type]
    assert result.is_error and "must be a JSON object" in result.content


async def test_bindings_are_hidden_and_override_the_model() -> None:
    bound = find_orders.with_options(bindings={"tenant": SecretStr("acme")})
    spec = bound.spec()
    assert "tenant" not in spec.parameters["properties"]
    assert "tenant" in find_orders.spec().parameters["properties"]  # original untouched
    result = await bound.call({"customer": "C-1", "tenant": "evil-corp"})
    assert result.data[0]["tenant"] == "acme"


async def test_invalid_bound_value_is_reported_without_its_value() -> None:
    bound = find_orders.with_options(bindings={"limit": 999})
    result = await bound.call({"customer": "C"})
    assert result.is_error
    assert "bound" in result.content and "999" not in result.content


def test_binding_an_unknown_parameter_is_a_config_error() -> None:
    with pytest.raises(ToolConfigError, match="cannot bind nope"):
        find_orders.with_options(bindings={"nope": 1})


async def test_function_exceptions_become_error_results() -> None:
    @tool(read_only=True)
    def divide(a: int, b: int) -> float:
        """Divide."""
        return a / b

    result = await divide.call({"a": 1, "b": 0})
    assert result.is_error
    assert "ZeroDivisionError" in result.content

    @tool(read_only=True)
    async def refuse() -> str:
        """Refuse."""
        raise ToolError("order SO-1 is archived; ask for a newer order")

    assert (await refuse.call({})).content == "Error: order SO-1 is archived; ask for a newer order"


def test_unsupported_signatures_are_config_errors() -> None:
    def no_hint(x):  # type: ignore[no-untyped-def]
        return x

    def star(*args: int) -> None:
        return None

    with pytest.raises(ToolConfigError, match="has no type hint"):
        PythonTool(no_hint)
    with pytest.raises(ToolConfigError, match=r"\*args"):
        PythonTool(star)


async def test_toolset_refuses_unapproved_writes_and_unknown_tools() -> None:
    toolset = Toolset([find_orders, create_ticket])
    denied = await toolset.call(
        "create_ticket", {"title": "x", "priority": "low", "where": {"city": "a"}}
    )
    assert denied.is_error and "approval" in denied.content
    approved = await toolset.call(
        "create_ticket", {"title": "x", "priority": "low", "where": {"city": "a"}}, approved=True
    )
    assert not approved.is_error
    unknown = await toolset.call("drop_tables", {})
    assert unknown.is_error and "find_orders" in unknown.content
    with pytest.raises(ToolConfigError, match="two tools are named"):
        toolset.add(find_orders)


def test_load_from_file_inside_the_copilot_folder(tmp_path: Path) -> None:
    (tmp_path / "mytools.py").write_text(
        "from pilothouse.tools import tool\n"
        "@tool(read_only=True)\n"
        "def ping(host: str) -> str:\n"
        "    '''Ping a host.'''\n"
        "    return 'pong ' + host\n"
        "def plain(n: int) -> int:\n"
        "    '''Double n.'''\n"
        "    return n * 2\n"
    )
    tools = load_python_tools(
        functions=["ping", "plain"], module=None, file="mytools.py", base_dir=tmp_path
    )
    assert [t.name for t in tools] == ["ping", "plain"]
    assert tools[0].read_only and tools[1].requires_approval
    outside = tmp_path.parent / "evil.py"
    outside.write_text("X = 1\n")
    with pytest.raises(ToolConfigError, match="outside the copilot folder"):
        load_python_tools(functions=["X"], module=None, file="../evil.py", base_dir=tmp_path)
    with pytest.raises(ToolConfigError, match=r"mytools\.py has no function 'missing'"):
        load_python_tools(functions=["missing"], module=None, file="mytools.py", base_dir=tmp_path)
    module_tools = load_python_tools(
        functions=["tests.tools.test_python_tools:find_orders"],
        module=None,
        file=None,
        base_dir=tmp_path,
    )
    assert module_tools[0] is find_orders


async def test_a_bug_inside_a_tool_becomes_an_error_result() -> None:
    from pilothouse.tools import Tool

    class Broken(Tool):
        async def invoke(self, arguments: dict[str, Any]) -> Any:
            return {}["missing"]

    result = await Broken(name="broken", description="d", read_only=True).call({})
    assert result.is_error and "failed unexpectedly (KeyError)" in result.content
