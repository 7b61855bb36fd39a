"""The files `pilothouse import promptflow` writes into the copilot folder (importer.py
decides what goes in them): prompts/instructions.prompty, copilot.yaml, and IMPORT.md,
the report of what was converted and what was not (`ImportReport`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pilothouse.copilot.flow.connections import ConnectionMap
from pilothouse.copilot.flow.definition import FlowDefinition, FlowError, Node

PARAMETERS = ("max_tokens", "temperature", "stop", "seed", "response_format")
"""The llm node's inputs that become the Prompty's `model.parameters`."""


@dataclass
class ImportReport:
    out: Path
    converted: list[str] = field(default_factory=list)
    not_converted: list[str] = field(default_factory=list)

    def markdown(self, source: Path) -> str:
        lines = [f"# Imported from Prompt flow: {source}", "", "## Converted", ""]
        lines += [f"- {item}" for item in self.converted] or ["- nothing"]
        lines += ["", "## Not converted", ""]
        lines += [f"- {item}" for item in self.not_converted] or ["- nothing"]
        return "\n".join(lines) + "\n"


def write_prompty(
    out: Path,
    flow: FlowDefinition,
    answer: Node,
    body: str,
    bindings: Mapping[str, str],
    report: ImportReport,
) -> None:
    """prompts/instructions.prompty: the answer node's template (`body`) under `{% set %}`
    lines that bind its variables (`bindings`), its model parameters in the front matter."""
    parameters = {k: answer.inputs[k] for k in PARAMETERS if k in answer.inputs}
    for name in ("top_p", "presence_penalty", "frequency_penalty", "logit_bias"):
        if name in answer.inputs:
            parameters[name] = answer.inputs[name]
            report.not_converted.append(
                f"node `{answer.name}` input `{name}`: kept in the Prompty, not sent "
                "(`pilothouse copilot show` lists it)"
            )
    front: dict[str, Any] = {
        "name": flow.name,
        "description": f"The answer node `{answer.name}` of the Prompt flow {flow.name}",
        "model": {"api": answer.api, **({"parameters": parameters} if parameters else {})},
        "inputs": {
            "question": {"type": "string"},
            "context": {"type": "string", "default": ""},
        },
    }
    sets = "".join(
        f"{{% set {name} = {expr} %}}\n"
        for name, expr in bindings.items()
        if name not in ("question", "context") or expr != name
    )
    text = "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True) + "---\n"
    target = out / "prompts" / "instructions.prompty"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text + sets + body.lstrip("\n"), encoding="utf-8")


def write_definition(
    out: Path,
    flow: FlowDefinition,
    answer: Node,
    knowledge: Mapping[str, Any] | None,
    tools: list[dict[str, Any]],
    evals: list[str],
    report: ImportReport,
) -> None:
    """copilot.yaml: the instructions, the model (from connections.yaml), knowledge,
    tools, memory and evals found."""
    name = re.sub(r"[^a-z0-9_-]+", "-", flow.name.lower()).strip("-_")[:63] or "imported"
    data: dict[str, Any] = {
        "name": name,
        "description": f"Imported from the Prompt flow {flow.name} (see IMPORT.md)",
        "instructions": "prompts/instructions.prompty",
    }
    deployment = answer.inputs.get("deployment_name") or answer.inputs.get("model")
    try:
        connections = ConnectionMap.load(flow.folder)
        model = connections.model_for(answer, str(deployment) if deployment else None, flow.file)
        data["model"] = {"primary": model}
        report.converted.append(
            f"connection `{answer.connection}`: model.primary {model} (connections.yaml)"
        )
    except FlowError:
        report.not_converted.append(
            f"connection `{answer.connection}`"
            f"{f' (deployment {deployment})' if deployment else ''}: no model mapped; the "
            "copilot answers with the data directory's default model (set model.primary)"
        )
    if knowledge is not None:
        data["knowledge"] = dict(knowledge)
    if tools:
        data["tools"] = tools
    data["memory"] = {"window": 6}
    if evals:
        data["evals"] = evals
    header = (
        f"# Imported from the Prompt flow {flow.folder} by `pilothouse import "
        "promptflow`;\n# IMPORT.md says what was converted and what was not.\n"
    )
    text = header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    (out / "copilot.yaml").write_text(text, encoding="utf-8")
