"""Python functions as tools.

    from pilothouse.tools import tool

    @tool(read_only=True)
    async def order_status(order_id: str, include_lines: bool = False) -> dict:
        '''Look up an order.

        Args:
            order_id: The order number, e.g. "SO-1042".
            include_lines: Also return the order lines.
        '''

Plain (non-async) functions run in a worker thread so they cannot stall the event
loop. An exception from the function comes back to the model as an error result
naming the exception; its traceback goes to the log.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, overload

import pydantic
import pydantic_core

from pilothouse.tools.base import Tool, safe_tool_name
from pilothouse.tools.errors import ToolArgumentsError, ToolConfigError, ToolError
from pilothouse.tools.identifiers import GroundedMode
from pilothouse.tools.schema import function_schema
from pilothouse.util.suggest import did_you_mean

logger = logging.getLogger(__name__)


class PythonTool(Tool):
    """A tool that calls a Python function (sync or async)."""

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        read_only: bool = False,
        requires_approval: bool | None = None,
        grounded: GroundedMode = "strict",
    ):
        schema = function_schema(func, description=description)
        super().__init__(
            name=name or safe_tool_name(getattr(func, "__name__", "tool")),
            description=schema.description or f"Call {getattr(func, '__name__', 'the function')}.",
            parameters=schema.parameters,
            read_only=read_only,
            requires_approval=requires_approval,
            grounded=grounded,
        )
        self.func = func
        self._model = schema.model
        self._is_async = inspect.iscoroutinefunction(func)

    async def invoke(self, arguments: dict[str, Any]) -> Any:
        try:
            values = self._model.model_validate(arguments)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'/'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ToolArgumentsError(f"invalid arguments for {self.name}: {problems}") from None
        kwargs = {field: getattr(values, field) for field in type(values).model_fields}
        try:
            if self._is_async:
                result = await self.func(**kwargs)
            else:
                result = await asyncio.to_thread(self.func, **kwargs)
        except ToolError:
            raise
        except Exception as exc:
            logger.warning("python tool %s raised", self.name, exc_info=True)
            raise ToolError(f"{self.name} failed: {type(exc).__name__}: {exc}") from exc
        return _jsonable(result)


def _jsonable(value: Any) -> Any:
    """The function's return value as JSON data (models, dataclasses, enums, dates)."""
    return pydantic_core.to_jsonable_python(value, fallback=str)


@overload
def tool(func: Callable[..., Any], /) -> PythonTool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    read_only: bool = False,
    requires_approval: bool | None = None,
    grounded: GroundedMode = "strict",
) -> Callable[[Callable[..., Any]], PythonTool]: ...


def tool(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    read_only: bool = False,
    requires_approval: bool | None = None,
    grounded: GroundedMode = "strict",
) -> PythonTool | Callable[[Callable[..., Any]], PythonTool]:
    """Make a function a tool; use bare (`@tool`) or with options. A tool that is not
    `read_only` requires approval unless `requires_approval=False` is given.
    `grounded` ("strict", "warn" or "off") says how a copilot checks identifying
    arguments (ids, emails, keys) against what the user said before the call runs;
    mark a parameter with `Annotated[str, Field(json_schema_extra={"x-pilothouse-
    grounded": True})]` to declare it identifying (False: never checked)."""

    def wrap(f: Callable[..., Any]) -> PythonTool:
        return PythonTool(
            f,
            name=name,
            description=description,
            read_only=read_only,
            requires_approval=requires_approval,
            grounded=grounded,
        )

    return wrap(func) if func is not None else wrap


def load_python_tools(
    *, functions: list[str], module: str | None, file: str | None, base_dir: Path
) -> list[Tool]:
    """Tools for `functions` ("name" within `module`/`file`, or "package.module:name").

    A `file` must lie inside the copilot folder (`base_dir`). Plain functions become
    tools that are neither read-only nor exempt from approval; decorate them with
    `@tool(read_only=True)` to say otherwise.
    """
    loaded: Any = None
    if file is not None:
        loaded = _load_file(file, base_dir)
    elif module is not None:
        loaded = _import(module)
    tools: list[Tool] = []
    for ref in functions:
        owner = loaded
        attr = ref
        if ":" in ref:
            mod_name, attr = ref.split(":", 1)
            owner = _import(mod_name)
        if owner is None:
            raise ToolConfigError(
                f"python tool {ref!r}: say where it is (`module`, `file`, or 'package.module:name')"
            )
        target = getattr(owner, attr, None)
        if target is None:
            # A file is named as written in copilot.yaml, never by its internal module name.
            place = file if file is not None and owner is loaded else owner.__name__
            public = [n for n in dir(owner) if not n.startswith("_")]
            raise ToolConfigError(f"{place} has no function {attr!r}{did_you_mean(attr, public)}")
        if isinstance(target, Tool):
            tools.append(target)
        elif callable(target):
            tools.append(PythonTool(target))
        else:
            raise ToolConfigError(f"python tool {ref!r} is not a function")
    return tools


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ToolConfigError(f"python tools: cannot import module {name!r}: {exc}") from None


def _load_file(file: str, base_dir: Path) -> Any:
    root = base_dir.resolve()
    path = (root / file).resolve()
    if not path.is_relative_to(root):
        raise ToolConfigError(
            f"file {file!r} is outside the copilot folder {root}; keep tool code inside it"
        )
    if not path.is_file():
        raise ToolConfigError(f"file {file} does not exist ({path})")
    module_name = f"pilothouse_copilot_tools_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ToolConfigError(f"cannot load {file} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise ToolConfigError(f"{file} failed to load: {type(exc).__name__}: {exc}") from None
    return module
