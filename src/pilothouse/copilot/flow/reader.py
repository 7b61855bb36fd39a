"""Read and check a `flow.dag.yaml` before anything runs: every node's references name
an input or a node, every node has a supported type and source, the graph has no
cycle. A feature Pilothouse does not run is an error naming the file, the line, the
node and the feature; read leniently (`strict=False`, for the importer), such a node is
kept with its `problem` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pilothouse.copilot.flow.definition import (
    FLOW_FILE,
    NODE_TYPES,
    Activate,
    FlowDefinition,
    FlowError,
    FlowInput,
    FlowOutput,
    Node,
    Reference,
    dependencies,
    parse_reference,
    references,
)
from pilothouse.util.yaml_limits import YamlLimitError
from pilothouse.util.yaml_positions import load_with_positions

_UNSUPPORTED_TOP = {
    "additional_includes": "list the files inside the flow folder instead",
}


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


def load_flow_definition(path: Path | str, *, strict: bool = True) -> FlowDefinition:
    """Read and check the flow at `path` (a folder or its flow.dag.yaml). `strict=False`
    keeps the nodes Pilothouse cannot run (with their `problem`) instead of failing."""
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
    reader = _Reader(file, positions, strict=strict)
    return reader.flow(data)


class _Reader:
    def __init__(self, file: Path, positions: Mapping[Any, int], *, strict: bool = True):
        self.file = file
        self.positions = positions
        self.strict = strict

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
            for ref, where in references(node):
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
        source = raw.get("source") or {}
        if not isinstance(source, dict):
            raise self.fail((*here, "source"), f"{label}: source must be a mapping")
        source_type = str(source.get("type") or "code")
        path = source.get("path")
        function = None
        tool = str(source["tool"]) if source.get("tool") else None
        problem: FlowError | None = None
        if kind not in NODE_TYPES:
            problem = self.fail(
                (*here, "type"),
                f"{label} is of type {kind!r}, which Pilothouse does not run (it runs llm, "
                "prompt and python nodes); rewrite it as a python node",
            )
        elif source_type != "code":
            problem = self.fail(
                (*here, "source", "type"),
                f"{label} uses the packaged tool {tool!r} (source type {source_type}), which "
                "Pilothouse does not ship; write it as a python node with a @tool function "
                "in the flow folder",
            )
        elif not isinstance(path, str) or not path:
            problem = self.fail((*here, "source", "path"), f"{label} needs source.path")
        if problem is not None and self.strict:
            raise problem
        if not isinstance(path, str):
            path = None
        if path and ":" in path and kind == "python":
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
            tool=tool,
            problem=str(problem) if problem is not None else None,
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
            ready = [n for n in pending if dependencies(n) <= placed]
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
