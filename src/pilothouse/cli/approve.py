"""`pilothouse approve PATH RUN_ID --yes|--no`: decide on the tool calls of a run that
paused for approval, then let it finish."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pilothouse.cli.common import ApproveOption, configure_logging, run


def approve_command(
    path: Annotated[Path, typer.Argument(help="the copilot folder the run belongs to")],
    run_id: Annotated[str, typer.Argument(help="the paused run's id (or its first characters)")],
    approve: ApproveOption = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="use this model id instead (repeat for a chain)"),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="answer only, no footer")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="more logging")] = False,
) -> None:
    """Decide on the tool calls of a run paused for approval, then let it finish.

    `pilothouse ask` exits with 3 and prints this command when a run pauses."""
    from pilothouse.cli.copilot_run import approve_run

    configure_logging(verbose)
    raise typer.Exit(run(approve_run(path, run_id, approve, model, quiet, as_json)))
