"""A flow's inputs from text (`--input top=3`) and its data lines (`data.jsonl`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pilothouse.copilot.flow.definition import FlowError

_PYTHON_TYPES = {"int": int, "double": float, "bool": bool, "string": str}


def typed_input(value: Any, kind: str) -> Any:
    """A value given as text (`--input top=3`) as the input's declared type."""
    if not isinstance(value, str) or kind == "string":
        return value
    if kind in ("list", "object"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if kind == "bool":
        return value.strip().lower() in ("true", "1", "yes")
    convert = _PYTHON_TYPES.get(kind)
    try:
        return convert(value) if convert is not None else value
    except ValueError:
        return value


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The lines of a JSONL data file (Prompt flow's data.jsonl), each a JSON object."""
    if not path.is_file():
        raise FlowError(f"{path}: no data file; give one with --data FILE.jsonl")
    rows = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FlowError(f"{path}:{number}: not a JSON object: {exc.msg}") from None
        if not isinstance(row, dict):
            raise FlowError(f"{path}:{number}: not a JSON object")
        rows.append(row)
    return rows
