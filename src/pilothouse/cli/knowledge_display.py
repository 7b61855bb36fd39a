"""What `pilothouse knowledge` shows while it works and how it writes JSON.

The ingestion display names the file being embedded (not the one just finished),
its chunks as they are embedded, the chunk rate and the time left, estimated from
the bytes still to read. JSON goes to stdout as it is, without a terminal
renderer in the way (pretty-printing megabytes through rich took seconds)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

if TYPE_CHECKING:
    from pilothouse.knowledge import IngestProgress


def print_json(value: Any) -> None:
    """One JSON document on stdout, written plainly."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False))
    sys.stdout.write("\n")
    sys.stdout.flush()


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def describe(event: IngestProgress) -> tuple[str, str]:
    """(what is being done now, the figures) for one progress event."""
    name = Path(event.current).name if event.current else ""
    if event.phase == "embedding" and event.file_chunks:
        doing = f"embedding {name} ({event.file_embedded}/{event.file_chunks} chunks)"
    elif event.current:
        doing = f"reading {name}"
    elif event.phase == "start":
        doing = "finding files"
    else:
        doing = "indexing"
    figures = (
        f"{event.files_done}/{event.files_total} files  {event.chunks_embedded} chunks  "
        f"{event.chunks_per_second:.1f} chunks/s  {duration(event.seconds)} elapsed, "
        f"{duration(event.seconds_left)} left"
    )
    return doing, figures


class IngestDisplay:
    """A progress bar on `console` (stderr) fed by `IngestProgress` events."""

    def __init__(self, console: Console):
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[figures]}"),
            console=console,
            transient=True,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> IngestDisplay:
        self.progress.__enter__()
        self.task = self.progress.add_task("finding files", total=None, figures="")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.progress.__exit__(kind, error, trace)

    def __call__(self, event: IngestProgress) -> None:
        if self.task is None:
            return
        doing, figures = describe(event)
        self.progress.update(
            self.task,
            description=doing,
            figures=figures,
            completed=event.bytes_done,
            total=event.bytes_total or None,
        )
