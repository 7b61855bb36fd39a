"""Run a Prompt flow: one line (`Flow.run`), or the lines of a data file and then the
aggregation nodes (`Flow.test`).

    flow = Flow.open("flows/web-classification", settings, model="local:qwen2.5-coder-1.5b")
    result = await flow.run({"url": "https://example.com"})
    result.outputs, result.bypassed
    await flow.aclose()

Nodes run in dependency order. A node whose `activate.when` does not equal
`activate.is` is bypassed (its output is None), and so is a node none of whose nodes it
reads from ran (Prompt flow's rule); a reference to a bypassed node gives None. Every
node is a span of the run's trace (kind `tool` for python nodes, `other` for the rest,
the model call a `model` span beneath its node).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pilothouse.config import Settings
from pilothouse.copilot.flow import compat
from pilothouse.copilot.flow.connections import ConnectionMap
from pilothouse.copilot.flow.data import typed_input
from pilothouse.copilot.flow.definition import (
    FlowDefinition,
    FlowError,
    Node,
    dependencies,
    parse_reference,
)
from pilothouse.copilot.flow.nodes import (
    check_llm_node,
    load_llm_prompt,
    load_python_node,
    not_sent,
    render_prompt_node,
    request_options,
    template_values,
)
from pilothouse.copilot.flow.reader import load_flow_definition
from pilothouse.copilot.flow.references import from_bypassed, reference_value
from pilothouse.copilot.traced_model import TracedModel
from pilothouse.errors import PilothouseError
from pilothouse.models.base import Model
from pilothouse.models.compose import build_model
from pilothouse.tracing import Tracer, current_span
from pilothouse.tracing import attributes as A
from pilothouse.types import ModelRequest, Usage


@dataclass
class FlowResult:
    outputs: dict[str, Any]
    nodes: dict[str, Any] = field(default_factory=dict)
    bypassed: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    run_id: str = ""


@dataclass
class TestReport:
    lines: list[FlowResult | str]
    """Each data line's result, or its error message."""
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return sum(1 for line in self.lines if isinstance(line, str))


