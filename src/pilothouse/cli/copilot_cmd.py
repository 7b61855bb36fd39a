"""`pilothouse copilot schema|check|show`: the JSON Schema of copilot.yaml, a check of
a copilot folder that reports every problem at once, and the effective settings of its
requests (copilot.yaml merged with the instructions Prompty) with where each came from."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pilothouse.cli.common import err, fail, out, print_json, run, settings
from pilothouse.cli.completion import copilot_folders
from pilothouse.errors import PilothouseError

if TYPE_CHECKING:
    from pilothouse.copilot.prompt_settings import PromptSettings

app = typer.Typer(help="copilot.yaml: its JSON Schema, and checking a copilot folder.")


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of copilot.yaml (for editors: `pilothouse init` writes a
    `# yaml-language-server: $schema=...` line that points at it)."""
    from pilothouse.copilot.definition import json_schema

    print_json(json_schema())


@app.command("check")
def check(
    path: Annotated[
        Path, typer.Argument(help="the copilot folder", autocompletion=copilot_folders)
    ] = Path("."),
) -> None:
    """Check copilot.yaml and the files it names, tools included, without calling a
    model; every problem is listed as file:line: field: what is wrong."""
    from pilothouse.copilot.copilot_parts import load_copilot_tools, open_instructions
    from pilothouse.copilot.definition import load_definition

    config = settings()
    try:
        definition, folder = load_definition(path)
        instructions, merged = open_instructions(definition, folder, config)
        toolset, _ = run(load_copilot_tools(definition, folder, config, instructions, merged))
    except PilothouseError as exc:
        fail(exc)
    run(toolset.aclose())
    err.print(
        f"{folder / 'copilot.yaml'}: ok ({len(toolset)} tools: {', '.join(toolset.names)})",
        markup=False,
    )


@app.command("show")
def show(
    path: Annotated[
        Path, typer.Argument(help="the copilot folder", autocompletion=copilot_folders)
    ] = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="print it as JSON")] = False,
) -> None:
    """Print what the copilot's requests carry: model, options, structured output and
    tools, each with where it came from (copilot.yaml wins over the instructions
    Prompty, which wins over the defaults), and what the Prompty sets that is not applied."""
    from pilothouse.copilot.copilot_parts import load_copilot_tools, open_instructions
    from pilothouse.copilot.definition import load_definition

    config = settings()
    try:
        definition, folder = load_definition(path)
        instructions, merged = open_instructions(definition, folder, config)
        toolset, from_prompty = run(
            load_copilot_tools(definition, folder, config, instructions, merged)
        )
    except PilothouseError as exc:
        fail(exc)
    tools = [
        {"name": name, "source": _tool_source(name, from_prompty, merged)} for name in toolset.names
    ]
    run(toolset.aclose())
    data = _show_data(definition.name, merged, tools)
    if as_json:
        print_json(data)
        return
    out.print(f"copilot {definition.name} ({folder / 'copilot.yaml'})", markup=False)
    for name, item in data["fields"].items():
        value = item["value"]
        shown = "-" if value is None or value == [] else value
        note = f"  ({item['note']})" if item.get("note") else ""
        out.print(f"  {name}: {shown}  <- {item['source']}{note}", markup=False)
    out.print(f"  tools ({len(tools)}):", markup=False)
    for tool in tools:
        out.print(f"    {tool['name']}  <- {tool['source']}", markup=False)
    for note in data["not_applied"]:
        out.print(f"  not applied: {note}", markup=False)
    for name in data["unset_env"]:
        out.print(
            f"  note: the Prompty's connection names ${{env:{name}}}, which is not set "
            "(not used: copilot.yaml chooses the model)",
            markup=False,
        )


def _tool_source(name: str, from_prompty: list[str], merged: PromptSettings) -> str:
    if name in from_prompty:
        return str(merged.prompty_file)
    if name in merged.function_tools:
        return f"copilot.yaml (declared in {merged.prompty_file} too)"
    return "copilot.yaml"


def _show_data(name: str, merged: PromptSettings, tools: list[dict[str, str]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, setting in merged.fields.items():
        value = setting.value
        if key == "output_schema" and value is not None:
            value = value.schema
        elif isinstance(value, tuple):
            value = list(value)
        fields[key] = {"value": value, "source": setting.source, "note": setting.note}
    return {
        "copilot": name,
        "instructions": merged.prompty_file,
        "fields": fields,
        "tools": tools,
        "not_applied": list(merged.not_applied),
        "unset_env": list(merged.unset_env),
    }
