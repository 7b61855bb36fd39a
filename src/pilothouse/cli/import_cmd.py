"""`pilothouse import promptflow FOLDER OUT`: a Prompt flow chat flow as a copilot folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pilothouse.cli.common import err, fail, out, print_json
from pilothouse.errors import PilothouseError

app = typer.Typer(help="Bring prompts and flows from other tools into Pilothouse.")


@app.command("promptflow")
def promptflow_command(
    folder: Annotated[Path, typer.Argument(help="the Prompt flow folder (flow.dag.yaml)")],
    target: Annotated[Path, typer.Argument(help="the new copilot folder (must not exist)")],
    as_json: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False,
) -> None:
    """Convert a chat flow that retrieves, prompts and answers into a copilot folder
    (instructions as Prompty, knowledge and tools wired); list what could not be
    converted (also written to OUT/IMPORT.md)."""
    from pilothouse.copilot.flow.importer import import_promptflow

    try:
        report = import_promptflow(folder, target)
    except PilothouseError as exc:
        fail(exc)
    if as_json:
        print_json(
            {
                "copilot": str(report.out),
                "converted": report.converted,
                "not_converted": report.not_converted,
            }
        )
        return
    out.print(f"copilot written to {report.out}", markup=False)
    for item in report.converted:
        out.print(f"  converted: {item}", markup=False)
    for item in report.not_converted:
        out.print(f"  NOT converted: {item}", markup=False)
    err.print(
        f"check it with: pilothouse copilot check {report.out} (the report is in IMPORT.md)",
        markup=False,
    )
