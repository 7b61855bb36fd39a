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
    max_df: float = DEFAULT_MAX_DF


def saturate(h: float, w: float) -> FusionSettings:
    return FusionSettings(dense_weight=w, bm25_scaling="saturate", bm25_half=h)


VARIANTS = [
    Variant("bm25, all terms", "bm25", max_df=1.0),
    Variant("bm25, common terms pruned (max_df 0.1)", "bm25"),
    Variant("dense", "dense"),
    Variant("rrf k=60", "hybrid", FusionSettings(method="rrf", rrf_k=60)),
    Variant("rrf k=10", "hybrid", FusionSettings(method="rrf", rrf_k=10)),
    *[
        Variant(f"weighted max w={w}", "hybrid", FusionSettings(dense_weight=w, bm25_scaling="max"))
        for w in (0.5, 0.7, 0.8, 0.9)
    ],
    *[
        Variant(f"weighted saturate h={h:g} w={w}", "hybrid", saturate(h, w))
        for h in (5.0, 10.0, 20.0, 40.0)
        for w in (0.6, 0.7, 0.8, 0.9)
    ],
    Variant("weighted saturate h=20 w=0.8, all terms", "hybrid", saturate(20.0, 0.8), 1.0),
    Variant("default (SearchOptions())", "hybrid"),
]


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


def ndcg(relevant_flags: list[bool], total_relevant: int, k: int = 10) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, rel in enumerate(relevant_flags[:k]) if rel)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(total_relevant, k)))
    return dcg / ideal if ideal else 0.0


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


async def evaluate(args: argparse.Namespace) -> None:
    base = KnowledgeBase.open_local(args.db)
    questions = load_questions(args.questions)
    memo = MemoEmbedder(base.embedder)
    base.retriever.embedder = memo  # type: ignore[assignment]
    sources = {d.source: d for d in base.documents()}
    root = Path(args.db).parent if args.corpus is None else args.corpus
    relevant_chunks: dict[int, set[str]] = {}
    chunk_counts: dict[int, int] = {}
    for q in questions:
        wanted = {str((root / r).absolute()) for r in q["relevant"]}  # type: ignore[attr-defined]
        missing = [w for w in wanted if w not in sources]
        if missing:
            raise SystemExit(f"not indexed: {missing}; pass --corpus")
        relevant_chunks[int(q["id"])] = wanted  # type: ignore[call-overload]
        chunk_counts[int(q["id"])] = sum(sources[w].chunk_count for w in wanted)  # type: ignore[call-overload]

    rows = []
    for variant in VARIANTS:
        scores_ndcg, scores_recall, hits = [], [], []
        for q in questions:
            qid = int(q["id"])  # type: ignore[call-overload]
            options = SearchOptions(
                mode=variant.mode, k=10, fusion=variant.fusion, keyword_max_df=variant.max_df
            )
            results = await base.search(str(q["question"]), options)
            flags = [r.source in relevant_chunks[qid] for r in results]
            scores_ndcg.append(ndcg(flags, chunk_counts[qid]))
            scores_recall.append(sum(flags) / min(chunk_counts[qid], 10))
            hits.append(1.0 if any(flags) else 0.0)
        half = len(questions) // 2
        rows.append(
            {
                "variant": variant.name,
                "ndcg@10": round(statistics.mean(scores_ndcg), 4),
                "recall@10": round(statistics.mean(scores_recall), 4),
                "hit@10": round(statistics.mean(hits), 4),
                "ndcg@10 odd ids": round(statistics.mean(scores_ndcg[0::2]), 4),
                "ndcg@10 even ids": round(statistics.mean(scores_ndcg[1::2]), 4),
                "n": len(questions),
            }
        )
        del half
        print(json.dumps(rows[-1]), flush=True)

    # Latency of the three modes with the defaults, query embedding included.
    base.retriever.embedder = base.embedder
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
    result = {"chunks": stats["chunks"], "quality": rows, "latency": latency}
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
