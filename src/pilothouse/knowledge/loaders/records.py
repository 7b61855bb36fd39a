"""CSV/TSV and JSON/JSONL: one record per row or object, as `key: value` lines."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from pilothouse.knowledge.documents import Block
from pilothouse.knowledge.loaders.limits import checkpoint
from pilothouse.knowledge.loaders.text import decode


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        pairs: list[tuple[str, str]] = []
        for key, item in value.items():
            pairs.extend(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return pairs
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        return [(prefix or "value", json.dumps(value, ensure_ascii=False))]
    if isinstance(value, list):
        return [(prefix or "value", ", ".join(str(v) for v in value))]
    if value is None or value == "":
        return []
    return [(prefix or "value", str(value))]


def _record(value: Any, label: str) -> Block | None:
    lines = [f"{key}: {text}" for key, text in _flatten(value) if text.strip()]
    return Block("record", "\n".join(lines), label=label) if lines else None


def parse_csv(data: bytes, *, tab_separated: bool = False) -> tuple[str | None, list[Block]]:
    text = decode(data)
    sample = text[:64_000]
    dialect: type[csv.Dialect] | csv.Dialect
    if tab_separated:
        dialect = csv.excel_tab
    else:
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=dialect)
    blocks = []
    for row in reader:
        checkpoint()
        values = {k: v for k, v in row.items() if k is not None}
        extra = row.get(None)
        if extra:
            values["(extra)"] = extra
        block = _record(values, f"row {reader.line_num}")
        if block is not None:
            blocks.append(block)
    return None, blocks


def parse_json(data: bytes) -> tuple[str | None, list[Block]]:
    text = decode(data)
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None, _parse_lines(text)
    items = value if isinstance(value, list) else [value]
    blocks = [_record(item, f"record {i}") for i, item in enumerate(items, start=1)]
    return None, [b for b in blocks if b is not None]


def _parse_lines(text: str) -> list[Block]:
    """JSON Lines; any bad line fails the whole file (nothing half-indexed)."""
    blocks = []
    for number, line in enumerate(text.split("\n"), start=1):
        checkpoint()
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON or JSON Lines (line {number}: {exc.msg})") from None
        block = _record(value, f"line {number}")
        if block is not None:
            blocks.append(block)
    return blocks
