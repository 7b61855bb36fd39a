"""Identifying parameters (what the grounded-argument check looks at), concrete
identifiers in tool descriptions (what `tools list` and copilot opening warn about),
and the `grounded` mode of a tool."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
from pydantic import Field

from pilothouse.tools import tool
from pilothouse.tools.errors import ToolConfigError
from pilothouse.tools.identifiers import (
    concrete_identifiers,
    identifying_parameters,
    looks_like_a_quantity,
    mask_identifiers,
)
from pilothouse.tools.loader import load_tools


def schema(**properties: dict[str, object]) -> dict[str, object]:
    return {"type": "object", "properties": properties}


def test_ids_keys_numbers_and_emails_are_inferred_by_name() -> None:
    found = identifying_parameters(
        schema(
            order_id={"type": "string"},
            issueKey={"type": "string"},
            ticket_number={"type": "integer"},
            customer_email={"type": "string"},
            sku={"type": "string"},
            id={"type": "string"},
            ids={"type": "array", "items": {"type": "string"}},
            summary={"type": "string"},
            paid={"type": "boolean"},
            valid={"type": "string"},  # ends in "id" letters, but is not an id
            sort_key={"type": "string"},  # a key, but not a record's
            project_key={"type": "string"},
        )
    )
    assert found == {
        "order_id": "name",
        "issueKey": "name",
        "ticket_number": "name",
        "customer_email": "name",
        "sku": "name",
        "id": "name",
        "ids": "name",
        "project_key": "name",
    }


def test_a_format_or_an_example_in_the_description_makes_a_parameter_identifying() -> None:
    found = identifying_parameters(
        schema(
            contact={"type": "string", "format": "email"},
            reference={"type": "string", "description": "The booking, e.g. BK-20931."},
            host={"type": "string", "description": "Where, for example db01.corp"},
            colour={"type": "string", "description": "A colour such as red"},  # no digit
            code={"type": "string", "examples": ["X-42"]},
        )
    )
    assert found == {
        "contact": "format",
        "reference": "example",
        "host": "example",
        "code": "example",
    }


def test_declared_grounded_wins_either_way_and_enums_are_never_checked() -> None:
    found = identifying_parameters(
        schema(
            customer={"type": "string", "x-pilothouse-grounded": True},
            order_id={"type": "string", "x-pilothouse-grounded": False},
            region_id={"type": "string", "enum": ["eu-1", "us-2"]},
        )
    )
    assert found == {"customer": "declared"}


def test_concrete_identifiers_in_descriptions_get_a_placeholder() -> None:
    found = concrete_identifiers(
        "order_status",
        "Look up an order (orders since 2019) for jane@shop.example.",
        schema(
            order_id={"type": "string", "description": "The order number, e.g. SO-1001."},
            account={"type": "string", "examples": ["100234"]},
            year={"type": "integer", "description": "A year like 2026."},
        ),
    )
    pairs = [(f.where, f.value, f.placeholder) for f in found]
    assert pairs == [
        ("the description", "jane@shop.example", "<email address>"),
        ("parameter order_id's description", "SO-1001", "SO-NNNN"),
        ("parameter account's examples", "100234", "NNNNNN"),
    ]
    assert "write a placeholder such as 'SO-NNNN'" in found[1].warning()


def test_masking_replaces_identifiers_but_not_years_or_model_names() -> None:
    text = "The order number, e.g. SO-1001 (since 2024, T2 thermostat); mail a@b.example"
    assert mask_identifiers(text) == (
        "The order number, e.g. SO-NNNN (since 2024, T2 thermostat); mail <email address>"
    )


def test_the_model_never_sees_pilothouse_keywords() -> None:
    @tool(read_only=True)
    def lookup(
        customer: Annotated[str, Field(json_schema_extra={"x-pilothouse-grounded": True})],
    ) -> str:
        """Look a customer up.

        Args:
            customer: The customer's name.
        """
        return customer

    assert lookup.parameters["properties"]["customer"]["x-pilothouse-grounded"] is True
    assert "x-pilothouse-grounded" not in str(lookup.spec().parameters)
    assert identifying_parameters(lookup.parameters) == {"customer": "declared"}


def test_the_grounded_mode_comes_from_the_decorator_or_the_tools_entry(tmp_path: Path) -> None:
    @tool(grounded="warn")
    def act(order_id: str) -> str:
        """Act."""
        return order_id

    assert act.grounded == "warn"
    with pytest.raises(ToolConfigError, match="grounded must be one of"):
        act.with_options(grounded="loose")  # type: ignore[arg-type]


async def test_tools_entries_set_the_mode_per_tool_or_for_all(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(
        "from pilothouse.tools import tool\n\n"
        "@tool(read_only=True)\ndef status(order_id: str) -> str:\n    return order_id\n\n"
        "@tool\ndef refund(order_id: str) -> str:\n    return order_id\n"
    )
    entries = [
        {"python": "shop.py", "functions": ["status", "refund"], "grounded": {"status": "off"}}
    ]
    async with await load_tools(entries, tmp_path) as toolset:
        assert [(t.name, t.grounded) for t in toolset] == [("status", "off"), ("refund", "strict")]
    entries = [{"python": "shop.py", "functions": ["status"], "grounded": "warn"}]
    async with await load_tools(entries, tmp_path) as toolset:
        assert [t.grounded for t in toolset] == ["warn"]
    entries = [{"python": "shop.py", "functions": ["status"], "grounded": {"stauts": "off"}}]
    with pytest.raises(ToolConfigError, match="`grounded` names unknown tools stauts"):
        await load_tools(entries, tmp_path)


@pytest.mark.parametrize(
    ("text", "number", "quantity"),
    [
        ("It weighs 120 pounds.", "120", True),
        ("The battery is 2400mAh.", "2400mAh", True),
        ("It costs £120.", "120", True),
        ("It cost 1,250 dollars.", "250", True),
        ("I paid £120.50 for it.", "120.50", True),
        ("I paid £120.50 for it.", "120", True),
        ("It weighs 1,250.5 kg.", "1,250.5", True),
        ("Is model 2400 sold?", "2400", True),
        ("Does the 2400 model fit?", "2400", True),
        ("A 15% discount on 300 items", "300", True),
        ("Is 3031 here yet?", "3031", False),
        ("Where is order 2400?", "2400", False),
        ("What about 4501?", "4501", False),
        ("SO-1001 weighs 3 kg", "SO-1001", False),  # a prefixed id never is
    ],
)
def test_a_quantity_a_price_or_a_model_number_is_told_from_an_id(
    text: str, number: str, quantity: bool
) -> None:
    start = text.index(number)
    assert looks_like_a_quantity(text, start, start + len(number)) is quantity
