"""A copilot's tools, by name, with the resources they hold.

The runtime asks a `Toolset` for the specs to send to the model and calls tools by
name. A tool that needs approval is not run by `call` unless the caller says the
call was approved: the default is the safe one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from pilothouse.tools.base import Tool
from pilothouse.tools.errors import ToolConfigError
from pilothouse.tools.results import ToolResult
from pilothouse.tracing import Redactor
from pilothouse.types import ToolSpec

logger = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[None]]


class Toolset:
    """Tools by name. Close it (or use `async with`) to release connections and
    MCP server processes."""

    def __init__(
        self,
        tools: Iterable[Tool] = (),
        closers: Iterable[Closer] = (),
        *,
        redactor: Redactor | None = None,
    ):
        self._tools: dict[str, Tool] = {}
        self._closers: list[Closer] = list(closers)
        self.redactor = redactor
        """Masks the credentials the tools were configured with in every result (an
        upstream that echoes a token in its error body); set by `load_tools`."""
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ToolConfigError(
                f"two tools are named {tool.name!r}; give one source a `prefix` or rename it"
            )
        self._tools[tool.name] = tool

    def replace_tools(self, tools: Iterable[Tool]) -> None:
        """Swap the tools (e.g. renamed copies), keeping what must be closed."""
        self._tools = {}
        for tool in tools:
            self.add(tool)

    def add_closer(self, closer: Closer) -> None:
        self._closers.append(closer)

    def extend(self, other: Toolset) -> None:
        for tool in other:
            self.add(tool)
        self._closers.extend(other._closers)
        other._closers = []

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(tool.spec() for tool in self._tools.values())

    async def call(
        self, name: str, arguments: Mapping[str, Any] | None, *, approved: bool = False
    ) -> ToolResult:
        """Run tool `name`. Unknown tools and unapproved write actions come back as
        error results the model can read, never as exceptions."""
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self._tools)) or "none"
            return ToolResult.error(f"there is no tool named {name!r}; the tools are: {known}")
        if tool.requires_approval and not approved:
            return ToolResult.error(
                f"tool {name} changes data and needs a person's approval; it was not run"
            )
        result = await tool.call(arguments)
        if self.redactor is None or not self.redactor.has_secrets:
            return result
        return replace(
            result,
            content=self.redactor.scrub_text(result.content),
            data=self.redactor.scrub_value(result.data),
        )

    async def aclose(self) -> None:
        closers, self._closers = self._closers, []
        for closer in reversed(closers):
            try:
                await closer()
            except Exception:  # closing must release everything it can
                logger.warning("closing a tool source failed", exc_info=True)

    async def __aenter__(self) -> Toolset:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
