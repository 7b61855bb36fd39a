"""A Prompty as a runnable unit: render it, call a model, run its tools, parse its
structured output.

    result = run_prompty("summarize.prompty", {"text": "..."})            # sync
    result = await arun_prompty("summarize.prompty", {"text": "..."}, model="openai:gpt-4o")
    result.text, result.output, result.model

The model is `model` when given, else the file's own `model:` mapped to a Pilothouse
id (`prompty.model_id`), else the data directory's default. The request carries the
file's options (temperature, output limit, stop, seed), its outputs as structured
output (or `response_format: json_object` as a JSON object), and its tools: function
tools run when `tools` gives their implementation (bindings applied), MCP and OpenAPI
tools through the tools layer. When the model calls a function nobody implements, the
run stops and returns the calls (as the Prompty runtimes do).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pilothouse.config import Settings
from pilothouse.copilot.prompt_settings import prompty_output_schema, tool_entry
from pilothouse.copilot.prompty import Prompty, PromptyError, load_prompty
from pilothouse.copilot.prompty.model_id import prompty_model_id
from pilothouse.errors import PilothouseError
from pilothouse.models.base import Model
from pilothouse.models.compose import build_model
from pilothouse.models.providers import PROVIDERS
from pilothouse.tools.loader import load_tools
from pilothouse.tools.python import PythonTool
from pilothouse.tools.toolset import Toolset
from pilothouse.types import (
    Message,
    ModelRequest,
    ModelResponse,
    StreamEnd,
    StreamError,
    TextDelta,
    ToolCallPart,
    ToolResultPart,
    Usage,
)

MAX_TOOL_STEPS = 5


@dataclass(frozen=True)
class PromptyResult:
    """What a Prompty run produced."""

    text: str
    output: Any = None
    """The parsed JSON when the file asks for structured output (None otherwise)."""
    model: str = ""
    usage: Usage = field(default_factory=Usage)
    tool_calls: tuple[ToolCallPart, ...] = ()
    """Calls the model made that no implementation answered (the run stopped there)."""
    messages: tuple[Message, ...] = ()
    """The whole conversation: the rendered prompt, tool turns and the answer."""


def model_for(prompty: Prompty, model: str | None, settings: Settings) -> str:
    """The Pilothouse model id that answers `prompty` (see the module docstring)."""
    return model or prompty_model_id(prompty, PROVIDERS.names()) or settings.default_model


def with_sample(prompty: Prompty, inputs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Generation A's `sample` inputs under the given ones (Prompt flow's test default)."""
    sample = prompty.definition.sample
    base = dict(sample) if isinstance(sample, Mapping) else {}
    return {**base, **(inputs or {})}


def build_request(prompty: Prompty, inputs: Mapping[str, Any], toolset: Toolset) -> ModelRequest:
    options = prompty.definition.model.options
    # Function tools nobody implements are declared too: the model may call them, and
    # the run then returns those calls to the caller.
    declared = tuple(s for s in prompty.definition.tool_specs() if s.name not in toolset)
    return ModelRequest(
        messages=tuple(prompty.render(inputs)),
        tools=(*(toolset.specs() if len(toolset) else ()), *declared),
        output_schema=prompty_output_schema(prompty),
        **options.request_fields(),
    )


