"""Retrieval benchmark: ingestion throughput, quality (nDCG@10, recall@10) of BM25,
dense and fused retrieval, and query latency. Not a test: run it with `nice`.

    python benchmarks/retrieval/prepare.py --out /tmp/pilothouse-bench/corpus
    nice python benchmarks/retrieval/run.py ingest --corpus /tmp/pilothouse-bench/corpus \
        --db /tmp/pilothouse-bench/kb.sqlite3
    nice python benchmarks/retrieval/run.py evaluate --db /tmp/pilothouse-bench/kb.sqlite3

Relevance is per chunk: a retrieved chunk is relevant when it comes from one of the
question's relevant files (its FAQ answer). nDCG@10 uses binary gains and an ideal
ranking of min(relevant chunks, 10); recall@10 is the share of the relevant chunks
in the top 10; hit@10 the share of questions with at least one relevant chunk there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from metrics import Truth, bootstrap, mean, per_question

from pilothouse.knowledge import (
    ChunkingSettings,
    FusionSettings,
    IngestProgress,
    KnowledgeBase,
    SearchOptions,
)
from pilothouse.knowledge.embeddings import Vector
from pilothouse.knowledge.keywords import DEFAULT_MAX_DF
from pilothouse.knowledge.local_embedder import LocalMiniLM, minilm_token_counter
from pilothouse.knowledge.retrieval import Mode

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Variant:
    name: str
    mode: Mode
    fusion: FusionSettings = field(default_factory=FusionSettings)
    max_df: float | None = None


def saturate(h: float, w: float) -> FusionSettings:
    return FusionSettings(dense_weight=w, bm25_scaling="saturate", bm25_half=h)


RRF = FusionSettings(method="rrf", rrf_k=60)
VARIANTS = [
    Variant("bm25, plain (all terms)", "bm25", max_df=1.0),
    Variant("bm25, common terms pruned (max_df 0.1)", "bm25", max_df=DEFAULT_MAX_DF),
    Variant("dense", "dense"),
    Variant("hybrid default (weighted h=20 w=0.8, pruned BM25)", "hybrid"),
    Variant("hybrid weighted h=20 w=0.8, plain BM25", "hybrid", max_df=1.0),
    Variant("hybrid weighted h=10 w=0.9, pruned BM25", "hybrid", saturate(10.0, 0.9)),
    Variant("hybrid weighted h=40 w=0.7, pruned BM25", "hybrid", saturate(40.0, 0.7)),
    Variant("hybrid RRF k=60, pruned BM25", "hybrid", RRF),
    Variant("hybrid RRF k=60, plain BM25", "hybrid", RRF, max_df=1.0),
    Variant("hybrid RRF k=10, plain BM25", "hybrid", FusionSettings(method="rrf", rrf_k=10), 1.0),
]
DEFAULT = VARIANTS[3].name
COMPARED = ("dense", "hybrid RRF k=60, plain BM25", "hybrid weighted h=20 w=0.8, plain BM25")


class MemoEmbedder:
    """Remembers query vectors so that comparing variants does not re-embed."""

    def __init__(self, inner: object):
        self.inner = inner
        self.model_id: str = inner.model_id  # type: ignore[attr-defined]
        self.dimensions: int = inner.dimensions  # type: ignore[attr-defined]
        self.memo: dict[str, Vector] = {}

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        missing = [t for t in texts if t not in self.memo]
        if missing:
            for text, vector in zip(
                missing,
                await self.inner.embed(missing),  # type: ignore[attr-defined]
                strict=True,
            ):
                self.memo[text] = vector
        return [self.memo[t] for t in texts]


def load_questions(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def open_base(db: Path, *, arena: bool = False, pad_to: tuple[int, ...] = ()) -> KnowledgeBase:
    counter = minilm_token_counter()
    return KnowledgeBase(
        db,
        LocalMiniLM(memory_arena=arena, pad_to=pad_to),
        chunking=ChunkingSettings(tokenizer=counter.name),
        counter=counter,
    )


def log_progress(event: IngestProgress) -> None:
    if event.phase == "done" and (
        event.files_done % 50 == 0 or event.files_done == event.files_total
    ):
        print(
            f"{event.files_done}/{event.files_total} files, {event.chunks_embedded} chunks, "
            f"{event.chunks_per_second:.1f}/s, {event.seconds:.0f} s, rss {peak_rss_mib()} MiB, "
            f"load {os.getloadavg()[0]:.1f}",
            file=sys.stderr,
            flush=True,
        )


async def ingest(args: argparse.Namespace) -> None:
    pad_to = tuple(int(n) for n in args.pad_to.split(",")) if args.pad_to else ()
    base = open_base(args.db, arena=args.arena, pad_to=pad_to)
    started = time.monotonic()
    cpu_started = time.process_time()
    load_before = os.getloadavg()[0]
    paths = [str(p) for p in args.corpus] if isinstance(args.corpus, list) else [str(args.corpus)]
    report = await base.add(paths, reindex=args.reindex, progress=log_progress)
    seconds = time.monotonic() - started
    cpu_seconds = time.process_time() - cpu_started
    stats = base.stats()
    size = sum(d.size for d in base.documents())
    figures = {
        "files": report.count("added") + report.count("updated"),
        "failed": [(o.source, o.reason) for o in report.failures],
        "chunks": stats["chunks"],
        "embedded_chunks": report.embedded_chunks,
        "seconds": round(seconds, 1),
        "files_per_s": round((report.count("added") + report.count("updated")) / seconds, 2),
        "chunks_per_s": round(report.embedded_chunks / seconds, 1),
        "tokens": stats["tokens"],
        "tokens_per_s": round(stats["tokens"] / seconds),
        "cpu_seconds": round(cpu_seconds, 1),
        "load_average": round((load_before + os.getloadavg()[0]) / 2, 2),
        "corpus_mib": round(size / 2**20, 1),
        "mib_per_s": round(size / 2**20 / seconds, 2),
        "peak_rss_mib": peak_rss_mib(),
        "memory": {"arena": args.arena, "pad_to": list(pad_to)},
        "chunks_under_10_tokens": base.store.conn.execute(
            "SELECT COUNT(*) FROM chunks WHERE tokens < 10"
        ).fetchone()[0],
        "chunks_with_heading_path": base.store.conn.execute(
            "SELECT COUNT(*) FROM chunks WHERE headings != '[]'"
        ).fetchone()[0],
    }
    print(json.dumps(figures, indent=2))
    base.close()


def first_words(path: Path) -> str | None:
    """The start of a FAQ answer file's first paragraph (its answer string)."""
    paragraphs = [p for p in path.read_text().split("\n\n")[1:] if p.strip()]
    if not paragraphs:
        return None
    return " ".join(paragraphs[0].replace("`", "").split())[:50]


