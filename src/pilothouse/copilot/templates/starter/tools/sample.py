"""Sample tools: look up an order (read-only) and start a return (changes data, so a
person approves each call). Replace the sample data with calls to your own systems.

Try them without a model:
    pilothouse tools list .
    pilothouse tools call . order_status --args '{"order_id": "SO-1002"}'
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any

from pydantic import Field

from pilothouse.tools import tool
from pilothouse.tools.errors import ToolError

_ORDERS: dict[str, dict[str, Any]] = {
    "SO-1001": {
        "product": "Skylark T2 thermostat",
        "status": "delivered",
        "delivered": "2026-03-02",
    },
    "SO-1002": {"product": "Skylark T2 thermostat", "status": "shipped", "expected": "2026-03-12"},
    "SO-1003": {"product": "Skylark room sensor (2-pack)", "status": "processing"},
}
_RETURN_NUMBERS = itertools.count(5001)


def _order(order_id: str) -> dict[str, Any]:
    key = order_id.strip().upper()
    if key not in _ORDERS:
        raise ToolError(f"there is no order {order_id!r}; order numbers look like SO-1001")
    return {"order_id": key, **_ORDERS[key]}


@tool(read_only=True)
def order_status(order_id: str) -> dict[str, Any]:
    """Look up an order's status.

    Args:
        order_id: The order number, e.g. SO-1001.
    """
    return _order(order_id)


@tool(requires_approval=True)
def request_return(
    order_id: str, reason: Annotated[str, Field(min_length=3, max_length=500)]
) -> dict[str, Any]:
    """Start a return for an order and email the customer a return label.

    Args:
        order_id: The order number, e.g. SO-1001.
        reason: Why the customer is returning it, in their words.
    """
    order = _order(order_id)
    return {
        "return_number": f"RMA-{next(_RETURN_NUMBERS)}",
        "order_id": order["order_id"],
        "label": "emailed to the address on the order",
    }
