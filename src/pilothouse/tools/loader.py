"""Build a copilot's `Toolset` from the `tools:` list of its configuration.

    toolset = await load_tools(copilot_yaml["tools"], base_dir=copilot_folder,
                               settings=settings, source="copilot.yaml")

Each entry is loaded by its tool source (sources.py: the built-ins and any plugin) and
gets its own safe HTTP clients with its own network allow-list, so one source's
permission to reach an on-premise host is not another's. Then the options every entry
has (`only`, `prefix`, `approval`, `bindings`) are applied to its tools.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from pilothouse.config import Settings
from pilothouse.storage.secrets import redactor_for
from pilothouse.tools.base import Tool
from pilothouse.tools.config import BasicAuthConfig, SourceEntry
from pilothouse.tools.errors import ToolConfigError
from pilothouse.tools.http import ClientFactory
from pilothouse.tools.sources import SourceContext, load_source, parse_source_entry
from pilothouse.tools.toolset import Toolset
from pilothouse.tracing import Redactor


async def load_tools(
    entries: Sequence[Any] | None,
    base_dir: Path,
    settings: Settings | None = None,
    *,
    source: str = "copilot.yaml",
    client_factory: ClientFactory | None = None,
    locate: Callable[..., str] | None = None,
) -> Toolset:
    """All tools of a copilot. On any error, what was opened is closed again and a
    `ToolConfigError`/`ToolError` says which entry failed and why: `locate("tools", i)`
    names entry i in messages (a copilot passes `file:line: tools.i`), else
    `SOURCE: tools[i]`."""
    environ: Mapping[str, str] = settings.environ if settings is not None else os.environ
    factory = client_factory or ClientFactory()
    # The credentials of every entry are masked wherever they could be echoed back: in
    # results, in errors, and (through the settings' redactor) in logs, traces and rows.
    redactor = redactor_for(settings) if settings is not None else Redactor()
    toolset = Toolset(redactor=redactor)
    try:
        for index, raw in enumerate(entries or []):
            where = locate("tools", index) if locate else f"{source}: tools[{index}]"
            tool_source, entry = parse_source_entry(raw, index, environ, source, where)
            register_credentials(entry, redactor)
            context = SourceContext(
                base_dir, where, environ, factory, register_secret=lambda v: redactor.register([v])
            )
            part = await load_source(tool_source, entry, context)
            try:
                _apply_options(part, entry, where)
            except ToolConfigError:
                await part.aclose()
                raise
            toolset.extend(part)
    except BaseException as exc:
        await toolset.aclose()
        redactor.scrub_exception(exc)
        raise
    return toolset


def register_credentials(entry: BaseModel, redactor: Redactor) -> None:
    """Register every secret value of an entry (`SecretStr` fields anywhere in it:
    auth, headers, a stdio server's environment, secret bindings), and the Basic-auth
    header a user name and password make."""
    for value in _secret_fields(entry):
        redactor.register([value.get_secret_value()])
    auth = getattr(entry, "auth", None)
    if isinstance(auth, BasicAuthConfig):
        redactor.register_basic_auth(auth.username, auth.password.get_secret_value())


def _secret_fields(value: Any) -> list[SecretStr]:
    if isinstance(value, SecretStr):
        return [value]
    if isinstance(value, BaseModel):
        return [
            s for name in type(value).model_fields for s in _secret_fields(getattr(value, name))
        ]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _secret_fields(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _secret_fields(item)]
    return []


def _apply_options(part: Toolset, entry: SourceEntry, where: str) -> None:
    """`only`, `prefix`, `approval`, `grounded` and `bindings` of an entry, applied to
    its tools."""
    tools = list(part)
    names = {t.name for t in tools}
    if entry.only is not None:
        missing = sorted(set(entry.only) - names)
        if missing:
            raise ToolConfigError(
                f"{where}: `only` names unknown tools {', '.join(missing)}; the tools are: "
                f"{', '.join(sorted(names))}"
            )
        tools = [t for t in tools if t.name in entry.only]
    unknown = sorted(set(entry.approval) - names - {"*"})
    if unknown:
        raise ToolConfigError(f"{where}: `approval` names unknown tools {', '.join(unknown)}")
    grounded = entry.grounded if isinstance(entry.grounded, dict) else {"*": entry.grounded}
    unknown = sorted(set(grounded) - names - {"*"})
    if unknown:
        raise ToolConfigError(f"{where}: `grounded` names unknown tools {', '.join(unknown)}")
    bound_somewhere: set[str] = set()
    result: list[Tool] = []
    for tool in tools:
        approval = entry.approval.get(tool.name, entry.approval.get("*"))
        mode = grounded.get(tool.name, grounded.get("*"))
        props = tool.parameters.get("properties", {})
        bindings = {k: v for k, v in entry.bindings.items() if k in props}
        bound_somewhere.update(bindings)
        renamed = f"{entry.prefix}{tool.name}" if entry.prefix else None
        if renamed is None and approval is None and mode is None and not bindings:
            result.append(tool)
        else:
            result.append(
                tool.with_options(
                    name=renamed, requires_approval=approval, bindings=bindings, grounded=mode
                )
            )
    unused = sorted(set(entry.bindings) - bound_somewhere)
    if unused:
        raise ToolConfigError(
            f"{where}: bindings {', '.join(unused)} match no parameter of these tools"
        )
    part.replace_tools(result)
