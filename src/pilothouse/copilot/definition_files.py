"""The files copilot.yaml names, checked without running anything: prompts, variants,
evals, knowledge sources and Python tool files exist inside the copilot folder, and a
Python tool file defines the functions listed (read with `ast`, not imported).

Works on the raw YAML data, so these problems are reported together with the schema's
own, all at once.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any

from pilothouse.util.suggest import did_you_mean

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]


def file_problems(data: dict[str, Any], folder: Path, *, uploaded: bool = False) -> list[Problem]:
    """Every missing or misplaced file the definition names, with where it is named."""
    problems: list[Problem] = []
    named: list[tuple[Loc, Any]] = []
    instructions = data.get("instructions")
    if isinstance(instructions, str):
        text = instructions.strip()
        if text.endswith(".prompty") and "\n" not in text:
            named.append((("instructions",), text))
    model = data.get("model")
    variants = model.get("variants") if isinstance(model, dict) else None
    if isinstance(variants, dict):
        named += [(("model", "variants", str(k)), v) for k, v in variants.items()]
    evals = data.get("evals")
    if isinstance(evals, list):  # the short form: the suites
        named += [(("evals", i), p) for i, p in enumerate(evals)]
    elif isinstance(evals, dict):
        suites, rubrics = evals.get("suites"), evals.get("rubrics")
        if isinstance(suites, list):
            named += [(("evals", "suites", i), p) for i, p in enumerate(suites)]
        if isinstance(rubrics, dict):
            named += [(("evals", "rubrics", str(m)), p) for m, p in rubrics.items()]
    for loc, relative in named:
        if isinstance(relative, str):
            problem = _file_problem(folder, relative)
            if problem:
                problems.append((loc, problem))
    problems += _knowledge_problems(data.get("knowledge"), folder, uploaded)
    tools = data.get("tools")
    if isinstance(tools, list):
        for index, entry in enumerate(tools):
            problems += _python_tool_problems(entry, index, folder)
    return problems


def _file_problem(folder: Path, relative: str) -> str | None:
    target = (folder / relative).resolve()
    if not target.is_relative_to(folder.resolve()):
        return f"{relative} is outside the copilot folder"
    if not target.is_file():
        return f"file {relative} does not exist"
    return None


def _knowledge_problems(knowledge: Any, folder: Path, uploaded: bool) -> list[Problem]:
    if not isinstance(knowledge, dict):
        return []
    problems: list[Problem] = []
    allowed = knowledge.get("allow_outside_folder") is True
    if allowed and uploaded:
        problems.append(
            (
                ("knowledge", "allow_outside_folder"),
                "an uploaded copilot's knowledge stays in its folder; remove this field",
            )
        )
        allowed = False
    sources = knowledge.get("sources", ["knowledge"])
    if knowledge.get("grounding") == "off" or not isinstance(sources, list):
        return problems
    for index, source in enumerate(sources):
        if not isinstance(source, str):
            continue
        loc = ("knowledge", "sources", index)
        is_url = source.startswith(("http://", "https://"))
        if not allowed and not is_url and source_escapes(source, folder):
            problems.append(
                (
                    loc,
                    f"{source} is outside the copilot folder; knowledge sources stay inside "
                    "it" + ("" if uploaded else " (or set knowledge.allow_outside_folder: true)"),
                )
            )
        elif not any(ch in source for ch in "*?[") and not (folder / source).exists():
            problems.append((loc, f"{source} does not exist in {folder}"))  # globs may match later
    return problems


def source_escapes(source: str, folder: Path) -> bool:
    """Whether a knowledge source (a path or a glob, relative to `folder` or absolute,
    `~` expanded as ingestion does) can reach outside `folder` once links are resolved:
    its fixed part (up to the first glob character) resolves outside, or a `..` comes
    after a glob character."""
    parts = Path(os.path.expanduser(source)).parts
    fixed = next((i for i, part in enumerate(parts) if any(ch in part for ch in "*?[")), None)
    if fixed is not None and ".." in parts[fixed:]:
        return True
    head = Path(*parts[: len(parts) if fixed is None else fixed])
    root = folder.resolve()
    return not (folder / head).resolve().is_relative_to(root)


def _python_tool_problems(entry: Any, index: int, folder: Path) -> list[Problem]:
    if isinstance(entry, str) and not entry.startswith(("http://", "https://")):
        entry = {"python": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("python"), str):
        return []
    target: str = entry["python"]
    if not (target.endswith(".py") or "/" in target):
        return []  # a module on the import path: checked when it is imported
    missing = _file_problem(folder, target)
    if missing:
        return [(("tools", index, "python"), missing)]
    functions = entry.get("functions")
    if not isinstance(functions, list):
        return []
    defined = defined_names(folder / target)
    if isinstance(defined, str):
        return [(("tools", index, "python"), defined)]
    if defined is None:
        return []  # names made at run time (`from x import *`, `__getattr__`)
    return [
        (
            ("tools", index, "functions", position),
            f"{target} has no function {name!r}{did_you_mean(name, _public(defined))}",
        )
        for position, name in enumerate(functions)
        if isinstance(name, str) and ":" not in name and name not in defined
    ]


def _public(names: set[str]) -> list[str]:
    return sorted(n for n in names if not n.startswith("_"))


def defined_names(path: Path) -> set[str] | str | None:
    """The names a Python file defines at module level; None when some are made at run
    time or it defines no function at all; a message when it is not valid Python."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read {path.name}: {exc}"
    except SyntaxError as exc:
        return f"{path.name}:{exc.lineno}: not valid Python: {exc.msg}"
    names: set[str] = set()
    if not _collect(tree.body, names):
        return None
    if not any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in tree.body):
        return None  # not a module of tools (yet): importing it says what is wrong
    return names


def _collect(body: list[ast.stmt], names: set[str]) -> bool:
    """Add the names `body` binds; False when they cannot be known without running it."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == "__getattr__":
                return False
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return False
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.If | ast.Try | ast.With):
            blocks = [node.body, getattr(node, "orelse", []), getattr(node, "finalbody", [])]
            blocks += [h.body for h in getattr(node, "handlers", [])]
            if not all(_collect(block, names) for block in blocks):
                return False
    return True
