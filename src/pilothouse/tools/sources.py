"""Sources of tools: the kinds of entry a copilot's `tools:` list may hold, as the
plugin family `pilothouse.tool_sources`.

An entry names its source by its key (`python: ...`, `openapi: ...`, `mcp: ...`,
`connector: ...`, or a plugin's own key). A `ToolSource` gives the pydantic model of
its entries (a subclass of `SourceEntry`, which holds the options every entry shares:
`prefix`, `only`, `approval`, `bindings`, `allow_network`, timeouts and budgets) and
an async `load(entry, context)` that returns the entry's tools. The built-ins
(builtin_sources.py) are declared in Pilothouse's pyproject.toml like any plugin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pilothouse.plugins import PluginError, Registry
from pilothouse.tools.base import Tool
from pilothouse.tools.config import SourceEntry, resolve_references
from pilothouse.tools.errors import ToolConfigError
from pilothouse.tools.http import ClientFactory, HttpLimits, SafeHttpClient
from pilothouse.tools.netpolicy import NetworkPolicy
from pilothouse.tools.toolset import Closer, Toolset


@dataclass(slots=True)
class SourceContext:
    """What a source needs to load one entry: the copilot folder (relative paths),
    where the entry is (for messages: `copilot.yaml: tools[2]`), the environment, and
    safe HTTP clients bound to the entry's network allow-list."""

    base_dir: Path
    where: str
    environ: Mapping[str, str]
    factory: ClientFactory = field(default_factory=ClientFactory)
    closers: list[Closer] = field(default_factory=list)
    # secrets a source only learns while running (an OAuth access token) are masked
    # like the configured ones from the moment they exist
    register_secret: Callable[[str], None] = lambda _value: None

    def http_client(self, entry: SourceEntry) -> SafeHttpClient:
        """A client that reaches only public addresses and the hosts in the entry's
        `allow_network`, with its timeouts and response limit; closed with the tools."""
        limits = HttpLimits(
            timeout_s=entry.timeout_s,
            connect_timeout_s=min(10.0, entry.timeout_s),
            max_response_bytes=entry.max_response_bytes,
        )
        client = self.factory(NetworkPolicy(allow=tuple(entry.allow_network)), limits)
        self.closers.append(client.aclose)
        return client


Load = Callable[[Any, SourceContext], Awaitable[Toolset | Sequence[Tool]]]


@dataclass(frozen=True, slots=True)
class ToolSource:
    """One kind of `tools:` entry. `entry` is its pydantic model: a `SourceEntry`
    subclass with a field named like the source's key; `load(entry, context)` returns
    its tools (a `Toolset` when it holds connections to close, else a list)."""

    entry: type[SourceEntry]
    load: Load
    description: str = ""


def as_tool_source(name: str, obj: object) -> ToolSource:
    if not isinstance(obj, ToolSource):
        raise TypeError(f"expected a pilothouse.tools.sources.ToolSource, got {type(obj).__name__}")
    if not (isinstance(obj.entry, type) and issubclass(obj.entry, SourceEntry)):
        raise TypeError("entry must be a subclass of pilothouse.tools.config.SourceEntry")
    if name not in obj.entry.model_fields:
        raise ValueError(f"its entry model {obj.entry.__name__} has no field named {name!r}")
    if name in SourceEntry.model_fields:
        raise ValueError(f"{name!r} is an option every entry has, not a source's key")
    return obj


TOOL_SOURCES: Registry[ToolSource] = Registry(
    "tool_sources", check=as_tool_source, kind="tool source"
)
"""Tool sources by key (`python`, `openapi`, `mcp`, `connector`, ...)."""


async def load_source(source: ToolSource, entry: SourceEntry, context: SourceContext) -> Toolset:
    """The entry's tools as a `Toolset` that also closes the clients the source made."""
    try:
        loaded = await source.load(entry, context)
    except BaseException:
        for close in reversed(context.closers):
            await close()
        raise
    if isinstance(loaded, Toolset):
        for close in context.closers:
            loaded.add_closer(close)
        return loaded
    part = Toolset(closers=context.closers)
    try:
        for tool in loaded:
            part.add(tool)
    except BaseException:
        await part.aclose()
        raise
    return part


def parse_source_entry(
    raw: Any, index: int, environ: Mapping[str, str], source: str, where: str | None = None
) -> tuple[ToolSource, SourceEntry]:
    """One `tools:` entry and its source, with `${env:NAME}` references resolved. A
    string is shorthand: a URL for `openapi`, anything else for `python`. `where` names
    the entry in messages (default `SOURCE: tools[INDEX]`)."""
    where = where or f"{source}: tools[{index}]"
    if isinstance(raw, str):
        raw = {"openapi": raw} if raw.startswith(("http://", "https://")) else {"python": raw}
    if not isinstance(raw, dict):
        raise ToolConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    names = TOOL_SOURCES.names()
    kinds = [key for key in raw if key in names]
    if len(kinds) != 1:
        strange = [str(k) for k in raw if k not in SourceEntry.model_fields and k not in names]
        hint = (
            f"; {', '.join(strange)} is no installed tool source (`pilothouse plugins "
            "tool_sources` lists them)"
            if strange and not kinds
            else ""
        )
        raise ToolConfigError(
            f"{where}: an entry needs exactly one of {', '.join(names)} (found "
            f"{', '.join(kinds) or 'none'}){hint}"
        )
    try:
        tool_source = TOOL_SOURCES.get(kinds[0])
    except PluginError as exc:
        raise ToolConfigError(f"{where}: {exc}") from None
    resolved = resolve_references(raw, environ, where)
    try:
        entry = tool_source.entry.model_validate(resolved)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise ToolConfigError(f"{where} ({kinds[0]}): {problems}") from None
    return tool_source, entry


def parse_entry(raw: Any, index: int, environ: Mapping[str, str], source: str) -> SourceEntry:
    """One `tools:` entry (see `parse_source_entry`)."""
    return parse_source_entry(raw, index, environ, source)[1]
