"""Progress while a copilot's knowledge is indexed (the first `chat`, `ask` or `serve`
of a copilot embeds every document; later ones only what changed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pilothouse.cli.common import err
from pilothouse.cli.knowledge_display import IngestDisplay
from pilothouse.knowledge import IngestProgress
from pilothouse.knowledge.ingestion import Progress


@contextmanager
def indexing_progress(what: str) -> Iterator[Progress]:
    """A progress callback for ingestion: the `knowledge add` bar on a terminal, else
    one line when something is (re-)embedded, so a log shows why the start took long."""
    if not err.is_terminal:
        yield _one_line(what)
        return
    with IngestDisplay(err) as display:
        yield display


def _one_line(what: str) -> Progress:
    said = False

    def report(event: IngestProgress) -> None:
        nonlocal said
        if said or event.phase != "embedding":
            return
        said = True
        err.print(
            f"indexing {what}'s knowledge ({event.files_total} files; only changed files "
            "are embedded)…",
            markup=False,
            highlight=False,
        )

    return report
