"""What a copilot uploaded through the management API may bring: no code of its own.

A copilot folder given to `pilothouse serve PATH` was chosen by whoever runs the server,
and may hold anything. An uploaded one comes from a key holder, so its `tools:` may not
make the server run code it did not already have:

- `python: file.py` (or any path): its own Python, imported by the server: refused;
- `python: module` or `module:function`: an installed module: refused unless the module
  (or a package above it) is in `[server] upload_tool_modules` (without that, even
  `os:system` would become a tool);
- `mcp: {command: ...}`: a program the server would start: refused;
- `mcp: https://...`, `openapi`, `connector`: no code, allowed;
- any other tool source (a plugin's): refused, as it may run anything.

`pilothouse serve --allow-code-upload` (or `[server] allow_code_upload = true`) lifts
all of it, for set-ups where every copilots:write key is trusted with the server's
account.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pilothouse.config import ServerSettings
from pilothouse.errors import PilothouseError
from pilothouse.tools.sources import TOOL_SOURCES

_NO_CODE = frozenset({"openapi", "connector"})
HOW_TO_ALLOW = (
    "copilots uploaded through the API may not bring code: start the server with "
    "--allow-code-upload (or config.toml [server] allow_code_upload = true) if every "
    "key that can upload is trusted with the server's account, or list installed tool "
    "modules in [server] upload_tool_modules"
)


class CodeUploadRefused(PilothouseError):
    """An uploaded copilot would make the server run code it was not allowed to."""


@dataclass(frozen=True, slots=True)
class CodePolicy:
    """What uploaded copilots may run: everything (`allow_code`), or only the tools of
    the installed modules listed in `modules` (and their submodules)."""

    allow_code: bool = False
    modules: tuple[str, ...] = ()

    @classmethod
    def of(cls, server: ServerSettings, *, allow_code: bool | None = None) -> CodePolicy:
        allowed = server.allow_code_upload if allow_code is None else allow_code
        return cls(allowed, tuple(server.upload_tool_modules))

    def module_allowed(self, module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in self.modules)

    def problems(self, tools: Sequence[Any]) -> list[tuple[str, str]]:
        """(field, what is wrong) for each `tools:` entry that would run code."""
        if self.allow_code:
            return []
        found: list[tuple[str, str]] = []
        for index, raw in enumerate(tools):
            problem = self._problem(raw)
            if problem is not None:
                found.append((f"tools.{index}", problem))
        return found

    def check(self, tools: Sequence[Any], where: str) -> None:
        """CodeUploadRefused naming every entry that would run code."""
        found = self.problems(tools)
        if found:
            lines = "; ".join(f"{field}: {problem}" for field, problem in found)
            raise CodeUploadRefused(f"{where}: {lines} ({HOW_TO_ALLOW})")

    def _problem(self, raw: Any) -> str | None:
        if isinstance(raw, str):
            raw = {"openapi": raw} if raw.startswith(("http://", "https://")) else {"python": raw}
        if not isinstance(raw, dict):
            return None  # not a tool entry at all: the loader says what is wrong
        names = TOOL_SOURCES.names()
        for kind in [str(k) for k in raw if k in names]:
            value = raw[kind]
            if kind in _NO_CODE:
                continue
            if kind == "mcp":
                if isinstance(value, str):
                    continue  # an HTTP server elsewhere: no code here
                return "an MCP stdio server (`mcp: {command: ...}`) would start a program"
            if kind == "python":
                target = str(value)
                if target.endswith(".py") or "/" in target or "\\" in target:
                    return f"Python tools from {target!r} would run the upload's own code"
                module = target.split(":", 1)[0].strip()
                if self.module_allowed(module):
                    continue
                return (
                    f"Python tools from the module {module!r}, which is not in "
                    "[server] upload_tool_modules"
                )
            return f"the tool source {kind!r} may run code"
        return None
