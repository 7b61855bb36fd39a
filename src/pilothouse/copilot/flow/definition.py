"""Prompt flow's `flow.dag.yaml` as typed objects (read and checked by reader.py).

Supported: standard and chat flows (`type: standard | chat`; `evaluation` flows run
as standard ones, their aggregation nodes after the lines); inputs (`type, default,
is_chat_input, is_chat_history`); outputs (`reference, is_chat_output`); nodes of type
`llm` (a Jinja2 template or a `.prompty` file), `prompt` (a Jinja2 template rendered to
text) and `python` (a `@tool` function in the flow folder); `${inputs.x}` /
`${flow.x}`, `${node}`, `${node.output}`, `${node.output.a.b}` references; `activate`;
`aggregation`; `node_variants` with `use_variants`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pilothouse.errors import ConfigError

FLOW_FILE = "flow.dag.yaml"
_REFERENCE = re.compile(r"^\$\{(?P<body>[^{}]+)\}$")
NODE_TYPES = ("llm", "prompt", "python")


class FlowError(ConfigError):
    """A flow folder is malformed or uses a feature Pilothouse does not run; the message
    names the file, the line, the node and the feature."""


@dataclass(frozen=True)
class Reference:
    """`${inputs.x}` (`source="inputs"`) or `${node.output.a.b}` (`source=node`)."""

    source: str
    path: tuple[str, ...] = ()

    @property
    def is_input(self) -> bool:
        return self.source in ("inputs", "flow")


def parse_reference(value: Any) -> Reference | None:
    """The reference a value is, or None for a literal."""
    if not isinstance(value, str):
        return None
    match = _REFERENCE.match(value.strip())
    if match is None:
        return None
    parts = tuple(p.strip() for p in match["body"].split("."))
    if parts[0] in ("inputs", "flow"):
        return Reference("inputs", parts[1:])
    rest = parts[1:]
    if rest and rest[0] == "output":
        rest = rest[1:]
    return Reference(parts[0], rest)


@dataclass(frozen=True)
class FlowInput:
    name: str
    type: str = "string"
    default: Any = None
    has_default: bool = False
    is_chat_input: bool = False
    is_chat_history: bool = False


@dataclass(frozen=True)
class FlowOutput:
    name: str
    reference: Any
    is_chat_output: bool = False
    evaluation_only: bool = False


@dataclass(frozen=True)
class Activate:
    when: Any
    is_: Any


@dataclass(frozen=True)
class Node:
    name: str
    type: str
    path: str | None = None
    """The template (`llm`, `prompt`) or Python file (`python`), relative to the folder."""
    function: str | None = None
    """python: the function's name when the source names one (`tool:` or `module:fn`)."""
    inputs: Mapping[str, Any] = field(default_factory=dict)
    connection: str | None = None
    api: str = "chat"
    activate: Activate | None = None
    aggregation: bool = False
    line: int = 1
    tool: str | None = None
    """The packaged tool a `source.type: package` node names (read leniently only)."""
    problem: str | None = None
    """Why Pilothouse cannot run this node (read leniently only; else an error)."""


@dataclass(frozen=True)
class FlowDefinition:
    file: Path
    type: str
    inputs: tuple[FlowInput, ...]
    outputs: tuple[FlowOutput, ...]
    nodes: tuple[Node, ...]
    """In order of execution (references before the nodes that use them)."""
    variants: Mapping[str, Mapping[str, Node]] = field(default_factory=dict)
    """node -> variant id -> the node as that variant writes it."""
    default_variants: Mapping[str, str] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.file.parent

    @property
    def name(self) -> str:
        return self.folder.resolve().name

    def chat_input(self) -> FlowInput | None:
        return next((i for i in self.inputs if i.is_chat_input), None)

    def chat_history(self) -> FlowInput | None:
        return next((i for i in self.inputs if i.is_chat_history), None)

    def chat_output(self) -> FlowOutput | None:
        return next((o for o in self.outputs if o.is_chat_output), None)

    def with_variant(self, node: str, variant: str) -> FlowDefinition:
        """The flow with `node` replaced by its variant `variant`."""
        chosen = self.variants.get(node, {}).get(variant)
        if chosen is None:
            known = ", ".join(f"{n}.{v}" for n, vs in self.variants.items() for v in vs)
            raise FlowError(
                f"{self.file}: no variant {variant!r} of node {node!r}; the flow has: "
                f"{known or 'no variants'}"
            )
        nodes = tuple(chosen if n.name == node else n for n in self.nodes)
        return FlowDefinition(
            self.file, self.type, self.inputs, self.outputs, nodes, self.variants,
            {**self.default_variants, node: variant},
        )  # fmt: skip


def references(node: Node) -> list[tuple[Reference, tuple[str | int, ...]]]:
    """The references in a node's inputs and its activate condition, with where."""
    found: list[tuple[Reference, tuple[str | int, ...]]] = []
    for key, value in node.inputs.items():
        ref = parse_reference(value)
        if ref is not None:
            found.append((ref, ("inputs", key)))
    if node.activate is not None:
        ref = parse_reference(node.activate.when)
        if ref is not None:
            found.append((ref, ("activate", "when")))
    return found


def dependencies(node: Node) -> set[str]:
    """The nodes `node` reads from."""
    return {ref.source for ref, _ in references(node) if not ref.is_input}
