"""`pilothouse runs prune`: delete stored runs and spans older than a duration."""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import datetime
from typing import Annotated

import typer

from pilothouse.cli.common import fail, out, settings
from pilothouse.errors import PilothouseError

DURATION_FORMS = "a whole or decimal number followed by d, h or m: 30d, 12h, 90m, 1.5d"
_UNITS = {"d": 86_400.0, "h": 3600.0, "m": 60.0}
_LONGEST_S = 36_500 * _UNITS["d"]
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([dhm])", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """Seconds in a duration such as `30d`, `12h` or `90m`; ValueError when it is not one."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration; use {DURATION_FORMS}")
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds <= 0:
        raise ValueError(f"{text!r} is no time at all; give a duration above zero, e.g. 30d")
    if seconds > _LONGEST_S:
        raise ValueError(f"{text!r} is longer than 100 years; give a shorter one, e.g. 30d")
    return seconds


def prune_command(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="DURATION",
            help="delete runs that ended longer ago than this: 30d, 12h, 90m "
            "(default: \\[traces] keep_days in config.toml)",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="only count what would be deleted")
    ] = False,
) -> None:
    """Delete old runs and their spans (and spans left without a run).

    Runs paused for an approval decision are kept, whatever their age.

    `pilothouse serve` prunes by itself every hour when \\[traces] keep_days is above 0.
    """
    from pilothouse.storage.backends import shared
    from pilothouse.storage.retention import cutoff
    from pilothouse.storage.traces import TraceStore

    config = settings()
    now = time.time()
    if older_than is not None:
        try:
            seconds = parse_duration(older_than)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="'--older-than'") from None
        limit: float | None = now - seconds
        what = f"older than {older_than.strip()}"
    else:
        keep_days = config.traces.keep_days
        limit = cutoff(keep_days, now)
        what = f"older than {keep_days:g} days ([traces] keep_days)"
    if limit is None:
        out.print(
            f"Traces are kept forever ([traces] keep_days = 0 in {config.config_path}); "
            "nothing deleted. Give --older-than 30d (for instance) to prune anyway.",
            markup=False,
        )
        return
    if not shared(config) and not config.database_path.exists():
        out.print("No runs recorded yet; nothing to prune.", markup=False)  # and nothing created
        return
    try:
        with TraceStore.for_settings(config) as store:
            report = store.prune(limit, dry_run=dry_run)
    except PilothouseError as exc:
        fail(exc)
    except sqlite3.Error as exc:
        fail(PilothouseError(f"{config.database_path}: {exc}; nothing was deleted"))
    when = _when(limit)
    counts = f"{_plural(report.runs, 'run')} and {_plural(report.spans, 'span')}"
    if dry_run:
        out.print(
            f"Would delete {counts}: runs {what}, ended before {when}. (dry run)", markup=False
        )
    else:
        out.print(f"Deleted {counts}: runs {what}, ended before {when}.", markup=False)


def _when(timestamp: float) -> str:
    try:
        return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):  # before year 1 (a huge keep_days)
        return f"unix time {timestamp:.0f}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
