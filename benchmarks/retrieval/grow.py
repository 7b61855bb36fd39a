"""A real corpus grown to 100k chunks, for latency at scale. Not a test: run it with
`nice`.

    python benchmarks/retrieval/grow.py --db /tmp/pilothouse-bench/grown.sqlite3 \\
        --from /tmp/pilothouse-bench/pg.sqlite3 /tmp/pilothouse-bench/kb.sqlite3 \\
        --html /usr/share/doc/postgresql-doc-15/html /usr/share/doc/python3.11/html \\
               /usr/share/doc/openjdk-17-jre-headless/api --chunks 100000

The benchmark knowledge bases named by --from are copied as they are (their chunks,
heading paths and real MiniLM vectors). The rest, up to --chunks, is real text: the
HTML documentation pages under --html (Debian's documentation packages), loaded and
chunked by the product's own loaders and chunker, so BM25 sees real term statistics.
Embedding 100k chunks would take hours on the shared 2-core machine, so those added
chunks get a real vector of a copied chunk with a little noise (cosine ~0.9 to it):
the dense scan costs the same whatever the values, and the vectors keep the real
ones' uneven distribution rather than uniform random directions. Nothing else is
synthetic. Then `scale.py --db` measures latency on it.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
from run import open_base

from pilothouse.knowledge.chunking import Chunker
from pilothouse.knowledge.documents import Chunk, Document
from pilothouse.knowledge.errors import LoadError
from pilothouse.knowledge.loaders import load_file


def copy_base(source: Path, base: object, have: set[str]) -> list[np.ndarray]:
    """Copy every document of `source` into `base`; returns the vectors copied."""
    conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    vectors: list[np.ndarray] = []
    documents = conn.execute(
        "SELECT id, source, title, kind, mtime, size, content_hash FROM documents"
    ).fetchall()
    for doc_id, src, title, kind, mtime, size, digest in documents:
        if src in have:
            continue
        rows = conn.execute(
            "SELECT ordinal, text, start_char, end_char, tokens, page, headings, embedding "
            "FROM chunks WHERE document_id = ? ORDER BY ordinal",
            (doc_id,),
        ).fetchall()
        chunks = [Chunk(o, t, s, e, n, p, tuple(json.loads(h))) for o, t, s, e, n, p, h, _ in rows]
        matrix = np.frombuffer(b"".join(r[7] for r in rows), dtype=np.float32).reshape(
            len(rows), -1
        )
        document = Document(src, title, kind, mtime, size, digest, ())
        base.store.replace_document(document, (), chunks, matrix)  # type: ignore[attr-defined]
        vectors.extend(matrix)
        have.add(src)
    conn.close()
    return vectors


def grow(
    base: object,
    roots: list[Path],
    target: int,
    real: np.ndarray,
    have: set[str],
) -> int:
    chunker = Chunker(base.chunking, base.counter)  # type: ignore[attr-defined]
    rng = np.random.default_rng(3)
    pages = [p for root in roots for p in sorted(root.rglob("*.html"))]
    random.Random(3).shuffle(pages)
    total = base.stats()["chunks"]  # type: ignore[attr-defined]
    for number, page in enumerate(pages, start=1):
        if total >= target:
            break
        if str(page.absolute()) in have:
            continue
        try:
            document = load_file(page)
        except LoadError:
            continue
        chunks = chunker.chunk(document)[: target - total]
        if not chunks:
            continue
        picks = real[rng.integers(0, len(real), len(chunks))]
        noisy = picks + rng.normal(0, 0.025, picks.shape).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        base.store.replace_document(document, (), chunks, noisy)  # type: ignore[attr-defined]
        total += len(chunks)
        if number % 500 == 0:
            print(f"{number} pages, {total} chunks", file=sys.stderr, flush=True)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--from", dest="sources", type=Path, nargs="+", required=True)
    parser.add_argument("--html", type=Path, nargs="+", required=True)
    parser.add_argument("--chunks", type=int, default=100_000)
    args = parser.parse_args()
    started = time.monotonic()
    base = open_base(args.db)
    base.store.ensure_settings(base.wanted_settings, reindex_hint="delete the file")
    have = {d.source for d in base.documents()}
    real: list[np.ndarray] = []
    for source in args.sources:
        real.extend(copy_base(source, base, have))
    if not real:
        _, matrix, _ = base.store.vectors()
        real = list(matrix)
    total = grow(base, args.html, args.chunks, np.stack(real), have)
    print(
        json.dumps(
            {
                "chunks": total,
                "real_vectors": len(real),
                "documents": base.stats()["documents"],
                "seconds": round(time.monotonic() - started),
            }
        )
    )
    base.close()


if __name__ == "__main__":
    main()
