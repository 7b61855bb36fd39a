"""Load YAML with bounded alias expansion, so a small hostile file cannot take the
memory or the time of the process (an "alias bomb": nine lines of `&a [*b, *b, ...]`
that stand for a billion values).

YAML aliases (`*name`, and `<<: *name` merges) repeat what an anchor names. PyYAML
shares the repeated node, so loading itself stays small; whatever walks the result
(validation, line maps, JSON) pays the expanded size. Every YAML this project reads
goes through `load_yaml` or `compose_yaml`, which refuse, before anything is built:

- more than `max_aliases` aliases in one document;
- aliases that together add more than `max_alias_nodes` values or `max_alias_chars`
  characters of text to what is written in the file (the expanded size minus the
  written size; what a file writes out in full is bounded by its length);
- nesting deeper than `max_depth` levels;
- an anchor used inside itself (a recursive structure no consumer can walk).

A refusal is a `YamlLimitError`, a `yaml.MarkedYAMLError` with the line of the
offending alias, so callers that already report YAML errors as `file:line: ...`
report these the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class YamlLimits:
    """How far aliases may expand a document; see the module docstring."""

    max_aliases: int = 1_000
    max_alias_nodes: int = 100_000
    max_alias_chars: int = 10_000_000
    max_depth: int = 100


DEFAULT_LIMITS = YamlLimits()


class YamlLimitError(yaml.MarkedYAMLError):
    """The document expands past a limit (an alias bomb, or absurd nesting)."""

    def __init__(self, problem: str, mark: yaml.Mark | None):
        super().__init__(problem=problem, problem_mark=mark)


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases and depth while composing, so a bomb stops at
    the first alias over the limit, not after the whole file is read."""

    def __init__(self, stream: str | bytes, limits: YamlLimits):
        super().__init__(stream)
        self.limits = limits
        self.aliases = 0
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > self.limits.max_aliases:
                raise YamlLimitError(
                    f"more than {self.limits.max_aliases} aliases (*name); an alias bomb? "
                    "write the values out instead of repeating anchors",
                    self._mark(),
                )
        self.depth += 1
        try:
            if self.depth > self.limits.max_depth:
                raise YamlLimitError(
                    f"nested deeper than {self.limits.max_depth} levels", self._mark()
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def _mark(self) -> yaml.Mark | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        return getattr(event, "start_mark", None)


def compose_yaml(
    text: str | bytes, limits: YamlLimits = DEFAULT_LIMITS
) -> tuple[Any, yaml.Node | None]:
    """(data, node): the safe-loaded data and the node tree it was built from (for line
    numbers), parsed once. Raises `yaml.YAMLError` (a `YamlLimitError` when a limit is
    passed) with a mark giving the line."""
    loader = _BoundedLoader(text, limits)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        check_expansion(node, limits)
        return loader.construct_document(node), node
    finally:
        loader.dispose()


def load_yaml(text: str | bytes, limits: YamlLimits = DEFAULT_LIMITS) -> Any:
    """`yaml.safe_load` with the limits above."""
    return compose_yaml(text, limits)[0]


def check_expansion(root: yaml.Node, limits: YamlLimits = DEFAULT_LIMITS) -> None:
    """Refuse a node tree whose aliases expand past the limits, or that contains itself.

    The expanded size of each distinct node is computed once (aliases share nodes), so
    this takes time linear in the written document, however large the expansion."""
    sizes: dict[int, tuple[int, int]] = {}
    written_nodes = 0
    written_chars = 0
    # Iterative post-order walk: (node, children visited?).
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, expanded = stack.pop()
        key = id(node)
        if expanded:
            open_nodes.discard(key)
            nodes, chars = 1, 0
            for child in _children(node):
                child_nodes, child_chars = sizes[id(child)]
                nodes += child_nodes
                chars += child_chars
            sizes[key] = (nodes, chars)
            added_nodes = nodes - written_nodes
            added_chars = chars - written_chars
            if added_nodes > limits.max_alias_nodes or added_chars > limits.max_alias_chars:
                raise YamlLimitError(
                    "aliases (*name) expand this document past the limit of "
                    f"{limits.max_alias_nodes:,} repeated values and "
                    f"{limits.max_alias_chars:,} repeated characters; an alias bomb? "
                    "write the values out instead of repeating anchors",
                    node.start_mark,
                )
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise YamlLimitError(
                "an anchor is used inside itself (a recursive structure); this is not supported",
                node.start_mark,
            )
        written_nodes += 1
        if isinstance(node, yaml.ScalarNode):
            written_chars += len(node.value)
            sizes[key] = (1, len(node.value))
            continue
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
