"""`pilothouse tools`: list a copilot's tools and call one by hand.

PATH is a copilot folder whose `copilot.yaml` has a `tools:` list (docs/tools.md).
A tool that changes data asks for confirmation first, unless `--yes` is given.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from pilothouse.cli.common import configure_logging, err, fail, out, run, settings

if TYPE_CHECKING:
    from pilothouse.tools import Toolset

app = typer.Typer(
    help="A copilot's tools (Python, OpenAPI, MCP, connectors): list them, call one.",
    no_args_is_help=True,
)

PathArg = Annotated[Path, typer.Argument(help="the copilot folder (holding copilot.yaml)")]


async def _open(folder: Path) -> Toolset:
    from pilothouse.copilot.definition import load_definition
    from pilothouse.tools.loader import load_tools

    definition, folder = load_definition(folder)
    return await load_tools(definition.tools, folder, settings(), locate=definition.locate)


@app.command("list")
def list_tools(
    path: PathArg,
    as_json: Annotated[bool, typer.Option("--json", help="print the specs as JSON")] = False,
) -> None:
    """List the tools the copilot's model will see. Warns where a description or
    parameter example holds a concrete identifier (SO-1001) that a model may copy
    into its calls, and suggests a placeholder (SO-NNNN)."""

    async def main() -> list[dict[str, Any]]:
        from pilothouse.tools.identifiers import concrete_identifiers

        async with await _open(path) as toolset:
            return [
                {
                    "name": tool.name,
                    "description": tool.spec().description,
                    "parameters": tool.spec().parameters,
                    "read_only": tool.read_only,
                    "requires_approval": tool.requires_approval,
                    "grounded": tool.grounded,
                    "warnings": [
                        found.warning()
                        for found in concrete_identifiers(
                            tool.name, tool.description, tool.parameters
                        )
                    ],
                }
                for tool in toolset
            ]

    path = path.resolve()
    tools = run(main())
    if as_json:
        out.print_json(json.dumps(tools))
        return
    if not tools:
        out.print("no tools configured")
        return
    table = Table("tool", "kind", "description", box=None, pad_edge=False)
    for tool in tools:
        kind = "read" if tool["read_only"] else "write"
        if tool["requires_approval"]:
            kind += ", approval"
        first_line = str(tool["description"]).splitlines()[0] if tool["description"] else ""
        table.add_row(escape(tool["name"]), kind, escape(first_line[:100]))
    out.print(table)
    for tool in tools:
        for warning in tool["warnings"]:
            err.print(f"[yellow]warning:[/] {escape(warning)}")


@app.command("call")
def call_tool(
    path: PathArg,
    tool: Annotated[str, typer.Argument(help="the tool's name")],
    args: Annotated[str, typer.Option("--args", help="the arguments as a JSON object")] = "{}",
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="approve a tool that changes data without asking")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the structured result")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="show a failing tool's traceback")
    ] = False,
) -> None:
    """Call one tool with JSON arguments, as the model would (after approval).

    A tool that fails prints its error (the text the model would read) and exits 1;
    --verbose also shows where in the tool's code it failed."""
    from pilothouse.tools.errors import ToolConfigError

    configure_logging(verbose)
    if not verbose:  # the error result below says it all, once
        logging.getLogger("pilothouse.tools").setLevel(logging.ERROR)
    try:
        arguments = json.loads(args)
    except json.JSONDecodeError as exc:
        fail(ToolConfigError(f"--args is not valid JSON: {exc}"))
    if not isinstance(arguments, dict):
        fail(ToolConfigError('--args must be a JSON object, e.g. \'{"issue_key": "OPS-1"}\''))

    path = path.resolve()

    async def main() -> tuple[bool, str, Any]:
        async with await _open(path) as toolset:
            found = toolset.get(tool)
            if found is None:
                known = ", ".join(sorted(toolset.names)) or "none"
                raise ToolConfigError(f"no tool named {tool!r}; the tools are: {known}")
            approved = False
            if found.requires_approval:
                if not yes:
                    err.print(
                        f"[bold]{escape(tool)}[/] changes data. Arguments:\n"
                        f"{escape(json.dumps(arguments, indent=2, ensure_ascii=False))}"
                    )
                    if not typer.confirm("Run it?", default=False, err=True):
                        return False, "not approved; nothing was done", None
                approved = True
            result = await toolset.call(tool, arguments, approved=approved)
            return not result.is_error, result.content, result.data

    ok, content, data = run(main())
    if as_json and data is not None:
        out.print_json(json.dumps(data, default=str))
    else:
        out.print(escape(content))
    if not ok:
        raise typer.Exit(1)
