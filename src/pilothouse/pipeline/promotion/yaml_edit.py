"""A promotion's change to copilot.yaml as a minimal, reviewable edit: the lines it
touches and nothing else, so comments, order, quoting and layout stay as they were.

The edit works on the text, guided by the positions of the YAML nodes: a value that is
there is replaced in place (in its own quoting style); a key that is missing is added
as the first key of its mapping, indented like its siblings (block or flow style); a
missing mapping is added after `instructions`. The result is read back and must equal
the original data with exactly the intended change; otherwise nothing is written and
the error says what to set by hand. (A round-trip YAML library would re-emit the whole
file, re-indenting lists and folding long strings: a diff of every line.)
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from pilothouse.errors import PilothouseError
from pilothouse.util.yaml_limits import compose_yaml, load_yaml

Path = tuple[str, ...]


class YamlEditError(PilothouseError):
    """copilot.yaml could not be changed safely; the message says what to set by hand."""


@dataclass(frozen=True, slots=True)
class Change:
    """Set `path` to `value`; None deletes the key."""

    path: Path
    value: str | None


def apply_changes(text: str, changes: Sequence[Change], *, where: str = "copilot.yaml") -> str:
    """`text` with each change made; YamlEditError when the result would differ from
    the intended data in any other way."""
    original = load_yaml(text)
    if not isinstance(original, dict):
        raise YamlEditError(f"{where}: not a mapping of fields")
    expected = copy.deepcopy(original)
    result = text
    for change in changes:
        _apply(expected, change)
        result = _edit(result, change, where)
    if load_yaml(result) != expected:
        raise YamlEditError(_by_hand(where, changes, "the edit would change other fields"))
    return result


def _by_hand(where: str, changes: Sequence[Change], why: str) -> str:
    wanted = "; ".join(
        f"set {'.'.join(c.path)} to {c.value}"
        if c.value is not None
        else f"remove {'.'.join(c.path)}"
        for c in changes
    )
    return f"{where}: cannot be edited safely ({why}); {wanted} by hand"


def _apply(data: dict[str, Any], change: Change) -> None:
    node: dict[str, Any] = data
    for key in change.path[:-1]:
        found = node.get(key)
        if not isinstance(found, dict):
            found = {}
            node[key] = found
        node = found
    if change.value is None:
        node.pop(change.path[-1], None)
    else:
        node[change.path[-1]] = change.value


def _scalar(value: str) -> str:
    """`value` as a YAML scalar: plain when it reads back the same, else double-quoted."""
    try:
        if yaml.safe_load(f"k: {value}") == {"k": value}:
            return value
    except yaml.YAMLError:
        pass
    return json.dumps(value, ensure_ascii=False)


def _find(
    root: yaml.Node, path: Path
) -> tuple[list[yaml.MappingNode], yaml.Node | None, yaml.Node | None]:
    """The mappings along `path` that exist, and the key and value nodes of its last
    key (None when missing)."""
    mappings: list[yaml.MappingNode] = []
    node: yaml.Node | None = root
    for depth, key in enumerate(path):
        if not isinstance(node, yaml.MappingNode):
            return mappings, None, None
        mappings.append(node)
        entry = next(((k, v) for k, v in node.value if k.value == key), None)
        if entry is None:
            return mappings, None, None
        if depth == len(path) - 1:
            return mappings, entry[0], entry[1]
        node = entry[1]
    return mappings, None, None


def _edit(text: str, change: Change, where: str) -> str:
    _, root = compose_yaml(text)
    if root is None:
        raise YamlEditError(f"{where}: empty")
    mappings, key, value = _find(root, change.path)
    if change.value is None:
        if key is None or value is None:
            return text
        return _delete(text, mappings[-1], key, value, where, change)
    if value is not None:
        if not isinstance(value, yaml.ScalarNode):
            raise YamlEditError(
                _by_hand(where, [change], f"{'.'.join(change.path)} is not a value")
            )
        return _replace(text, value, change.value)
    depth = len(mappings)
    parent = mappings[-1]
    keys = change.path[depth - 1 :]
    if _has_key(parent, keys[0]):  # there, but not a mapping (`model:` left empty)
        raise YamlEditError(
            _by_hand(where, [change], f"{'.'.join(change.path[:depth])} is not a mapping")
        )
    return _insert(text, parent, keys, change.value, top=depth == 1)


def _has_key(mapping: yaml.MappingNode, key: str) -> bool:
    return any(k.value == key for k, _ in mapping.value)


def _replace(text: str, node: yaml.ScalarNode, value: str) -> str:
    start, end = node.start_mark.index, node.end_mark.index
    if node.style in ("'", '"'):
        rendered = json.dumps(value, ensure_ascii=False) if node.style == '"' else _single(value)
    else:
        rendered = _scalar(value)
    if start == end:  # an empty value (`primary:`): the key's colon is just before
        return f"{text[:start]} {rendered}{text[end:]}"
    return f"{text[:start]}{rendered}{text[end:]}"


def _single(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _nested(keys: Sequence[str], value: str, indent: str, step: int) -> str:
    """Block lines for `keys` (outermost first) holding `value`."""
    lines = []
    for depth, key in enumerate(keys):
        pad = indent + " " * (step * depth)
        last = depth == len(keys) - 1
        lines.append(f"{pad}{key}: {_scalar(value)}" if last else f"{pad}{key}:")
    return "\n".join(lines) + "\n"


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _insert(
    text: str, mapping: yaml.MappingNode, keys: Sequence[str], value: str, *, top: bool
) -> str:
    if mapping.flow_style:
        inside = mapping.start_mark.index + 1
        entry = _flow(keys, value)
        gap = ", " if mapping.value else ""
        return f"{text[:inside]}{entry}{gap}{text[inside:]}"
    first_key = mapping.value[0][0] if mapping.value else None
    if top:
        return _insert_top(text, mapping, keys, value)
    if first_key is None:
        raise YamlEditError(f"an empty mapping at line {mapping.start_mark.line + 1}")
    column = first_key.start_mark.column
    at = _line_start(text, first_key.start_mark.index)
    return f"{text[:at]}{_nested(keys, value, ' ' * column, 2)}{text[at:]}"


def _flow(keys: Sequence[str], value: str) -> str:
    inner = f"{keys[-1]}: {_scalar(value)}"
    for key in reversed(keys[:-1]):
        inner = f"{key}: {{{inner}}}"
    return inner


def _insert_top(text: str, mapping: yaml.MappingNode, keys: Sequence[str], value: str) -> str:
    """A new top-level key: after `instructions` (or at the end)."""
    entry = next(((k, v) for k, v in mapping.value if k.value == "instructions"), None)
    lines = _nested(keys, value, "", 2)
    if entry is None:
        return text + ("" if text.endswith("\n") else "\n") + lines
    end = entry[1].end_mark
    at = end.index if end.column == 0 else text.find("\n", end.index)
    if at == -1:
        return text + "\n" + lines
    at = at if end.column == 0 else at + 1
    return f"{text[:at]}{lines}{text[at:]}"


def _delete(
    text: str,
    mapping: yaml.MappingNode,
    key: yaml.Node,
    value: yaml.Node,
    where: str,
    change: Change,
) -> str:
    if mapping.flow_style or len(mapping.value) == 1 or not isinstance(value, yaml.ScalarNode):
        raise YamlEditError(_by_hand(where, [change], "not a line of its own"))
    start = _line_start(text, key.start_mark.index)
    end = text.find("\n", value.end_mark.index)
    end = len(text) if end == -1 else end + 1
    return text[:start] + text[end:]
