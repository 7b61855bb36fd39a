"""`pilothouse knowledge`: ingest documents, search them, list, remove, stats."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from pilothouse.cli.common import err, fail, out, run, settings
from pilothouse.cli.knowledge_display import IngestDisplay, print_json
from pilothouse.errors import PilothouseError

if TYPE_CHECKING:
    from pilothouse.knowledge import Filters, KnowledgeBase

app = typer.Typer(
    help="Ground copilots on your own documents: add, search, list, remove, stats.",
    no_args_is_help=True,
)

CopilotOption = Annotated[
    Path | None,
    typer.Option(
        "--copilot",
        help="a copilot folder (with copilot.yaml): use its knowledge base instead of "
        "the data directory's default one",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]
SourceOption = Annotated[
    list[str] | None,
    typer.Option("--source", help="only sources matching this glob (repeatable)"),
]
KindOption = Annotated[
    list[str] | None,
    typer.Option("--type", help="only this document type: pdf, docx, html, markdown, ..."),
]
TagOption = Annotated[list[str] | None, typer.Option("--tag", help="only this tag (repeatable)")]


def _open(copilot: Path | None) -> KnowledgeBase:
    from pilothouse.knowledge import KnowledgeBase, base_path

    try:
        return KnowledgeBase.open_local(base_path(config := settings(), copilot), settings=config)
    except PilothouseError as exc:
        fail(exc)


def _source_pattern(text: str) -> str:
    """A --source or remove argument as a GLOB over stored sources: URLs and patterns
    that start with `*` as given, paths (globs too) made absolute from the current
    folder, and a folder meaning everything under it."""
    if "://" in text or text.startswith("*"):
        return text
    path = os.path.abspath(os.path.expanduser(text))
    return path.rstrip(os.sep) + os.sep + "*" if os.path.isdir(path) else path


def _filters(sources: list[str] | None, kinds: list[str] | None, tags: list[str] | None) -> Filters:
    from pilothouse.knowledge import Filters

    patterns = [_source_pattern(s) for s in sources or []]
    return Filters(sources=tuple(patterns), kinds=tuple(kinds or ()), tags=tuple(tags or ()))


@app.command("add")
def add(
    paths: Annotated[list[str], typer.Argument(help="files, folders or glob patterns")],
    copilot: CopilotOption = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="tag the documents (repeatable)")
    ] = None,
    reindex: Annotated[
        bool,
        typer.Option(
            "--reindex", help="rebuild the index (after a change of embedding model or chunking)"
        ),
    ] = False,
    max_file_mb: Annotated[
        float, typer.Option("--max-file-mb", help="refuse files larger than this")
    ] = 100.0,
    keep_missing: Annotated[
        bool,
        typer.Option("--keep-missing", help="do not remove documents whose files were deleted"),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Add or update documents: only what changed is re-embedded, deleted files are
    removed. Exits with status 1 when any file failed (the others are indexed)."""
    from pilothouse.knowledge import IngestOptions

    kb = _open(copilot)
    options = IngestOptions(
        tags=tuple(tag or ()),
        max_file_bytes=int(max_file_mb * 2**20),
        remove_missing=not keep_missing,
    )
    try:
        if as_json:
            result = run(kb.add(paths, options=options, reindex=reindex))
        else:
            with IngestDisplay(err) as display:
                result = run(kb.add(paths, options=options, progress=display, reindex=reindex))
    finally:
        kb.close()
    if as_json:
        print_json(
            {
                "seconds": round(result.seconds, 3),
                "embedded_chunks": result.embedded_chunks,
                "files": [
                    {"source": o.source, "status": o.status, "reason": o.reason, "chunks": o.chunks}
                    for o in result.outcomes
                ],
            }
        )
    else:
        counts = ", ".join(
            f"{result.count(s)} {s}"
            for s in ("added", "updated", "unchanged", "removed", "skipped", "failed")
            if result.count(s)
        )
        out.print(
            f"{counts or 'nothing to do'}; {result.embedded_chunks} chunks embedded "
            f"in {result.seconds:.1f} s"
        )
        for failure in result.failures:
            err.print(
                f"[red]failed[/] {escape(failure.source)}: {escape(failure.reason)}", soft_wrap=True
            )
    if result.failures:
        raise typer.Exit(1)


