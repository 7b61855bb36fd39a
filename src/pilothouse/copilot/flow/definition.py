"""Prompt flow's `flow.dag.yaml`, read into typed objects and checked before anything
runs: every node's references name an input or a node, every node has a supported
type and source, the graph has no cycle. A feature Pilothouse does not run is an error
naming the file, the line, the node and the feature.

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

import yaml

from pilothouse.errors import ConfigError
from pilothouse.util.yaml_limits import YamlLimitError
from pilothouse.util.yaml_positions import load_with_positions

FLOW_FILE = "flow.dag.yaml"
_REFERENCE = re.compile(r"^\$\{(?P<body>[^{}]+)\}$")
NODE_TYPES = ("llm", "prompt", "python")
_UNSUPPORTED_TOP = {
    "additional_includes": "list the files inside the flow folder instead",
}


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


def find_flow(path: Path) -> Path:
    """flow.dag.yaml in `path` (a folder), or `path` itself."""
    if path.is_dir():
        if (path / "flow.flex.yaml").is_file() and not (path / FLOW_FILE).is_file():
            raise FlowError(
                f"{path / 'flow.flex.yaml'}: flex flows (entry: module:function) are not "
                "supported; call the function from a Python tool of a copilot, or write the "
                "flow as flow.dag.yaml"
            )
        path = path / FLOW_FILE
    if not path.is_file():
        raise FlowError(f"{path}: no flow here; a flow is a folder with a {FLOW_FILE}")
    return path


def load_flow_definition(path: Path | str) -> FlowDefinition:
    """Read and check the flow at `path` (a folder or its flow.dag.yaml)."""
    file = find_flow(Path(path))
    try:
        data, positions = load_with_positions(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, YamlLimitError) as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise FlowError(f"{file}{line}: not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise FlowError(f"{file}: not UTF-8 text") from None
    if not isinstance(data, dict):
        raise FlowError(f"{file}:1: expected a mapping (inputs, outputs, nodes)")
    reader = _Reader(file, positions)
    return reader.flow(data)


class _Reader:
    def __init__(self, file: Path, positions: Mapping[Any, int]):
        self.file = file
        self.positions = positions

    def line(self, *path: str | int) -> int:
        key: tuple[str | int, ...] = tuple(path)
        while key:
            if key in self.positions:
                return self.positions[key]
            key = key[:-1]
        return 1

    def fail(self, path: tuple[str | int, ...], message: str) -> FlowError:
        where = ".".join(str(p) for p in path)
        return FlowError(f"{self.file}:{self.line(*path)}: {where}: {message}")

    def flow(self, data: dict[str, Any]) -> FlowDefinition:
        for key, hint in _UNSUPPORTED_TOP.items():
            if data.get(key):
                raise self.fail((key,), f"{key} is not supported; {hint}")
        kind = str(data.get("type") or "standard")
        if kind not in ("standard", "chat", "evaluation"):
            raise self.fail(("type",), f"unknown flow type {kind!r} (standard, chat, evaluation)")
        inputs = tuple(self.input(str(k), v) for k, v in _mapping(data.get("inputs")).items())
        outputs = tuple(self.output(str(k), v) for k, v in _mapping(data.get("outputs")).items())
        raw_nodes = data.get("nodes") or []
        if not isinstance(raw_nodes, list):
            raise self.fail(("nodes",), "expected a list of nodes")
        nodes = [self.node(raw, ("nodes", i)) for i, raw in enumerate(raw_nodes)]
        variants, defaults = self.variants(data.get("node_variants"), nodes)
        for index, node in enumerate(nodes):
            if node.type == "variants":
                raise self.fail(
                    ("nodes", index), f"node {node.name!r} uses variants but node_variants has none"
                )
        names = {n.name for n in nodes}
        if len(names) != len(nodes):
            raise self.fail(("nodes",), "two nodes have the same name")
        input_names = {i.name for i in inputs}
        for index, node in enumerate(nodes):
            for ref, where in _references(node):
                self.check_ref(ref, input_names, names, ("nodes", index, *where), node.name)
        for output in outputs:
            out_ref = parse_reference(output.reference)
            if out_ref is not None:
                self.check_ref(out_ref, input_names, names, ("outputs", output.name), None)
        ordered = self.order(nodes)
        return FlowDefinition(self.file, kind, inputs, outputs, ordered, variants, defaults)

    def input(self, name: str, raw: Any) -> FlowInput:
        spec = raw if isinstance(raw, dict) else {"default": raw}
        return FlowInput(
            name=name,
            type=str(spec.get("type", "string")),
            default=spec.get("default"),
            has_default="default" in spec,
            is_chat_input=spec.get("is_chat_input") is True,
            is_chat_history=spec.get("is_chat_history") is True,
        )

    def output(self, name: str, raw: Any) -> FlowOutput:
        spec = raw if isinstance(raw, dict) else {"reference": raw}
        return FlowOutput(
            name=name,
            reference=spec.get("reference"),
            is_chat_output=spec.get("is_chat_output") is True,
            evaluation_only=spec.get("evaluation_only") is True,
        )

    def node(self, raw: Any, here: tuple[str | int, ...], *, variant: bool = False) -> Node:
        if not isinstance(raw, dict):
            raise self.fail(here, "expected a node (a mapping with name, type, source)")
        name = str(raw.get("name") or "")
        if not name and not variant:
            raise self.fail(here, "a node needs a name")
        if raw.get("use_variants") is True and not variant:
            # Filled from node_variants (its default variant) by `variants`.
            return Node(name=name, type="variants", line=self.line(*here))
        kind = str(raw.get("type") or "")
        label = f"node {name!r}" if name else "the variant"
        if kind not in NODE_TYPES:
            raise self.fail(
                (*here, "type"),
                f"{label} is of type {kind!r}, which Pilothouse does not run (it runs llm, "
                "prompt and python nodes); rewrite it as a python node",
            )
        source = raw.get("source") or {}
        if not isinstance(source, dict):
            raise self.fail((*here, "source"), f"{label}: source must be a mapping")
        source_type = str(source.get("type") or "code")
        path = source.get("path")
        function = None
        if source_type != "code":
            tool = source.get("tool")
            raise self.fail(
                (*here, "source", "type"),
                f"{label} uses the packaged tool {tool!r} (source type {source_type}), which "
                "Pilothouse does not ship; write it as a python node with a @tool function "
                "in the flow folder",
            )
        if not isinstance(path, str) or not path:
            raise self.fail((*here, "source", "path"), f"{label} needs source.path")
        if ":" in path and kind == "python":
            path, function = path.split(":", 1)
        inputs = _mapping(raw.get("inputs"))
        activate = None
        if raw.get("activate") is not None:
            act = raw["activate"]
            if not isinstance(act, dict) or "when" not in act or "is" not in act:
                raise self.fail((*here, "activate"), f"{label}: activate needs `when` and `is`")
            activate = Activate(act["when"], act["is"])
        connection = raw.get("connection")
        return Node(
            name=name,
            type=kind,
            path=path,
            function=function or (str(source["function"]) if source.get("function") else None),
            inputs=inputs,
            connection=str(connection) if connection else None,
            api=str(raw.get("api") or "chat"),
            activate=activate,
            aggregation=raw.get("aggregation") is True,
            line=self.line(*here),
        )

    def variants(
        self, raw: Any, nodes: list[Node]
    ) -> tuple[dict[str, dict[str, Node]], dict[str, str]]:
        out: dict[str, dict[str, Node]] = {}
        defaults: dict[str, str] = {}
        by_name = {n.name: i for i, n in enumerate(nodes)}
        for node_name, spec in _mapping(raw).items():
            here: tuple[str | int, ...] = ("node_variants", node_name)
            if node_name not in by_name:
                raise self.fail(here, f"node_variants names {node_name!r}, which is no node")
            if not isinstance(spec, dict) or not isinstance(spec.get("variants"), dict):
                raise self.fail(here, "expected default_variant_id and variants")
            base = nodes[by_name[node_name]]
            out[node_name] = {}
            for vid, vspec in spec["variants"].items():
                raw_node = (vspec or {}).get("node") if isinstance(vspec, dict) else None
                merged = {"name": node_name, "type": base.type, **(raw_node or {})}
                out[node_name][str(vid)] = self.node(
                    merged, (*here, "variants", str(vid), "node"), variant=True
                )
            default = str(spec.get("default_variant_id") or next(iter(out[node_name])))
            if default not in out[node_name]:
                raise self.fail((*here, "default_variant_id"), f"no variant {default!r}")
            defaults[node_name] = default
            nodes[by_name[node_name]] = out[node_name][default]
        return out, defaults

    def check_ref(
        self,
        ref: Reference,
        inputs: set[str],
        nodes: set[str],
        where: tuple[str | int, ...],
        node: str | None,
    ) -> None:
        label = f"node {node!r}" if node else "the output"
        if ref.is_input:
            if not ref.path or ref.path[0] not in inputs:
                name = ref.path[0] if ref.path else ""
                declared = ", ".join(sorted(inputs))
                raise self.fail(
                    where,
                    f"{label} refers to the flow input {name!r}, which the flow does not "
                    f"declare (inputs: {declared})",
                )
        elif ref.source not in nodes:
            raise self.fail(where, f"{label} refers to {ref.source!r}, which is no node or input")

    def order(self, nodes: list[Node]) -> tuple[Node, ...]:
        done: list[Node] = []
        placed: set[str] = set()
        pending = list(nodes)
        while pending:
            ready = [n for n in pending if _dependencies(n) <= placed]
            if not ready:
                names = ", ".join(n.name for n in pending)
                raise FlowError(f"{self.file}: the nodes {names} depend on each other in a cycle")
            for node in ready:
                done.append(node)
                placed.add(node.name)
                pending.remove(node)
        return tuple(done)


def _mapping(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def _references(node: Node) -> list[tuple[Reference, tuple[str | int, ...]]]:
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


def _dependencies(node: Node) -> set[str]:
    return {ref.source for ref, _ in _references(node) if not ref.is_input}


def dependencies(node: Node) -> set[str]:
    """The nodes `node` reads from."""
    return _dependencies(node)
