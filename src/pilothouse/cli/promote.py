"""`pilothouse promote PATH --to MODEL` and `pilothouse promotion status|approve|abort|
list`: moving a copilot to another model through offline gates, shadow traffic and
canary steps (docs/promotion.md).

`promote` checks everything first (the policy, the models and their keys, the suites,
one promotion per copilot), runs the offline stage here, then leaves shadow and canary
to the server that serves the copilot (`pilothouse serve`), or, with `--simulate
SUITE`, serves it in this process and replays the suite as live traffic until the
promotion is decided. Exit codes: 0 going on or promoted, 1 rolled back, 2 bad input,
3 held for a person (or waiting for approval to promote)."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from pilothouse.cli.common import (
    EXIT_FAILED,
    EXIT_PAUSED,
    configure_logging,
    err,
    fail,
    out,
    print_json,
    run,
    settings,
)
from pilothouse.cli.completion import complete_copilot_name, complete_model_id
from pilothouse.errors import PilothouseError

if TYPE_CHECKING:
    from pilothouse.pipeline.promotion.controller import Promotions
    from pilothouse.storage.promotion_records import PromotionRecord

app = typer.Typer(
    help="Promotions: `pilothouse promotion status COPILOT`, approve, abort, list.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]
CopilotArg = Annotated[
    str,
    typer.Argument(
        help="the copilot's name (or a promotion id, pr-...)", autocompletion=complete_copilot_name
    ),
]


def who() -> str:
    try:
        return f"cli ({getpass.getuser()})"
    except Exception:  # no user name (containers): still say where it came from
        return "cli"


def open_promotions() -> Promotions:
    from pilothouse.pipeline.promotion.controller import Promotions
    from pilothouse.storage.evals import EvalStore
    from pilothouse.storage.promotion_records import promotion_store

    config = settings()
    try:
        return Promotions(config, promotion_store(config), EvalStore.for_settings(config))
    except PilothouseError as exc:
        fail(exc)


def close(promotions: Promotions) -> None:
    from pilothouse.storage.backends import close_database

    promotions.store.close()
    promotions.evals.close()
    close_database(promotions.settings)  # the shared database's pool, if one was opened


def exit_code(record: PromotionRecord) -> int:
    if record.status == "rolled_back":
        return EXIT_FAILED
    if record.status in ("held", "awaiting_approval"):
        return EXIT_PAUSED
    return 0


def promote_command(
    path: Annotated[Path, typer.Argument(help="the copilot folder")],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="the candidate model id",
            autocompletion=complete_model_id,
            show_default=False,
        ),
    ],
    variant: Annotated[
        str | None,
        typer.Option("--variant", help="try only this .prompty file for the candidate"),
    ] = None,
    simulate: Annotated[
        str | None,
        typer.Option(
            "--simulate",
            help="serve the copilot here and replay this suite (a name or a file) as live "
            "traffic until the promotion is decided",
        ),
    ] = None,
    rate: Annotated[
        float, typer.Option("--rate", min=0.001, help="simulated requests per second")
    ] = 1.0,
    requests: Annotated[
        int, typer.Option("--requests", min=1, help="simulated requests at most")
    ] = 1000,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="simulated requests in flight at most")
    ] = 4,
    as_json: JsonOption = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log what happens")] = False,
) -> None:
    """Promote a copilot to another model: offline gates here, then shadow and canary on
    the server that serves it (or here, with --simulate), then promote or roll back."""
    configure_logging(verbose)
    promotions = open_promotions()
    try:
        record = run(_promote(promotions, path, to, variant, as_json, live=simulate is not None))
        if simulate is not None and record.active and record.stage != "offline":
            from pilothouse.cli.promotion_view import simulate_live

            record = run(
                simulate_live(
                    promotions, record, simulate, rate, requests, concurrency, quiet=as_json
                )
            )
        _show_end(promotions, record, as_json, simulated=simulate is not None)
    finally:
        close(promotions)
    raise typer.Exit(exit_code(record))


async def _promote(
    promotions: Promotions, path: Path, to: str, variant: str | None, quiet: bool, *, live: bool
) -> PromotionRecord:
    """Start the promotion and run its offline stage; a promotion of the same candidate
    that the CLI started and that stopped goes on instead: in its offline stage, or,
    with `live` (the simulator), in shadow or canary."""
    from pilothouse.cli.eval_view import progress_bar, progress_callback

    plan = await promotions.prepare(path, to, variant=variant)
    found = promotions.store.active(plan.definition.name)
    ours = (
        found is not None
        and found.candidate == to
        and (found.started_by or "").startswith("cli")
        and (found.stage == "offline" or live)
    )
    if found is not None and ours:
        err.print(f"resuming promotion [bold]{found.promotion_id}[/] (its {found.stage} stage)")
        if found.stage != "offline":
            return found
        record = found
    else:
        record = promotions.start(plan, started_by=who())
        if not quiet:
            err.print(
                f"promotion [bold]{record.promotion_id}[/]: {escape(plan.current)} -> "
                f"{escape(to)}; offline: {len(plan.options)} candidate prompt(s) and the "
                "current model on the suites"
            )
    with progress_bar(err, disable=quiet) as progress:
        return await promotions.run_offline(record, progress=progress_callback(progress))


def _show_end(
    promotions: Promotions, record: PromotionRecord, as_json: bool, *, simulated: bool
) -> None:
    from pilothouse.cli.promotion_view import show_view

    view = promotions.status(record.promotion_id)
    if as_json:
        print_json(view)
        return
    show_view(view)
    if record.active and record.stage in ("shadow", "canary") and not simulated:
        out.print(
            f"[dim]next: serve the copilot (pilothouse serve {escape(record.folder)}); the "
            "server mirrors and routes its traffic. Watch with `pilothouse promotion status "
            f"{escape(record.copilot)}`.[/]"
        )


@app.command("status")
def status_command(copilot: CopilotArg, as_json: JsonOption = False) -> None:
    """Where a copilot's promotion is (its latest when none is under way): every gate,
    threshold and guard with its figures, and the timeline."""
    _decide(copilot, as_json, lambda p: p.find(copilot))


@app.command("approve")
def approve_command(copilot: CopilotArg, as_json: JsonOption = False) -> None:
    """Let a held promotion go on (into the next stage), or promote one waiting for
    approval."""
    _decide(copilot, as_json, lambda p: p.approve(copilot, by=who()))


@app.command("abort")
def abort_command(
    copilot: CopilotArg,
    reason: Annotated[str, typer.Option("--reason", help="said in the timeline")] = "",
    as_json: JsonOption = False,
) -> None:
    """Roll the promotion back now, wherever it is (report written)."""
    _decide(copilot, as_json, lambda p: p.abort(copilot, by=who(), reason=reason))


def _decide(copilot: str, as_json: bool, action: Any) -> None:
    """Do `action` (Promotions -> the record it found or changed), then show it."""
    from pilothouse.cli.promotion_view import show_view

    promotions = open_promotions()
    try:
        record = action(promotions)
        view = promotions.status(record.promotion_id)
    except PilothouseError as exc:
        fail(exc)
    finally:
        close(promotions)
    if as_json:
        print_json(view)
    else:
        show_view(view)


@app.command("list")
def list_command(
    copilot: Annotated[
        str | None,
        typer.Option(
            "--copilot", "-c", help="only this copilot's", autocompletion=complete_copilot_name
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 20,
    as_json: JsonOption = False,
) -> None:
    """Promotions, newest first."""
    from pilothouse.cli.promotion_view import promotions_table

    promotions = open_promotions()
    try:
        records = promotions.store.list_promotions(copilot=copilot, limit=limit)
    finally:
        close(promotions)
    if as_json:
        from dataclasses import asdict

        keep = ("policy", "previous", "offline")
        print_json(
            [{k: v for k, v in asdict(r).items() if k not in keep} for r in records], lines=True
        )
    elif not records:
        out.print("no promotions yet: `pilothouse promote PATH --to MODEL` starts one")
    else:
        out.print(promotions_table(records))
