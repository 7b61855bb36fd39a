"""How each kind of node runs.

- `llm`: the node's template (a Jinja2 file with `# system:`/`# user:` markers, read as
  generation A Prompty: Prompt flow's `trim_blocks`, its role escaping, the nonce
  defence; or a `.prompty` file of any generation) is rendered with the node's inputs
  and sent to the node's model; the answer's text is the output. `max_tokens`,
  `temperature`, `stop`, `seed` and `response_format: {type: json_object}` go into the
  request; `deployment_name`/`model` choose the model through connections.yaml;
  function calling (`tools`, `functions`) is refused when the flow opens.
- `prompt`: the Jinja2 template rendered to text (Prompt flow's whitespace).
- `python`: the `@tool` function of the node's file in the flow folder, called with
  the node's inputs under the contract of Pilothouse's Python tools (plain functions in
  a worker thread, arguments validated from the type hints, a failure an error naming
  the node).
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pilothouse.copilot.flow import compat
from pilothouse.copilot.flow.definition import FlowError, Node
from pilothouse.copilot.prompty import Prompty, PromptyError, load_prompty
from pilothouse.copilot.prompty.document import Locator, PromptyDocument
from pilothouse.copilot.prompty.errors import PromptyReferenceError
from pilothouse.copilot.prompty.generations import build_definition
from pilothouse.copilot.prompty.references import safe_path
from pilothouse.copilot.prompty.render import CompiledTemplate
from pilothouse.tools.python import PythonTool
from pilothouse.types import OutputSchema

MODEL_PARAMETERS = frozenset(
    {
        "deployment_name",
        "model",
        "temperature",
        "max_tokens",
        "top_p",
        "stop",
        "seed",
        "response_format",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "user",
        "suffix",
        "echo",
        "n",
        "best_of",
        "logprobs",
        "tools",
        "tool_choice",
        "functions",
        "function_call",
        "detail",
    }
)
_NOT_SENT = ("top_p", "presence_penalty", "frequency_penalty", "logit_bias")
_FUNCTION_CALLING = ("tools", "functions", "tool_choice", "function_call")


def node_file(flow_file: Path, node: Node) -> Path:
    """The node's source file, inside the flow folder (the `${file:}` rules)."""
    try:
        return safe_path(node.path or "", flow_file.parent)
    except PromptyReferenceError as exc:
        raise _fail(flow_file, node, f"source.path: {exc.detail}") from None


def _fail(flow_file: Path, node: Node, message: str) -> FlowError:
    return FlowError(f"{flow_file}:{node.line}: nodes.{node.name}: {message}")


# --- llm and prompt ---------------------------------------------------------------------


def check_llm_node(flow_file: Path, node: Node) -> None:
    """Refuse what an llm node would silently lose: function calling (the node's output
    would be an answer, not the tool calls the flow's next nodes read)."""
    for name in _FUNCTION_CALLING:
        if node.inputs.get(name) is not None:
            raise _fail(
                flow_file,
                node,
                f"input {name!r}: function calling in an llm node is not supported (its "
                "output would be text, not the tool calls the flow reads); write the flow "
                "as a copilot with these functions as tools (docs/migrating.md)",
            )


def load_llm_prompt(flow_file: Path, node: Node, environ: Mapping[str, str]) -> Prompty:
    """The node's template as a Prompty: a `.prompty` file as it is, a Jinja2 template
    as a generation A body with no front matter."""
    file = node_file(flow_file, node)
    if file.suffix == ".prompty":
        return load_prompty(file, environ=environ)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _fail(flow_file, node, f"{node.path} is not UTF-8 text") from None
    front = {"model": {"api": node.api}}
    document = PromptyDocument(front, text, None, 1, Locator(file))
    definition = build_definition(
        document, base_dir=file.parent, environ=environ, name=node.name, generation="A"
    )
    return Prompty(document, definition, path=file, base_dir=file.parent)


def request_options(node: Node, values: Mapping[str, Any], prompty: Prompty) -> dict[str, Any]:
    """The request fields of an llm node: the Prompty's own options, then the node's."""
    options = dict(prompty.definition.model.options.request_fields())
    options.pop("parallel_tool_calls", None)
    if values.get("temperature") is not None:
        options["temperature"] = float(values["temperature"])
    if values.get("max_tokens") is not None:
        options["max_output_tokens"] = int(values["max_tokens"])
    stop = values.get("stop")
    if stop:
        options["stop"] = tuple(stop) if isinstance(stop, list | tuple) else (str(stop),)
    if values.get("seed") is not None:
        options["seed"] = int(values["seed"])
    response_format = (
        values.get("response_format") or prompty.definition.model.options.response_format
    )
    schema = prompty.definition.structured_output()
    if schema is not None:
        options["output_schema"] = schema
    elif isinstance(response_format, Mapping) and response_format.get("type") == "json_object":
        options["output_schema"] = OutputSchema(
            {"type": "object"}, name="json_object", strict=False
        )
    return options


def template_values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in MODEL_PARAMETERS}


def render_prompt_node(flow_file: Path, node: Node, values: Mapping[str, Any]) -> str:
    """A `prompt` node's text."""
    file = node_file(flow_file, node)
    try:
        template = CompiledTemplate(
            file.read_text(encoding="utf-8"),
            fmt="jinja2",
            roles=(),
            path=file,
            first_line=1,
            mark=False,
            trim_blocks=True,
            folder=file.parent,
        )
        return template.render(dict(values), "")
    except PromptyError as exc:
        raise _fail(flow_file, node, exc.detail) from None


# --- python ---------------------------------------------------------------------------


def load_python_node(flow_file: Path, node: Node) -> PythonTool:
    """The node's function as a Python tool."""
    compat.install()
    file = node_file(flow_file, node)
    module_name = f"pilothouse_flow_{abs(hash(str(file)))}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, file)
        if spec is None or spec.loader is None:
            raise _fail(flow_file, node, f"cannot load {node.path} as Python")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        folder = str(file.parent)
        added = folder not in sys.path
        if added:
            sys.path.insert(0, folder)  # the node's own imports of its neighbours
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(module_name, None)
            raise _fail(
                flow_file, node, f"{node.path} failed to load: {type(exc).__name__}: {exc}"
            ) from None
        finally:
            if added:
                sys.path.remove(folder)
    function = _find_function(module, node, flow_file)
    return PythonTool(function, name=node.name, read_only=True)


def _find_function(module: Any, node: Node, flow_file: Path) -> Callable[..., Any]:
    if node.function:
        found = getattr(module, node.function, None)
        if not callable(found):
            raise _fail(flow_file, node, f"{node.path} has no function {node.function!r}")
        return found  # type: ignore[no-any-return]
    own = [
        value
        for value in vars(module).values()
        if inspect.isfunction(value) and value.__module__ == module.__name__
    ]
    marked = [f for f in own if getattr(f, compat.TOOL_MARK, False) or hasattr(f, "__tool")]
    if len(marked) == 1:
        return marked[0]
    if not marked and len(own) == 1:
        return own[0]
    names = ", ".join(f.__name__ for f in (marked or own)) or "none"
    raise _fail(
        flow_file,
        node,
        f"{node.path} must define one @tool function (found: {names}); name it as "
        f"source.path: {node.path}:function",
    )


def not_sent(values: Mapping[str, Any]) -> list[str]:
    """The node's model parameters a Pilothouse request does not carry."""
    return [name for name in _NOT_SENT if values.get(name) is not None]
