"""Prompty compatibility on a corpus of public files: how many load and render in
Pilothouse, and how many renderings equal the upstream Python runtime's.

Three steps, each run with the Python that has the runtime it needs (the upstream
runtimes are not Pilothouse dependencies; install each in its own virtual environment),
M being benchmarks/prompty_compat/measure.py:

    .venv/bin/python $M pilothouse CORPUS out/ph.json    # load, render, write the inputs
    PF/bin/python $M upstream promptflow CORPUS out/ph.json out/pf.json  # promptflow-core
    P1/bin/python $M upstream prompty CORPUS out/ph.json out/p1.json     # prompty 1.0.0b3
    P2/bin/python $M upstream prompty CORPUS out/ph.json out/p2.json     # prompty 2.1.0
    python3 $M compare out/ph.json out/pf.json out/p1.json out/p2.json   # the figures

Every `${env:NAME}` a file names is set to a stand-in value in every runtime (the
corpus tests the format, not a shell). Inputs: the file's `sample` (A) or its
defaults and examples, then a stand-in text (`value of NAME`) for each string input
left, `[]` for lists, `{}` for objects, a two-message conversation for threads. A file
is compared with the runtime of its generation (as Pilothouse detects it):
promptflow-core 1.18.5 for A (when its loader refuses the file, for a `connection:` it
cannot resolve without its connection store, its renderer alone renders the body),
prompty 1.0.0b3 (the runtime of the intermediate schema) for B, prompty 2.1.0 for C.
Messages are equal when their roles and texts are equal (a runtime that leaves a
`thread` placeholder for its execution step is not comparable), "equal ignoring
whitespace" when they are equal once every run of whitespace is one space. The script
prints one line per file and the totals.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
MISSING: Any = None
THREAD = [{"role": "user", "content": "Hi there."}, {"role": "assistant", "content": "Hello!"}]
_UPSTREAM_FOR = {"A": "promptflow", "B": "prompty1", "C": "prompty2"}


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(corpus.rglob("*.prompty"))


def stand_in_environ(text: str) -> dict[str, str]:
    return {name: f"https://stand-in.example/{name.lower()}" for name in _ENV.findall(text)}


# --- 1. Pilothouse ----------------------------------------------------------------------


def pilothouse(corpus: Path, out: Path) -> None:
    global MISSING
    from pilothouse.copilot.prompty import PromptyDocument, detect_generation, load_prompty
    from pilothouse.copilot.prompty.properties import MISSING

    results = {}
    for file in corpus_files(corpus):
        key = str(file.relative_to(corpus))
        environ = stand_in_environ(file.read_text(encoding="utf-8", errors="replace"))
        entry: dict[str, Any] = {"environ": environ}
        try:
            prompty = load_prompty(file, environ=environ)
        except Exception as exc:  # every failure is a figure
            entry["load_error"] = f"{type(exc).__name__}: {exc}"[:300]
            try:  # which upstream runtime to ask whether it loads the file
                document = PromptyDocument.parse(file.read_text(encoding="utf-8"), file)
                entry["generation"] = detect_generation(document.front_matter, document.fence)
            except Exception:
                pass
            results[key] = entry
            continue
        entry["generation"] = prompty.generation
        inputs = _inputs(prompty)
        entry["inputs"] = inputs
        try:
            messages = prompty.render(inputs)
            entry["messages"] = [[m.role, m.text] for m in messages]
        except Exception as exc:
            entry["render_error"] = f"{type(exc).__name__}: {exc}"[:300]
        results[key] = entry
    out.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")


def _inputs(prompty: Any) -> dict[str, Any]:
    definition = prompty.definition
    sample = definition.sample if isinstance(definition.sample, dict) else {}
    values: dict[str, Any] = {}
    for spec in definition.inputs:
        if spec.name in sample:
            values[spec.name] = sample[spec.name]
        elif spec.has_default:
            values[spec.name] = spec.default
        elif spec.example is not MISSING:
            values[spec.name] = spec.example
        elif spec.kind == "thread":
            values[spec.name] = THREAD
        elif spec.kind == "array":
            values[spec.name] = []
        elif spec.kind == "object":
            values[spec.name] = {}
        else:
            values[spec.name] = f"value of {spec.name}"
    for name, value in sample.items():
        values.setdefault(name, value)
    return json.loads(json.dumps(values, default=str))


# --- 2. upstream ------------------------------------------------------------------------


def upstream(runtime: str, corpus: Path, ours: Path, out: Path) -> None:
    mine = json.loads(ours.read_text(encoding="utf-8"))
    results: dict[str, Any] = {"runtime": _runtime_name(runtime), "files": {}}
    wanted = results["runtime"]
    for key, entry in mine.items():
        if _UPSTREAM_FOR.get(entry.get("generation", "")) != wanted:
            continue
        file = corpus / key
        os.environ.update(entry.get("environ", {}))
        got: dict[str, Any] = {}
        try:
            got["messages"] = _render_upstream(runtime, file, entry.get("inputs", {}))
        except Exception as exc:
            got["error"] = f"{type(exc).__name__}: {exc}"[:300]
        results["files"][key] = got
    out.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")


def _runtime_name(runtime: str) -> str:
    if runtime == "promptflow":
        return "promptflow"
    from importlib.metadata import version

    return f"prompty{min(2, int(version('prompty').split('.')[0]))}"


def _render_upstream(runtime: str, file: Path, inputs: dict[str, Any]) -> list[list[str]]:
    if runtime == "promptflow":
        from promptflow.core import Prompty as PFPrompty
        from promptflow.core._prompty_utils import convert_prompt_template

        try:
            flow = PFPrompty.load(source=file)
            template, api = flow._template, flow._model.api
            values = flow._resolve_inputs(inputs)
        except Exception:  # its loader wants a connection store: the renderer alone
            import yaml

            match = re.match(r"^-{3,}\n(.*?)\n-{3,}\n(.*)$", file.read_text("utf-8"), re.S)
            if match is None:
                raise
            front = yaml.safe_load(match[1]) or {}
            template, api = match[2], (front.get("model") or {}).get("api", "chat")
            values = inputs
        messages = convert_prompt_template(template, values, api)
        if isinstance(messages, str):  # api: completion
            return [["user", messages]]
        return [[m["role"], _text(m.get("content"))] for m in messages]
    import prompty

    loaded = prompty.load(str(file))
    if hasattr(prompty, "TextPart"):  # 2.x: a thread is a list of Message objects
        inputs = {
            k: [prompty.Message(role=m["role"], parts=[prompty.TextPart(value=m["content"])])
                for m in v] if v == THREAD else v
            for k, v in inputs.items()
        }  # fmt: skip
    prepared = prompty.prepare(loaded, inputs)
    return [[_role(m), _text(m.text if hasattr(m, "text") else m)] for m in prepared]


def _role(message: Any) -> str:
    return str(message["role"] if isinstance(message, dict) else message.role)


def _text(content: Any) -> str:
    if isinstance(content, dict):
        content = content.get("content")
    if isinstance(content, list):
        return "".join(
            part.get("text", "") if isinstance(part, dict) else str(part) for part in content
        )
    return "" if content is None else str(content)


# --- 3. the figures ---------------------------------------------------------------------


def compare(ours: Path, theirs: list[Path]) -> None:
    mine = json.loads(ours.read_text(encoding="utf-8"))
    upstream_files: dict[str, dict[str, Any]] = {}
    for path in theirs:
        data = json.loads(path.read_text(encoding="utf-8"))
        upstream_files.update(data["files"])
    totals = {"files": 0, "load": 0, "render": 0, "comparable": 0, "equal": 0, "equal_ws": 0}
    by_generation: dict[str, int] = {}
    for key, entry in sorted(mine.items()):
        totals["files"] += 1
        status = "load-error"
        other = upstream_files.get(key, {})
        if "load_error" in entry:
            status += " (upstream too)" if "messages" not in other else " (upstream renders)"
        else:
            totals["load"] += 1
            by_generation[entry["generation"]] = by_generation.get(entry["generation"], 0) + 1
            status = "render-error"
        if "messages" in entry:
            totals["render"] += 1
            status = "rendered"
            if any(role == "thread" for role, _ in other.get("messages", [])):
                status = "not comparable (upstream keeps a thread placeholder)"
            elif "messages" in other:
                totals["comparable"] += 1
                if _norm(entry["messages"], False) == _norm(other["messages"], False):
                    totals["equal"] += 1
                    status = "equal"
                elif _norm(entry["messages"], True) == _norm(other["messages"], True):
                    totals["equal_ws"] += 1
                    status = "equal-ignoring-whitespace"
                else:
                    status = "different"
            elif "error" in other:
                status = "rendered (upstream fails: " + other["error"][:80] + ")"
        detail = entry.get("load_error") or entry.get("render_error") or ""
        print(f"{entry.get('generation', '?')} {status:28} {key}  {detail[:120]}")
    print(json.dumps({**totals, "generations": by_generation}))


def _norm(messages: list[list[str]], whitespace: bool) -> list[tuple[str, str]]:
    out = []
    for role, text in messages:
        text = " ".join(text.split()) if whitespace else text.strip()
        out.append((role.lower(), text))
    return out


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "pilothouse":
        pilothouse(Path(args[0]), Path(args[1]))
    elif command == "upstream":
        upstream(args[0], Path(args[1]), Path(args[2]), Path(args[3]))
    elif command == "compare":
        compare(Path(args[0]), [Path(a) for a in args[1:]])
    else:
        raise SystemExit(__doc__)