@app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="how many results")] = 5,
    mode: Annotated[str, typer.Option("--mode", help="hybrid, bm25 or dense")] = "hybrid",
    min_score: Annotated[
        float | None, typer.Option("--min-score", help="drop results scoring below this")
    ] = None,
    source: SourceOption = None,
    kind: KindOption = None,
    tag: TagOption = None,
    copilot: CopilotOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ranked passages with their source, page or heading, and a snippet."""
    from pilothouse.knowledge import SearchOptions
    from pilothouse.knowledge.retrieval import MODES

    if mode not in MODES:
        fail(PilothouseError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}"))
    options = SearchOptions(
        mode=mode, k=k, min_score=min_score, filters=_filters(source, kind, tag)
    )
    kb = _open(copilot)
    try:
        results = run(kb.search(query, options))
    finally:
        kb.close()
    if as_json:
        print_json(
            [
                {
                    "rank": rank,
                    "score": r.score,
                    "scores": r.scores,
                    "source": r.source,
                    "title": r.title,
                    "page": r.page,
                    "headings": list(r.headings),
                    "start": r.start,
                    "end": r.end,
                    "text": r.text,
                }
                for rank, r in enumerate(results, start=1)
            ]
        )
        return
    if not results:
        out.print("no results")
        return
    for rank, result in enumerate(results, start=1):
        out.print(f"[bold]{rank}.[/] [cyan]{escape(result.citation)}[/]  score {result.score:.3f}")
        out.print(f"   {escape(result.snippet())}")


@app.command("list")
def list_documents(
    source: SourceOption = None,
    kind: KindOption = None,
    tag: TagOption = None,
    copilot: CopilotOption = None,
    as_json: JsonOption = False,
) -> None:
    """The documents in the knowledge base."""
    kb = _open(copilot)
    try:
        rows = kb.documents(_filters(source, kind, tag))
    finally:
        kb.close()
    if as_json:
        print_json(
            [
                {
                    "source": r.source,
                    "title": r.title,
                    "type": r.kind,
                    "chunks": r.chunk_count,
                    "tags": list(r.tags),
                    "bytes": r.size,
                    "ingested_at": r.ingested_at,
                }
                for r in rows
            ]
        )
        return
    table = Table("source", "type", "chunks", "tags", "ingested", box=None, pad_edge=False)
    for r in rows:
        table.add_row(
            escape(r.source), r.kind, str(r.chunk_count), ", ".join(r.tags), r.ingested_at
        )
    out.print(table if rows else "no documents")


@app.command("remove")
def remove(
    sources: Annotated[
        list[str] | None,
        typer.Argument(help="files, folders or glob patterns of the documents to remove"),
    ] = None,
    kind: KindOption = None,
    tag: TagOption = None,
    copilot: CopilotOption = None,
) -> None:
    """Remove documents (not the files) from the knowledge base."""
    filters = _filters(sources, kind, tag)
    if filters.empty:
        fail(PilothouseError("say what to remove: a source, --type or --tag"))
    kb = _open(copilot)
    try:
        removed = kb.remove(filters)
    finally:
        kb.close()
    for source in removed:
        out.print(f"removed {escape(source)}")
    if not removed:
        err.print("nothing matched; nothing removed")
        raise typer.Exit(1)


@app.command("stats")
def stats(copilot: CopilotOption = None, as_json: JsonOption = False) -> None:
    """Documents, chunks, size and the settings the index was built with."""
    kb = _open(copilot)
    try:
        figures: dict[str, Any] = kb.stats()
    finally:
        kb.close()
    if as_json:
        print_json(figures)
        return
    settings_ = figures.get("settings") or {}
    out.print(f"knowledge base  {escape(figures['path'])}")
    out.print(f"documents       {figures['documents']}")
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(figures["kinds"].items()))
    if kinds:
        out.print(f"  by type       {kinds}")
    out.print(f"chunks          {figures['chunks']} ({figures['tokens']} tokens)")
    out.print(f"size            {figures['bytes'] / 2**20:.1f} MiB")
    if settings_:
        chunking = settings_.get("chunking", {})
        out.print(
            f"embedding model {settings_.get('embedding_model')} ({settings_.get('dimensions')} d)"
        )
        out.print(
            f"chunking        {chunking.get('max_tokens')} tokens, "
            f"{chunking.get('overlap_tokens')} overlap ({chunking.get('tokenizer')})"
        )
