"""Ranking metrics at three levels and a paired bootstrap, for run.py.

A question's results (chunks, best first) are judged at three levels:
- document: the chunk comes from one of the question's relevant files;
- section: ... and its heading path holds the question's `section` (a heading's
  text, case-insensitive substring); without one, the document level;
- answer: ... and its text holds the question's `answer` string (whitespace and
  case ignored).
For each level: MRR@10 (reciprocal rank of the first hit), R@1 (a hit at rank 1),
hit@10; at document level also nDCG@10 with chunk-level binary gains (the
ideal ranking has min(relevant chunks, 10) hits), as the first version of this
benchmark reported.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

LEVELS = ("document", "section", "answer")


@dataclass(frozen=True)
class Truth:
    sources: frozenset[str]
    section: str | None
    answer: str | None
    relevant_chunks: int


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def hits(results: Sequence[object], truth: Truth, level: str) -> list[bool]:
    flags = []
    for r in results:
        ok = r.source in truth.sources  # type: ignore[attr-defined]
        if ok and level in ("section", "answer") and truth.section:
            ok = any(truth.section.lower() in h.lower() for h in r.headings)  # type: ignore[attr-defined]
        if ok and level == "answer" and truth.answer:
            ok = _norm(truth.answer) in _norm(r.text)  # type: ignore[attr-defined]
        flags.append(ok)
    return flags


def reciprocal_rank(flags: list[bool], k: int = 10) -> float:
    return next((1.0 / (i + 1) for i, f in enumerate(flags[:k]) if f), 0.0)


def ndcg(flags: list[bool], total_relevant: int, k: int = 10) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, rel in enumerate(flags[:k]) if rel)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(total_relevant, k)))
    return dcg / ideal if ideal else 0.0


def per_question(results: Sequence[object], truth: Truth) -> dict[str, float]:
    """Every figure for one question."""
    figures: dict[str, float] = {}
    for level in LEVELS:
        flags = hits(results, truth, level)
        figures[f"{level} MRR@10"] = reciprocal_rank(flags)
        figures[f"{level} R@1"] = 1.0 if flags[:1] == [True] else 0.0
        figures[f"{level} hit@10"] = 1.0 if any(flags[:10]) else 0.0
    figures["document nDCG@10"] = ndcg(hits(results, truth, "document"), truth.relevant_chunks)
    return figures


def mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.mean(r[key] for r in rows), 3) for key in rows[0]}


def bootstrap(
    a: list[float], b: list[float], rounds: int = 2000, seed: int = 1
) -> tuple[float, float]:
    """95% interval of mean(a - b) over questions resampled with replacement."""
    rng = random.Random(seed)
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))
    return round(means[int(0.025 * rounds)], 3), round(means[int(0.975 * rounds)], 3)
