"""`pilothouse import promptflow FOLDER OUT`: a chat flow that is "retrieve, prompt,
answer" becomes a copilot folder.

- The answer is the llm node behind the flow's chat output (or its one output). Its
  template becomes `prompts/instructions.prompty` (generation A, so it renders with
  Prompt flow's whitespace), its model parameters (`max_tokens`, `temperature`, `stop`,
  `seed`, `response_format`) the Prompty's `model.parameters`. When the template only
  passes on a `prompt` node's text (`{{prompt_text}}`), that node's template is used.
  The template's own variable names are kept: `{% set %}` lines at the top bind them
  to what a copilot's instructions receive (`question`, `context`); the chat-history
  loop renders nothing (`chat_history` defaults to `[]`) because the copilot's memory
  puts the earlier turns between the system message and the question.
- Retrieval: the nodes the answer reads from are replaced by the copilot's knowledge
  retrieval over the documents found in the flow folder's subfolders (copied to
  `knowledge/`; a literal `top_k` is kept). Without documents, the python functions of
  those nodes become tools the model may call.
- Python nodes outside the answer's path become tools (copied to `tools/`, the
  `promptflow` import and `@tool` lines taken out).
- The model comes from connections.yaml when the flow has one.
- data.jsonl's lines with an expected answer become `evals/data.yaml` (import_data.py).

Everything else is listed in the report (`IMPORT.md` in OUT, and returned): what was
converted, and what was not, node by node, with why. The files are written by
import_files.py.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from pilothouse.copilot.flow.data import read_rows
from pilothouse.copilot.flow.definition import (
    FlowDefinition,
    FlowError,
    Node,
    dependencies,
    parse_reference,
)
from pilothouse.copilot.flow.import_data import EXPECTED_COLUMNS, suite_from_rows
from pilothouse.copilot.flow.import_files import ImportReport, write_definition, write_prompty
from pilothouse.copilot.flow.import_tools import tool_source
from pilothouse.copilot.flow.nodes import MODEL_PARAMETERS, node_file
from pilothouse.copilot.flow.reader import load_flow_definition

_ONLY_VARIABLE = re.compile(r"^\s*(?:#?\s*(?:system|user)\s*:\s*)?\{\{\s*(\w+)\s*\}\}\s*$", re.I)
_FLOW_FILES = {"flow.dag.yaml", "connections.yaml", "data.jsonl", "requirements.txt"}


def import_promptflow(source: Path | str, out: Path | str) -> ImportReport:
    """Write the copilot folder `out` from the chat flow at `source`; raises FlowError
    when the flow is not one this converts (the message says why)."""
    source, out = Path(source), Path(out)
    definition = load_flow_definition(source, strict=False)
    if out.exists() and any(out.iterdir()):
        raise FlowError(f"{out}: not empty; give a new folder for the copilot")
    return _Importer(definition, out).run()


class _Importer:
    def __init__(self, definition: FlowDefinition, out: Path):
        self.flow = definition
        self.out = out
        self.report = ImportReport(out)
        self.nodes = {n.name: n for n in definition.nodes}
        self.used_inputs: set[str] = set()

    def fail(self, message: str) -> FlowError:
        return FlowError(f"{self.flow.file}: {message}; `pilothouse import promptflow` converts "
                         "a chat flow that retrieves, prompts and answers")  # fmt: skip

    def run(self) -> ImportReport:
        question = self.question_input()
        answer = self.answer_node()
        path = self.ancestors(answer)
        prompt_node, body = self.template(answer)
        if prompt_node is not None:
            path.discard(prompt_node.name)
        documents = self.documents()
        self.out.mkdir(parents=True, exist_ok=True)
        knowledge = self.retrieval(path, documents)
        bindings = self.bindings(prompt_node or answer, question, path)
        tools = self.tools(path, answer, prompt_node, with_knowledge=knowledge is not None)
        write_prompty(self.out, self.flow, answer, body, bindings, self.report)
        evals = self.evals(question)
        write_definition(self.out, self.flow, answer, knowledge, tools, evals, self.report)
        for item in self.flow.inputs:
            unused = item.name not in self.used_inputs
            if item.name != question and not item.is_chat_history and unused:
                self.report.not_converted.append(
                    f"flow input `{item.name}`: a copilot takes the question only; the "
                    "instructions use its default"
                )
        (self.out / "IMPORT.md").write_text(self.report.markdown(self.flow.folder), "utf-8")
        return self.report

    # --- the graph ------------------------------------------------------------------

    def question_input(self) -> str:
        chat = self.flow.chat_input()
        if chat is not None:
            return chat.name
        plain = [i for i in self.flow.inputs if not i.is_chat_history]
        if len(plain) == 1:
            return plain[0].name
        raise self.fail("the flow has no chat input (is_chat_input: true)")

    def answer_node(self) -> Node:
        output = self.flow.chat_output()
        if output is None and len(self.flow.outputs) == 1:
            output = self.flow.outputs[0]
        ref = parse_reference(output.reference) if output is not None else None
        if ref is None or ref.is_input or ref.source not in self.nodes:
            raise self.fail("the flow has no chat output (is_chat_output: true) from a node")
        node = self.nodes[ref.source]
        if node.type != "llm" or node.problem:
            raise self.fail(
                f"the answer comes from node {node.name!r} ({node.type}), not an llm node"
            )
        self.report.converted.append(
            f"node `{node.name}` (llm): the copilot's instructions, prompts/instructions.prompty"
        )
        return node

    def ancestors(self, node: Node) -> set[str]:
        found: set[str] = set()
        pending = [node]
        while pending:
            for value in pending.pop().inputs.values():
                ref = parse_reference(value)
                if ref is not None and not ref.is_input and ref.source not in found:
                    found.add(ref.source)
                    pending.append(self.nodes[ref.source])
        return found

    def template(self, answer: Node) -> tuple[Node | None, str]:
        """The answer's template text, or the prompt node's it only passes on."""
        text = _read(node_file(self.flow.file, answer))
        if answer.path and answer.path.endswith(".prompty"):
            raise self.fail(
                f"node {answer.name!r} is a .prompty file: use it as the copilot's instructions "
                "as it is (copilot.yaml `instructions:`)"
            )
        match = _ONLY_VARIABLE.match(text)
        ref = parse_reference(answer.inputs.get(match[1])) if match else None
        source = self.nodes.get(ref.source) if ref is not None else None
        if source is not None and source.type == "prompt" and not source.problem:
            self.report.converted.append(
                f"node `{source.name}` (prompt): its template is the instructions' body"
            )
            return source, _read(node_file(self.flow.file, source))
        return None, text

    def documents(self) -> list[Path]:
        from pilothouse.knowledge.loaders import suffix_table

        suffixes = set(suffix_table())
        found = []
        for path in sorted(self.flow.folder.rglob("*")):
            relative = path.relative_to(self.flow.folder)
            if (
                path.is_file()
                and len(relative.parts) > 1
                and path.suffix.lower() in suffixes
                and not any(p.startswith((".", "__")) for p in relative.parts)
                and path.name not in _FLOW_FILES
            ):
                found.append(path)
        return found

    # --- the parts ------------------------------------------------------------------

    def retrieval(self, path: set[str], documents: list[Path]) -> dict[str, Any] | None:
        top_k = next(
            (
                v
                for name in sorted(path)
                for k, v in self.nodes[name].inputs.items()
                if k in ("top_k", "topK", "k") and isinstance(v, int)
            ),
            None,
        )
        for name in sorted(path):
            node = self.nodes[name]
            kind = f"{node.type}, {node.tool}" if node.tool else node.type
            if documents:
                self.report.converted.append(
                    f"node `{name}` ({kind}): replaced by the copilot's retrieval over knowledge/"
                )
            elif node.type != "python" or node.problem:
                searched = node.inputs.get("path")
                self.report.not_converted.append(
                    f"node `{name}` ({kind}): no documents in the flow folder to index; put "
                    "the source documents in knowledge/"
                    + (f" (the flow searched {searched})" if searched else "")
                )
        if not documents:
            return None
        for document in documents:
            target = self.out / "knowledge" / document.relative_to(self.flow.folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(document, target)
        self.report.converted.append(
            f"{len(documents)} document(s) from the flow folder: knowledge/ (hybrid retrieval"
            f"{f', top_k {top_k}' if top_k else ''}; indexed when the copilot opens)"
        )
        retrieval: dict[str, Any] = {"mode": "hybrid"}
        if top_k:
            retrieval["top_k"] = max(1, min(50, top_k))
        return {"sources": ["knowledge"], "retrieval": retrieval, "grounding": "prefer"}

    def bindings(self, node: Node, question: str, path: set[str]) -> dict[str, str]:
        """Template variable -> Jinja expression over what a copilot's instructions get."""
        bound: dict[str, str] = {}
        context_taken = False
        history = self.flow.chat_history()
        for name, value in node.inputs.items():
            if name in MODEL_PARAMETERS:
                continue
            ref = parse_reference(value)
            if ref is None:
                bound[name] = json.dumps(value, ensure_ascii=False)
            elif ref.is_input and ref.path[:1] == (question,):
                bound[name] = "question"
            elif ref.is_input and history is not None and ref.path[:1] == (history.name,):
                bound[name] = "[]"  # the copilot's memory carries the turns
                self.report.converted.append(
                    f"chat history `{history.name}`: the copilot's memory (conversation window)"
                )
            elif ref.is_input:
                spec = next(i for i in self.flow.inputs if i.name == ref.path[0])
                bound[name] = json.dumps(spec.default, ensure_ascii=False)
                self.used_inputs.add(spec.name)
                self.report.not_converted.append(
                    f"flow input `{spec.name}`: a copilot takes the question only; the "
                    f"instructions use its default {spec.default!r} (edit the `{{% set %}}` line)"
                )
            elif not context_taken:
                bound[name] = "context"
                context_taken = True
            else:
                bound[name] = '""'
                self.report.not_converted.append(
                    f"template variable `{name}` of node `{node.name}` (from `{ref.source}`): "
                    "a copilot passes one context; it renders empty"
                )
        return bound

    def tools(
        self, path: set[str], answer: Node, prompt_node: Node | None, *, with_knowledge: bool
    ) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        skip = {answer.name, *(n.name for n in [prompt_node] if n)}
        for node in self.flow.nodes:
            if node.name in skip or (node.name in path and with_knowledge):
                continue
            if node.type != "python" or node.problem or node.aggregation:
                if node.name not in path:
                    why = node.problem or f"{node.type} node outside the answer's path"
                    self.report.not_converted.append(f"node `{node.name}`: {why}")
                continue
            fed_by = sorted(dependencies(node))
            if node.name in path and fed_by:
                self.report.not_converted.append(
                    f"node `{node.name}` (python): reads the output of {', '.join(fed_by)}; "
                    "the copilot formats its passages itself"
                )
                continue
            file = node_file(self.flow.file, node)
            code, function, problem = tool_source(_read(file), node.function)
            if function is None:
                why = f"node `{node.name}` (python): {file.name} {problem}"
                self.report.not_converted.append(why)
                continue
            target = self.out / "tools" / file.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(code, encoding="utf-8")
            entries.append({"python": f"tools/{file.name}", "functions": [function]})
            self.report.converted.append(
                f"node `{node.name}` (python): the tool `{function}` (tools/{file.name}); the "
                "model calls it when it needs to (the flow ran it on every question); each "
                "call waits for approval, as a tool not marked read-only does: if it changes "
                f"nothing, add `approval: {{{function}: false}}` to its entry"
            )
        return entries

    def evals(self, question: str) -> list[str]:
        """data.jsonl's lines with an expected answer as evals/data.yaml."""
        data = self.flow.folder / "data.jsonl"
        if not data.is_file():
            return []
        found = suite_from_rows(read_rows(data), question, self.flow.name, "data.jsonl")
        if found.text is None:
            self.report.not_converted.append(
                f"data.jsonl: no line has both `{question}` and an expected answer (a column "
                f"{', '.join(EXPECTED_COLUMNS)}); write the expectations in evals/ "
                "(docs/evals.md)"
            )
            return []
        (self.out / "evals").mkdir(exist_ok=True)
        (self.out / "evals" / "data.yaml").write_text(found.text, encoding="utf-8")
        self.report.converted.append(
            f"data.jsonl: evals/data.yaml, {found.cases} case(s) whose reference is the "
            f"`{found.column}` column (`pilothouse eval {self.out}` scores them)"
        )
        if found.skipped:
            self.report.not_converted.append(
                f"data.jsonl: {found.skipped} line(s) without both a question and an answer"
            )
        return ["evals/data.yaml"]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowError(f"{path}: cannot read: {exc}") from None