def truths(
    questions: list[dict[str, object]], root: Path, documents: dict[str, int]
) -> dict[int, Truth]:
    table = {}
    for q in questions:
        wanted = frozenset(str((root / r).absolute()) for r in q["relevant"])  # type: ignore[attr-defined]
        missing = [w for w in wanted if w not in documents]
        if missing:
            raise SystemExit(f"not indexed: {missing}; pass --corpus")
        answer = q.get("answer")
        if answer is None and len(wanted) == 1:
            answer = first_words(Path(next(iter(wanted))))
        table[int(q["id"])] = Truth(  # type: ignore[call-overload]
            sources=wanted,
            section=q.get("section"),  # type: ignore[arg-type]
            answer=answer,  # type: ignore[arg-type]
            relevant_chunks=sum(documents[w] for w in wanted),
        )
    return table


async def evaluate(args: argparse.Namespace) -> None:
    base = open_base(args.db)
    questions = load_questions(args.questions)
    memo = MemoEmbedder(base.embedder)
    base.retriever.embedder = memo  # type: ignore[assignment]
    documents = {d.source: d.chunk_count for d in base.documents()}
    root = Path(args.db).parent if args.corpus is None else args.corpus
    truth = truths(questions, root, documents)

    rows, per_variant = [], {}
    for variant in VARIANTS:
        scored = []
        for q in questions:
            options = SearchOptions(
                mode=variant.mode, k=10, fusion=variant.fusion, keyword_max_df=variant.max_df
            )
            results = await base.search(str(q["question"]), options)
            scored.append(per_question(results, truth[int(q["id"])]))  # type: ignore[call-overload]
        per_variant[variant.name] = scored
        rows.append({"variant": variant.name, **mean(scored), "n": len(questions)})
        print(json.dumps(rows[-1]), flush=True)

    # Is the default ahead of (or behind) the others beyond noise? 95% intervals of
    # the per-question difference, paired bootstrap.
    differences = {}
    for other in COMPARED:
        for metric in ("document MRR@10", "document R@1", "answer MRR@10", "answer R@1"):
            a = [r[metric] for r in per_variant[DEFAULT]]
            b = [r[metric] for r in per_variant[other]]
            differences[f"default - {other}: {metric}"] = {
                "mean": round(statistics.mean(a) - statistics.mean(b), 3),
                "95% interval": bootstrap(a, b),
            }
    print(json.dumps(differences, indent=1), flush=True)

    # Latency of the three modes with the defaults, query embedding included.
    base.retriever.embedder = base.embedder
    base.warm()
    latency = {}
    for mode in ("bm25", "dense", "hybrid"):
        timings = []
        load_before = os.getloadavg()[0]
        cpu_started = time.process_time()
        for q in questions:
            started = time.perf_counter()
            await base.search(str(q["question"]), SearchOptions(mode=mode, k=10))  # type: ignore[arg-type]
            timings.append((time.perf_counter() - started) * 1000)
        latency[mode] = {
            "p50_ms": round(percentile(timings, 0.5), 1),
            "p95_ms": round(percentile(timings, 0.95), 1),
            "cpu_ms_per_query": round(
                (time.process_time() - cpu_started) * 1000 / len(questions), 1
            ),
            "load_average": round((load_before + os.getloadavg()[0]) / 2, 2),
        }
    stats = base.stats()
    headed = base.store.conn.execute("SELECT COUNT(*) FROM chunks WHERE headings != '[]'")
    result = {
        "chunks": stats["chunks"],
        "heading_path_share": round(headed.fetchone()[0] / max(stats["chunks"], 1), 4),
        "quality": rows,
        "differences": differences,
        "latency": latency,
    }
    print(json.dumps(latency))
    if args.out:
        await asyncio.to_thread(Path(args.out).write_text, json.dumps(result, indent=2))
    base.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_ingest = sub.add_parser("ingest")
    p_ingest.add_argument("--corpus", type=Path, required=True, nargs="+")
    p_ingest.add_argument("--arena", action="store_true", help="onnxruntime's CPU arena on")
    p_ingest.add_argument("--pad-to", default="", help="fixed padded lengths, e.g. 64,128,256")
    p_ingest.add_argument("--db", type=Path, required=True)
    p_ingest.add_argument("--reindex", action="store_true")
    p_eval = sub.add_parser("evaluate")
    p_eval.add_argument("--db", type=Path, required=True)
    p_eval.add_argument("--corpus", type=Path, default=None)
    p_eval.add_argument("--questions", type=Path, default=HERE / "questions.jsonl")
    p_eval.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    asyncio.run(ingest(args) if args.command == "ingest" else evaluate(args))


if __name__ == "__main__":
    main()
