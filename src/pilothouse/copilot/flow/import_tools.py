"""A flow's python node as a copilot's Python tool: the file's code without the
`promptflow` import and `@tool` lines (a Pilothouse tool file needs neither), and the
node's function found without running the code."""

from __future__ import annotations

import ast
import re

_PROMPTFLOW_TOOL = re.compile(r"^from promptflow(?:\.core)? import tool\s*$|^@tool(?:\(.*\))?\s*$")


def tool_source(text: str, function: str | None) -> tuple[str, str | None, str]:
    """(the tool file's code, the function's name or None, why not when None)."""
    lines = text.splitlines()
    if any("promptflow" in line for line in lines if not _PROMPTFLOW_TOOL.match(line)):
        return (
            text,
            None,
            (
                "uses promptflow beyond @tool (connections, tracing); rewrite it as a Pilothouse "
                "tool (docs/tools.md)"
            ),
        )
    code = "\n".join(line for line in lines if not _PROMPTFLOW_TOOL.match(line)) + "\n"
    found = function or _tool_function(text)
    if found is None:
        return code, None, "has no single @tool function (or is not valid Python)"
    return code, found, ""


def _tool_function(text: str) -> str | None:
    """The @tool function of a node's file (or its only function)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    marked = [
        f
        for f in functions
        if any(
            (isinstance(d, ast.Name) and d.id == "tool")
            or (isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id == "tool")
            for d in f.decorator_list
        )
    ]
    chosen = marked or functions
    return chosen[0].name if len(chosen) == 1 else None
