"""The optional rerank step: a relevance judge (any chat model asked a constrained
yes/no question; see pilothouse.copilot.rerank) reorders the retrieved passages and
drops those it judges irrelevant. Failures are visible, never silent."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from typing import Protocol

from pilothouse.knowledge.documents import SearchResult

log = logging.getLogger(__name__)


class RelevanceJudge(Protocol):
    """Says how relevant a passage is to a query: 1.0 relevant, 0.0 not (values in
    between allowed). Raises when it cannot tell."""

    async def judge(self, query: str, passage: str) -> float: ...


@dataclass(frozen=True, slots=True)
class RerankSettings:
    """The best `top_n` passages are judged, at most `concurrency` at a time; those
    below `min_relevance` are dropped. A passage whose judgement failed is kept
    (after the judged ones) with `scores["rerank_error"] = 1.0`; passages beyond
    `top_n` are not judged and follow, in retrieval order."""

    top_n: int = 20
    min_relevance: float = 0.5
    concurrency: int = 4

    def __post_init__(self) -> None:
        if self.top_n < 1 or self.concurrency < 1:
            raise ValueError("top_n and concurrency must be at least 1")


async def rerank(
    query: str,
    results: list[SearchResult],
    judge: RelevanceJudge,
    settings: RerankSettings | None = None,
) -> list[SearchResult]:
    """Judged results, most relevant first (ties keep retrieval order), then those
    whose judgement failed, then the unjudged rest."""
    settings = settings or RerankSettings()
    limit = asyncio.Semaphore(max(1, settings.concurrency))
    candidates = results[: settings.top_n]

    async def one(result: SearchResult) -> float | None:
        async with limit:
            try:
                return float(await judge.judge(query, result.text))
            except Exception as exc:  # a judge failure must not lose the passage
                log.warning("rerank judge failed for %s: %s", result.citation, exc)
                return None

    verdicts = await asyncio.gather(*(one(r) for r in candidates))
    judged: list[tuple[float, int, SearchResult]] = []
    failed: list[SearchResult] = []
    for position, (result, verdict) in enumerate(zip(candidates, verdicts, strict=True)):
        if verdict is None:
            failed.append(
                dataclasses.replace(result, scores={**result.scores, "rerank_error": 1.0})
            )
        elif verdict >= settings.min_relevance:
            scored = dataclasses.replace(result, scores={**result.scores, "rerank": verdict})
            judged.append((verdict, position, scored))
    judged.sort(key=lambda item: (-item[0], item[1]))
    return [r for _, _, r in judged] + failed + results[settings.top_n :]
