"""Query latency at 100k chunks (synthetic scale), and numpy against sqlite-vec for the
dense part. Not a test: run it with `nice`.

    nice python benchmarks/retrieval/scale.py --db /tmp/pilothouse-bench/scale.sqlite3 \
        [--words-from /tmp/pilothouse-bench/kb.sqlite3] [--chunks 100000]

The synthetic knowledge base has `--chunks` chunks of ~120 words drawn from the real
corpus's word frequencies (or a built-in list) with random unit vectors (384-d);
queries are the benchmark's real questions, embedded by the real local model, so the
latency includes query embedding, BM25 over FTS5, the dense scan, fusion, row fetch
and near-duplicate removal: everything `KnowledgeBase.search` does.

The sqlite-vec comparison needs an SQLite binding that can load extensions (Python's
bundled sqlite3 here cannot): `pip install apsw sqlite-vec` for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import os
import random
import sqlite3
import statistics
import time
from pathlib import Path

import numpy as np

from pilothouse.knowledge import FusionSettings, KnowledgeBase, SearchOptions
from pilothouse.knowledge.chunking import ChunkingSettings
from pilothouse.knowledge.documents import Block, Chunk, Document
from pilothouse.knowledge.local_embedder import LocalMiniLM, minilm_token_counter

HERE = Path(__file__).parent
_FALLBACK = (
    "python module function class object method return value list dict string file "
    "path error exception import package install run test data time thread process "
    "socket server client request response json parse format encode decode buffer"
)
FALLBACK_WORDS = _FALLBACK.split()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def vocabulary(source: Path | None) -> tuple[list[str], list[float]]:
    if source is None or not source.exists():
        return FALLBACK_WORDS, [1.0] * len(FALLBACK_WORDS)
    conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    counts: collections.Counter[str] = collections.Counter()
    for (text,) in conn.execute("SELECT text FROM chunks LIMIT 20000"):
        counts.update(w.lower() for w in text.split() if w.isalpha())
    conn.close()
    words, weights = zip(*counts.most_common(30000), strict=True)
    return list(words), [float(w) for w in weights]


def build(base: KnowledgeBase, total: int, words: list[str], weights: list[float]) -> float:
    rng = random.Random(1)
    np_rng = np.random.default_rng(1)
    per_doc = 100
    started = time.monotonic()
    for doc_index in range(total // per_doc):
        texts = [" ".join(rng.choices(words, weights, k=120)) for _ in range(per_doc)]
        blocks = tuple(Block("paragraph", t) for t in texts)
        source, title = f"synthetic://doc/{doc_index}", f"Doc {doc_index}"
        document = Document(source, title, "text", 0.0, 1, f"h{doc_index}", blocks)
        chunks, offset = [], 0
        for ordinal, text in enumerate(texts):
            chunks.append(Chunk(ordinal, text, offset, offset + len(text), 150))
            offset += len(text) + 2
        vectors = np_rng.standard_normal((per_doc, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        base.store.replace_document(document, (), chunks, vectors)
    return time.monotonic() - started


async def timed(
    base: KnowledgeBase, questions: list[str], options: SearchOptions
) -> dict[str, float]:
    timings = []
    load_before = os.getloadavg()[0]
    cpu_started = time.process_time()
    counts = []
    for question in questions:
        begin = time.perf_counter()
        counts.append(len(await base.search(question, options)))
        timings.append((time.perf_counter() - begin) * 1000)
    cpu_ms = (time.process_time() - cpu_started) * 1000 / len(questions)
    return {
        "p50_ms": round(percentile(timings, 0.5), 1),
        "p95_ms": round(percentile(timings, 0.95), 1),
        # CPU time of all this process's threads per query: the work itself,
        # without the waiting for a core that other users of the machine cause.
        "cpu_ms_per_query": round(cpu_ms, 1),
        "results_per_query": round(statistics.mean(counts), 2),
        "load_average": round((load_before + os.getloadavg()[0]) / 2, 2),
    }


async def latency(base: KnowledgeBase, questions: list[str]) -> dict[str, dict[str, float]]:
    # The first searches of a process: BM25 alone, then dense (the matrix is read).
    started = time.perf_counter()
    await base.search("warm up the keyword index", SearchOptions(mode="bm25"))
    first_bm25 = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    await base.search("warm up: load the vector matrix", SearchOptions(mode="dense"))
    cold = (time.perf_counter() - started) * 1000
    figures: dict[str, dict[str, float]] = {
        "first_bm25_query_ms (no warm)": {"ms": round(first_bm25)},
        "first_dense_query_ms (matrix read)": {"ms": round(cold)},
    }
    variants = {
        "bm25 (plain)": SearchOptions(mode="bm25", k=10),
        "dense": SearchOptions(mode="dense", k=10),
        "hybrid (default)": SearchOptions(mode="hybrid", k=10),
        "hybrid, no near-duplicate removal": SearchOptions(k=10, dedup_similarity=None),
        "hybrid, RRF k=60 over plain BM25": SearchOptions(
            k=10, fusion=FusionSettings(method="rrf"), keyword_max_df=1.0
        ),
    }
    # Twice, alternating, so load changes hit every variant alike; the second round counts.
    for _ in range(2):
        for name, options in variants.items():
            figures[name] = await timed(base, questions, options)
    return figures


def vector_backends(n: int, dims: int = 384, queries: int = 100, k: int = 50) -> dict[str, object]:
    rng = np.random.default_rng(2)
    matrix = rng.standard_normal((n, dims)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    qs = rng.standard_normal((queries, dims)).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    result: dict[str, object] = {"n": n, "dims": dims, "k": k}

    timings = []
    for q in qs:
        begin = time.perf_counter()
        scores = matrix @ q
        top = np.argpartition(-scores, k)[:k]
        top[np.argsort(-scores[top])]
        timings.append((time.perf_counter() - begin) * 1000)
    result["numpy_p50_ms"] = round(statistics.median(timings), 2)
    result["numpy_p95_ms"] = round(percentile(timings, 0.95), 2)
    expected = [set(np.argsort(-(matrix @ q))[:k].tolist()) for q in qs[:10]]

    try:
        import apsw
        import sqlite_vec
    except ImportError as exc:
        result["sqlite_vec"] = f"not measured: {exc} (pip install apsw sqlite-vec)"
        return result
    conn = apsw.Connection(":memory:")
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    conn.execute(
        f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{dims}] distance_metric=cosine)"
    )
    begin = time.perf_counter()
    with conn:
        conn.executemany(
            "INSERT INTO v(rowid, embedding) VALUES (?, ?)",
            ((i + 1, matrix[i].tobytes()) for i in range(n)),
        )
    result["sqlite_vec_insert_s"] = round(time.perf_counter() - begin, 1)
    timings = []
    recalls = []
    for index, q in enumerate(qs):
        begin = time.perf_counter()
        rows = list(
            conn.execute(
                "SELECT rowid, distance FROM v WHERE embedding MATCH ? AND k = ?", (q.tobytes(), k)
            )
        )
        timings.append((time.perf_counter() - begin) * 1000)
        if index < 10:
            recalls.append(len({r[0] - 1 for r in rows} & expected[index]) / k)
    result["sqlite_vec_p50_ms"] = round(statistics.median(timings), 2)
    result["sqlite_vec_p95_ms"] = round(percentile(timings, 0.95), 2)
    result["sqlite_vec_recall_vs_exact"] = round(statistics.mean(recalls), 3)
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--words-from", type=Path, default=None)
    parser.add_argument(
        "--questions",
        type=Path,
        nargs="+",
        default=[HERE / "questions.jsonl", HERE / "questions-postgresql.jsonl"],
    )
    parser.add_argument("--limit", type=int, default=400)
    parser.add_argument("--warm-first", action="store_true", help="KnowledgeBase.warm() first")
    parser.add_argument("--skip-backends", action="store_true")
    args = parser.parse_args()

    questions = [
        json.loads(line)["question"]
        for path in args.questions
        for line in path.read_text().splitlines()
        if line
    ][: args.limit]
    counter = minilm_token_counter()
    base = KnowledgeBase(
        args.db,
        LocalMiniLM(),
        chunking=ChunkingSettings(tokenizer=counter.name),
        counter=counter,
    )
    base.store.ensure_settings(base.wanted_settings, reindex_hint="delete the file")
    have = base.stats()["chunks"]
    build_s = None
    if have < args.chunks:
        words, weights = vocabulary(args.words_from)
        build_s = round(build(base, args.chunks - have, words, weights), 1)
    figures: dict[str, object] = {"chunks": base.stats()["chunks"], "build_s": build_s}
    if args.warm_first:
        started = time.perf_counter()
        base.warm()
        figures["warm_ms"] = round((time.perf_counter() - started) * 1000)
    figures["latency"] = await latency(base, questions)
    print(json.dumps(figures, indent=2), flush=True)
    base.close()
    if not args.skip_backends:
        print(json.dumps(vector_backends(args.chunks), indent=2))


if __name__ == "__main__":
    asyncio.run(main())
