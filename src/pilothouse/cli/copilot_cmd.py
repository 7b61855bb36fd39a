"""`pilothouse copilot schema|check`: the JSON Schema of copilot.yaml, and a check of
a copilot folder that reports every problem at once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pilothouse.cli.common import err, fail, print_json, run, settings
from pilothouse.cli.completion import copilot_folders
from pilothouse.copilot.definition import json_schema, load_definition
from pilothouse.errors import PilothouseError
from pilothouse.tools.loader import load_tools

app = typer.Typer(help="copilot.yaml: its JSON Schema, and checking a copilot folder.")


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of copilot.yaml (for editors: `pilothouse init` writes a
    `# yaml-language-server: $schema=...` line that points at it)."""
    print_json(json_schema())


@app.command("check")
def check(
    path: Annotated[
        Path, typer.Argument(help="the copilot folder", autocompletion=copilot_folders)
    ] = Path("."),
) -> None:
    """Check copilot.yaml and the files it names, tools included, without calling a
    model; every problem is listed as file:line: field: what is wrong."""
    config = settings()
    try:
        definition, folder = load_definition(path)
        toolset = run(load_tools(definition.tools, folder, config, locate=definition.locate))
    except PilothouseError as exc:
        fail(exc)
    run(toolset.aclose())
    err.print(
        f"{folder / 'copilot.yaml'}: ok ({len(toolset)} tools: {', '.join(toolset.names)})",
        markup=False,
    )
