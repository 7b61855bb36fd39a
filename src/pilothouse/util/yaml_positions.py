"""Load YAML and remember where each value came from, so validation errors can say
file, line and field."""

from __future__ import annotations

from typing import Any

import yaml

from pilothouse.util.yaml_limits import compose_yaml

Path = tuple[str | int, ...]
Positions = dict[Path, int]


def _walk(node: yaml.Node, path: Path, positions: dict[Path, int]) -> None:
    positions[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            positions[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), positions)
            positions[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), positions)


def load_with_positions(text: str) -> tuple[Any, dict[Path, int]]:
    """The data (safe-loaded, aliases bounded: see `yaml_limits`) and a map from each
    path to its 1-based line.

    Raises `yaml.YAMLError` (with a mark giving line and column) on bad YAML, and its
    subclass `YamlLimitError` on a document that expands past the limits.
    """
    data, node = compose_yaml(text)
    positions: dict[Path, int] = {}
    if node is not None:
        _walk(node, (), positions)
    return data, positions


def line_of(positions: dict[Path, int], path: Path) -> int | None:
    """The line of `path`, or of its nearest ancestor that has one."""
    for end in range(len(path), -1, -1):
        line = positions.get(tuple(path[:end]))
        if line is not None:
            return line
    return None
