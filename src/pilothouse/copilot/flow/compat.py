"""What a Prompt flow Python node imports from `promptflow`, when promptflow itself is
not installed: `tool`, `trace`, `log_metric`, `ToolProvider`, the connection classes and
`PromptTemplate`, under `promptflow`, `promptflow.core`, `promptflow.tracing`,
`promptflow.connections`, `promptflow.contracts.types` and `promptflow._internal`.

The modules are registered once per process, and only when `promptflow` cannot be
imported (an installed promptflow is used as it is). `@tool` marks a function so the
node finds it; `log_metric` records into the metrics of the aggregation being run.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

TOOL_MARK = "__pilothouse_flow_tool__"
METRICS: ContextVar[dict[str, Any] | None] = ContextVar("pilothouse_flow_metrics", default=None)


def tool(func: Callable[..., Any] | None = None, /, **_: Any) -> Any:
    """`@tool` or `@tool(name=...)`: marks the node's function."""

    def mark(f: Callable[..., Any]) -> Callable[..., Any]:
        setattr(f, TOOL_MARK, True)
        return f

    return mark(func) if func is not None else mark


def trace(func: Callable[..., Any]) -> Callable[..., Any]:
    return func


def log_metric(key: str, value: Any, variant_id: str | None = None) -> None:
    metrics = METRICS.get()
    if metrics is not None:
        metrics[key] = value


class ToolProvider:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass


class _Connection(dict[str, Any]):
    """A connection object: its settings as keys and attributes."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(settings)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:  # settings hold secrets: never shown
        return f"{type(self).__name__}({', '.join(self)})"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """Passed to the node's function as it is (the tool contract validates the rest)."""
        from pydantic_core import core_schema

        return core_schema.is_instance_schema(_Connection)

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict[str, Any]:
        return {"type": "object"}


class CustomConnection(_Connection):
    pass


class AzureOpenAIConnection(_Connection):
    pass


class OpenAIConnection(_Connection):
    pass


class CustomStrongTypeConnection(_Connection):
    pass


CONNECTION_TYPES: dict[str, type[_Connection]] = {
    "custom": CustomConnection,
    "azure_open_ai": AzureOpenAIConnection,
    "open_ai": OpenAIConnection,
}


def connection(kind: str, settings: dict[str, Any]) -> Any:
    """A connection object of Prompt flow's `type` (custom when unknown)."""
    return CONNECTION_TYPES.get(kind.lower().replace("-", "_"), CustomConnection)(**settings)


def install() -> None:
    """Register the stand-in modules unless promptflow is importable."""
    if "promptflow" in sys.modules or importlib.util.find_spec("promptflow") is not None:
        return
    names = {
        "tool": tool,
        "trace": trace,
        "log_metric": log_metric,
        "ToolProvider": ToolProvider,
        "PromptTemplate": str,
        "CustomConnection": CustomConnection,
        "AzureOpenAIConnection": AzureOpenAIConnection,
        "OpenAIConnection": OpenAIConnection,
        "CustomStrongTypeConnection": CustomStrongTypeConnection,
    }
    for module_name in (
        "promptflow",
        "promptflow.core",
        "promptflow.tracing",
        "promptflow.connections",
        "promptflow.contracts",
        "promptflow.contracts.types",
        "promptflow._internal",
    ):
        module = types.ModuleType(module_name)
        module.__dict__.update(names)
        module.__path__ = []  # a package, so its submodules import
        sys.modules[module_name] = module