class Flow:
    def __init__(
        self,
        definition: FlowDefinition,
        settings: Settings,
        *,
        connections: ConnectionMap,
        tracer: Tracer | None = None,
        models: Mapping[str, Model] | None = None,
        max_output_tokens: int | None = None,
        allow_code: bool = True,
    ):
        self.definition = definition
        self.settings = settings
        self.connections = connections
        self.tracer = tracer or Tracer()
        self.max_output_tokens = max_output_tokens
        self._models: dict[str, Model] = dict(models or {})
        self._owned: list[Model] = []
        self._python: dict[str, Any] = {}
        for node in self._all_nodes():
            if node.type == "python":
                if not allow_code:
                    raise FlowError(
                        f"{definition.file}:{node.line}: nodes.{node.name}: python nodes run "
                        "the flow's own code, which a flow from an upload may not bring "
                        "(docs/security.md); serve it from a folder given on the command line"
                    )
                self._python[node.name] = load_python_node(definition.file, node)
                self._check_connections(node)
            elif node.type == "llm":
                check_llm_node(definition.file, node)
                load_llm_prompt(definition.file, node, settings.environ)  # checked now

    def _check_connections(self, node: Node) -> None:
        """A python node's parameter typed as a connection names one connections.yaml
        defines (Prompt flow keeps them outside the flow; here they are in that file)."""
        function = self._python[node.name].func
        for name, parameter in inspect.signature(function).parameters.items():
            annotation = parameter.annotation
            label = (
                annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
            )
            if not str(label).endswith("Connection"):
                continue
            given = node.inputs.get(name)
            if isinstance(given, str) and self.connections.is_object(given):
                self.connections.settings_of(given, self.settings.environ)  # secrets set?
                continue
            where = self.connections.file or self.definition.folder / "connections.yaml"
            raise FlowError(
                f"{self.definition.file}:{node.line}: nodes.{node.name}: input {name!r} takes "
                f"a connection ({label}) and names {given!r}, which {where} does not define; "
                f"add `{given or name}: {{type: custom, configs: {{...}}, secrets: "
                "{key: ${env:NAME}}}` there"
            )

    @classmethod
    def open(
        cls,
        path: str | Path,
        settings: Settings,
        *,
        model: str | None = None,
        tracer: Tracer | None = None,
        models: Mapping[str, Model] | None = None,
        variants: Sequence[str] = (),
        max_output_tokens: int | None = None,
        allow_code: bool = True,
    ) -> Flow:
        """Load the flow folder at `path`. `model`: one model id for every llm node
        (else connections.yaml); `variants`: `node.variant_id` choices."""
        definition = load_flow_definition(path)
        for choice in variants:
            node, _, variant = choice.removeprefix("${").removesuffix("}").partition(".")
            definition = definition.with_variant(node, variant)
        connections = ConnectionMap.load(definition.folder, model)
        return cls(
            definition,
            settings,
            connections=connections,
            tracer=tracer,
            models=models,
            max_output_tokens=max_output_tokens,
            allow_code=allow_code,
        )

    def _all_nodes(self) -> list[Node]:
        extra = [v for vs in self.definition.variants.values() for v in vs.values()]
        return [*self.definition.nodes, *extra]

    @property
    def name(self) -> str:
        return self.definition.name

    async def aclose(self) -> None:
        for model in self._owned:
            await model.aclose()
        self._owned.clear()

    # --- inputs ---------------------------------------------------------------------

    def resolve_inputs(self, given: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        missing = []
        for spec in self.definition.inputs:
            if spec.name in given:
                values[spec.name] = typed_input(given[spec.name], spec.type)
            elif spec.has_default:
                values[spec.name] = spec.default
            elif spec.is_chat_history:
                values[spec.name] = []
            else:
                missing.append(spec.name)
        if missing:
            raise FlowError(
                f"{self.definition.file}: missing flow input(s) {', '.join(missing)}; "
                "give them with --input NAME=VALUE"
            )
        return values

    # --- one line -------------------------------------------------------------------

    async def run(self, inputs: Mapping[str, Any]) -> FlowResult:
        """One line through the flow (aggregation nodes are left to `test`)."""
        values = self.resolve_inputs(inputs)
        with self.tracer.span(f"flow {self.name}", kind="run", root=True) as span:
            span.update(
                {
                    A.AGENT_NAME: self.name,
                    A.RUN_QUESTION: self._shown(values, self.definition.chat_input()),
                    "pilothouse.flow.inputs": _json(values),
                }
            )
            result = FlowResult({}, run_id=span.trace_id)
            try:
                for node in self.definition.nodes:
                    if not node.aggregation:
                        await self._run_node(node, values, result)
            except BaseException:
                span.set(A.RUN_STATUS, "failed")
                raise
            result.outputs = {
                o.name: reference_value(o.reference, values, result.nodes)
                for o in self.definition.outputs
            }
            span.update(
                {
                    A.RUN_ANSWER: self._shown(result.outputs, self.definition.chat_output()),
                    A.RUN_STATUS: "completed",
                    "pilothouse.flow.outputs": _json(result.outputs),
                }
            )
        return result

    @staticmethod
    def _shown(values: Mapping[str, Any], chat: Any) -> str:
        """What `pilothouse runs` shows as the question (answer): the chat input (output),
        the one value, or all of them as JSON."""
        if chat is not None and chat.name in values:
            value = values[chat.name]
        elif len(values) == 1:
            value = next(iter(values.values()))
        else:
            value = dict(values)
        return value if isinstance(value, str) else _json(value)

    async def _run_node(self, node: Node, inputs: Mapping[str, Any], result: FlowResult) -> None:
        deps = dependencies(node)
        if node.activate is not None:
            when = reference_value(node.activate.when, inputs, result.nodes)
            skip = when != node.activate.is_
        else:
            skip = bool(deps) and all(d in result.bypassed for d in deps)
        with self.tracer.span(
            f"node {node.name}",
            kind="tool" if node.type == "python" else "other",
            attributes={"pilothouse.flow.node": node.name, "pilothouse.flow.node_type": node.type},
        ) as span:
            if skip:
                span.set("pilothouse.flow.bypassed", True)
                result.bypassed.append(node.name)
                result.nodes[node.name] = None
                return
            values = {
                k: reference_value(v, inputs, result.nodes)
                for k, v in node.inputs.items()
                if not (node.type == "python" and from_bypassed(v, result.bypassed))
            }  # a python input fed by a bypassed node takes its default (Prompt flow's rule)
            span.set("pilothouse.flow.node_inputs", _json(values))
            if node.type == "python":
                values = {k: self._connection_or(v) for k, v in values.items()}
            output = await self._execute(node, values, result)
            result.nodes[node.name] = output
            span.set("pilothouse.flow.node_output", _json(output))

    async def _execute(self, node: Node, values: dict[str, Any], result: FlowResult) -> Any:
        file = self.definition.file
        try:
            if node.type == "python":
                return await self._python[node.name].invoke(values)
            if node.type == "prompt":
                return render_prompt_node(file, node, values)
            return await self._llm(node, values, result)
        except FlowError:
            raise
        except PilothouseError as exc:
            raise FlowError(f"{file}:{node.line}: nodes.{node.name}: {exc}") from exc

    async def _llm(self, node: Node, values: dict[str, Any], result: FlowResult) -> str:
        prompty = load_llm_prompt(self.definition.file, node, self.settings.environ)
        messages = prompty.render(template_values(values))
        options = request_options(node, values, prompty)
        if self.max_output_tokens is not None:
            options["max_output_tokens"] = min(
                options.get("max_output_tokens") or self.max_output_tokens, self.max_output_tokens
            )
        deployment = values.get("deployment_name") or values.get("model")
        model_id = self.connections.model_for(
            node, str(deployment) if deployment else None, self.definition.file
        )
        model = self._model(model_id)
        response = await TracedModel(model, self.tracer).complete(
            ModelRequest(tuple(messages), **options)
        )
        result.usage = result.usage + response.usage
        skipped = not_sent(values)
        span = current_span()
        if skipped and span is not None:
            span.set("pilothouse.flow.not_sent", skipped)  # no request field carries them
        return response.text

    def _connection_or(self, value: Any) -> Any:
        """A literal naming a connection object: that object (secrets never traced)."""
        if isinstance(value, str) and self.connections.is_object(value):
            kind, found = self.connections.settings_of(value, self.settings.environ)
            return compat.connection(kind, found)
        return value

    def _model(self, model_id: str) -> Model:
        model = self._models.get(model_id)
        if model is None:
            model = build_model(model_id, self.settings)
            self._models[model_id] = model
            self._owned.append(model)
        return model

    # --- many lines -----------------------------------------------------------------

    async def test(self, rows: Sequence[Mapping[str, Any]]) -> TestReport:
        """Every row as one line (columns map to the inputs of the same name), then the
        aggregation nodes over all the lines (their inputs as lists)."""
        names = {i.name for i in self.definition.inputs}
        lines: list[FlowResult | str] = []
        for row in rows:
            try:
                lines.append(await self.run({k: v for k, v in row.items() if k in names}))
            except PilothouseError as exc:
                lines.append(str(exc))
        metrics: dict[str, Any] = {}
        done = [line for line in lines if isinstance(line, FlowResult)]
        for node in self.definition.nodes:
            if node.aggregation and done:
                metrics.update(await self._aggregate(node, rows, done))
        return TestReport(lines, metrics)

    async def _aggregate(
        self, node: Node, rows: Sequence[Mapping[str, Any]], lines: list[FlowResult]
    ) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        token = compat.METRICS.set(metrics)
        try:
            values: dict[str, Any] = {}
            for key, raw in node.inputs.items():
                if parse_reference(raw) is None:
                    values[key] = raw
                    continue
                values[key] = [
                    reference_value(raw, self.resolve_inputs(_known(row, self)), line.nodes)
                    for row, line in zip(rows, lines, strict=False)
                ]
            output = await self._execute(node, values, FlowResult({}))
        finally:
            compat.METRICS.reset(token)
        if isinstance(output, Mapping) and not metrics:
            metrics.update(output)
        return metrics


def _known(row: Mapping[str, Any], flow: Flow) -> dict[str, Any]:
    names = {i.name for i in flow.definition.inputs}
    return {k: v for k, v in row.items() if k in names}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)[:20_000]
