"""What a reference of a running flow (`${inputs.name}`, `${node.output.path}`) gives:
the inputs' and the nodes' values as Prompt flow reads them (runner.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pilothouse.copilot.flow.definition import parse_reference


def reference_value(value: Any, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
    """`value` when it is a literal; else what it references: a flow input's value or a
    node's output (`outputs`, None for a bypassed node), then down its path (keys, list
    indexes, attributes; a JSON string is read first). A path that leads nowhere is None."""
    ref = parse_reference(value)
    if ref is None:
        return value
    if ref.is_input:
        current: Any = inputs.get(ref.path[0])
        path = ref.path[1:]
    else:
        current = outputs.get(ref.source)
        path = ref.path
    for part in path:
        if current is None:
            return None
        if isinstance(current, str) and part not in ("",):
            try:
                current = json.loads(current)
            except json.JSONDecodeError:
                return None
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            current = current[index] if -len(current) <= index < len(current) else None
        else:
            current = getattr(current, part, None)
    return current


def from_bypassed(value: Any, bypassed: Sequence[str]) -> bool:
    """Whether `value` references the output of a node in `bypassed`."""
    ref = parse_reference(value)
    return ref is not None and not ref.is_input and ref.source in bypassed
