"""Fusing keyword (BM25) and dense rankings. Which method and weight is the default is
decided by the retrieval benchmark (benchmarks/README.md), not assumed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

FusionMethod = Literal["weighted", "rrf"]
Bm25Scaling = Literal["max", "saturate"]


@dataclass(frozen=True, slots=True)
class FusionSettings:
    """`weighted`: dense_weight x cosine + (1 - dense_weight) x BM25 scaled to [0, 1],
    either by the best BM25 score among the candidates (`max`) or as
    s / (s + bm25_half) (`saturate`: a score of `bm25_half` counts one half, whatever
    the other candidates scored). `rrf`: reciprocal rank fusion, sum of
    1 / (rrf_k + rank)."""

    # Defaults chosen by the retrieval benchmark (benchmarks/README.md): within 0.002
    # nDCG@10 of the best of the fusions tried, in the middle of a plateau of good
    # settings, and above dense alone on both halves of the question set.
    method: FusionMethod = "weighted"
    dense_weight: float = 0.8
    bm25_scaling: Bm25Scaling = "saturate"
    bm25_half: float = 20.0
    rrf_k: int = 60

    def __post_init__(self) -> None:
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError("dense_weight must be between 0 and 1")
        if self.rrf_k < 1:
            raise ValueError("rrf_k must be at least 1")
        if self.bm25_half <= 0:
            raise ValueError("bm25_half must be positive")


def weighted(
    bm25: Mapping[int, float],
    dense: Mapping[int, float],
    dense_weight: float,
    scaling: Bm25Scaling = "max",
    half: float = 10.0,
) -> dict[int, float]:
    """Fused scores for every id in either mapping (a missing score counts as 0)."""
    top = max(bm25.values(), default=0.0)
    fused: dict[int, float] = {}
    for key in set(bm25) | set(dense):
        score = max(bm25.get(key, 0.0), 0.0)
        if scaling == "saturate":
            keyword = score / (score + half)
        else:
            keyword = score / top if top > 0 else 0.0
        fused[key] = dense_weight * dense.get(key, 0.0) + (1 - dense_weight) * keyword
    return fused


def reciprocal_rank(rankings: Sequence[Sequence[int]], k: int = 60) -> dict[int, float]:
    """Reciprocal rank fusion over several best-first rankings of ids."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (k + rank)
    return fused


def fuse(
    settings: FusionSettings, bm25: Mapping[int, float], dense: Mapping[int, float]
) -> dict[int, float]:
    if settings.method == "rrf":
        by_bm25 = sorted(bm25, key=lambda i: -bm25[i])
        by_dense = sorted(dense, key=lambda i: -dense[i])
        return reciprocal_rank([by_bm25, by_dense], settings.rrf_k)
    return weighted(bm25, dense, settings.dense_weight, settings.bm25_scaling, settings.bm25_half)