async def stream_prompty(
    prompty: Prompty | str | Path,
    inputs: Mapping[str, Any] | None = None,
    *,
    model: str | Model | None = None,
    settings: Settings | None = None,
    tools: Mapping[str, Callable[..., Any]] | None = None,
    max_steps: int = MAX_TOOL_STEPS,
) -> AsyncIterator[TextDelta | PromptyResult]:
    """The answer's text as it comes (`TextDelta`), then the `PromptyResult`."""
    config = settings or _settings()
    loaded = (
        prompty if isinstance(prompty, Prompty) else load_prompty(prompty, environ=config.environ)
    )
    values = with_sample(loaded, inputs)
    own: Model | None = None
    if isinstance(model, Model):
        chosen = model
    else:
        own = chosen = build_model(model_for(loaded, model, config), config)
    toolset = await _toolset(loaded, values, tools or {}, config)
    try:
        request = build_request(loaded, values, toolset)
        messages = list(request.messages)
        usage = Usage()
        for step in range(max_steps + 1):
            response: ModelResponse | None = None
            async for event in chosen.stream(replace(request, messages=tuple(messages))):
                if isinstance(event, TextDelta):
                    yield event
                elif isinstance(event, StreamEnd):
                    response = event.response
                elif isinstance(event, StreamError):
                    raise event.error
            if response is None:
                raise PilothouseError("the model's answer ended without a result")
            usage = usage + response.usage
            messages.append(response.message)
            calls = response.tool_calls
            unanswered = [c for c in calls if c.name not in toolset]
            if not calls or unanswered or step == max_steps:
                yield _result(loaded, response, usage, tuple(calls), messages)
                return
            results = [await _call(toolset, call) for call in calls]
            messages.append(Message.tool(*results))
    finally:
        await toolset.aclose()
        if own is not None:
            await own.aclose()


async def arun_prompty(
    prompty: Prompty | str | Path,
    inputs: Mapping[str, Any] | None = None,
    **options: Any,
) -> PromptyResult:
    """The whole result of `stream_prompty`."""
    async for item in stream_prompty(prompty, inputs, **options):
        if isinstance(item, PromptyResult):
            return item
    raise PilothouseError("the Prompty run ended without a result")


def run_prompty(
    prompty: Prompty | str | Path,
    inputs: Mapping[str, Any] | None = None,
    **options: Any,
) -> PromptyResult:
    """`arun_prompty` for scripts without an event loop."""
    return asyncio.run(arun_prompty(prompty, inputs, **options))


def _settings() -> Settings:
    from pilothouse.storage import load_settings

    return load_settings()


def _result(
    prompty: Prompty,
    response: ModelResponse,
    usage: Usage,
    calls: tuple[ToolCallPart, ...],
    messages: list[Message],
) -> PromptyResult:
    output = None
    if prompty_output_schema(prompty) is not None and not calls:
        try:
            output = json.loads(response.text)
        except json.JSONDecodeError as exc:
            raise PromptyError(
                f"the model's answer is not the JSON the outputs ask for ({exc.msg}): "
                f"{response.text[:200]!r}",
                path=prompty.path,
                field="outputs",
            ) from None
    return PromptyResult(response.text, output, response.model, usage, calls, tuple(messages))


async def _toolset(
    prompty: Prompty,
    inputs: Mapping[str, Any],
    implementations: Mapping[str, Callable[..., Any]],
    settings: Settings,
) -> Toolset:
    entries = [
        tool_entry(prompty, i, t)
        for i, t in enumerate(prompty.definition.tools)
        if t.kind != "function"
    ]
    toolset = await load_tools(entries, prompty.base_dir, settings, source=str(prompty.path))
    for tool in prompty.definition.tools:
        function = implementations.get(tool.name)
        if tool.kind != "function" or function is None:
            continue
        toolset.add(_BoundTool(tool, function, inputs))
    return toolset


class _BoundTool(PythonTool):
    """A Prompty function tool: the file's schema for the model, the caller's function,
    and the file's bindings applied on top of what the model sends."""

    def __init__(self, declared: Any, function: Callable[..., Any], inputs: Mapping[str, Any]):
        super().__init__(function, name=declared.name, read_only=True)
        spec = declared.spec()
        self.description = spec.description or self.description
        self.parameters = spec.parameters
        self._declared = declared
        self._inputs = dict(inputs)

    async def invoke(self, arguments: dict[str, Any]) -> Any:
        return await super().invoke(self._declared.bind_arguments(arguments, self._inputs))


async def _call(toolset: Toolset, call: ToolCallPart) -> ToolResultPart:
    tool = toolset.get(call.name)
    assert tool is not None
    try:
        value = await tool.invoke(dict(call.arguments))
    except Exception as exc:  # a tool failure goes back to the model as an error result
        return ToolResultPart(call.id, call.name, f"{type(exc).__name__}: {exc}", True)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return ToolResultPart(call.id, call.name, text)
