"""Retrieval settings are applied, verifiably: modes, fusion, filters, thresholds,
near-duplicate removal, top-k, and rerank."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.knowledge import (
    Filters,
    FusionSettings,
    IngestOptions,
    KnowledgeBase,
    RerankSettings,
    SearchOptions,
)
from pilothouse.knowledge.fusion import reciprocal_rank, weighted
from pilothouse.knowledge.query import fts_query

TOPICS = {
    "otters.md": "# Otters\n\nOtters are semi-aquatic mammals that eat fish and crabs.",
    "owls.md": "# Owls\n\nOwls are nocturnal birds of prey with silent flight.",
    "oaks.md": "# Oaks\n\nOak trees grow acorns and live for centuries.",
    "ants.txt": "Ants live in colonies with a queen and worker ants.",
    "copy1.md": "# Bees\n\nBees make honey from flower nectar in the hive.",
    "copy2.md": "# Bees\n\nBees make honey from flower nectar in the hive.",
}


ANIMALS = ("otters.md", "owls.md")


@pytest.fixture
async def filled(tmp_path: Path, kb: KnowledgeBase) -> KnowledgeBase:
    for name, text in TOPICS.items():
        folder = tmp_path / ("animals" if name in ANIMALS else "other")
        folder.mkdir(exist_ok=True)
        (folder / name).write_text(text)
    await kb.add([str(tmp_path / "animals")], options=IngestOptions(tags=("animals",)))
    await kb.add([str(tmp_path / "other")])
    return kb


async def test_each_mode_finds_the_obvious_document(filled: KnowledgeBase) -> None:
    for mode in ("bm25", "dense", "hybrid"):
        results = await filled.search(
            "nocturnal birds silent flight", SearchOptions(mode=mode, k=3)
        )
        assert results[0].source.endswith("owls.md"), mode
        assert results[0].score == max(r.score for r in results)


async def test_scores_say_which_methods_contributed(filled: KnowledgeBase) -> None:
    (top,) = await filled.search("acorns", SearchOptions(k=1))
    assert set(top.scores) == {"bm25", "dense", "fused"}
    fusion = FusionSettings()
    assert fusion.bm25_scaling == "saturate"
    bm25 = top.scores["bm25"]
    expected = fusion.dense_weight * top.scores["dense"] + (1 - fusion.dense_weight) * (
        bm25 / (bm25 + fusion.bm25_half)
    )
    assert top.score == pytest.approx(expected)
    relative = await filled.search(
        "acorns", SearchOptions(k=1, fusion=FusionSettings(dense_weight=0.5, bm25_scaling="max"))
    )
    # Scaled by the best candidate, the top BM25 hit counts fully.
    assert relative[0].score == pytest.approx(0.5 * relative[0].scores["dense"] + 0.5)
    (only,) = await filled.search("acorns", SearchOptions(mode="bm25", k=1))
    assert set(only.scores) == {"bm25"}


async def test_min_score_is_applied(filled: KnowledgeBase) -> None:
    everything = await filled.search("mammals fish", SearchOptions(k=10, mode="dense"))
    assert len(everything) >= 3
    cut = (everything[0].score + everything[1].score) / 2
    kept = await filled.search("mammals fish", SearchOptions(k=10, mode="dense", min_score=cut))
    assert [r.chunk_id for r in kept] == [everything[0].chunk_id]
    assert all(r.score >= cut for r in kept)
    none = await filled.search("mammals fish", SearchOptions(k=10, min_score=10.0))
    assert none == []


async def test_top_k_is_respected(filled: KnowledgeBase) -> None:
    for k in (1, 2, 4):
        assert len(await filled.search("the", SearchOptions(k=k, mode="dense"))) == k


async def test_near_duplicates_are_removed_unless_disabled(filled: KnowledgeBase) -> None:
    results = await filled.search("honey bees nectar", SearchOptions(k=5))
    bees = [r for r in results if "Bees" in r.text or "honey" in r.text]
    assert len(bees) == 1
    raw = await filled.search("honey bees nectar", SearchOptions(k=5, dedup_similarity=None))
    assert len([r for r in raw if "honey" in r.text]) == 2


async def test_filters_by_source_kind_and_tag(filled: KnowledgeBase) -> None:
    by_kind = await filled.search(
        "colonies queen", SearchOptions(k=10, filters=Filters(kinds=("text",)))
    )
    assert by_kind and all(r.kind == "text" for r in by_kind)
    by_tag = await filled.search(
        "ants colonies queen", SearchOptions(k=10, filters=Filters(tags=("animals",)))
    )
    assert by_tag and {Path(r.source).name for r in by_tag} <= {"otters.md", "owls.md"}
    by_source = await filled.search(
        "trees", SearchOptions(k=10, filters=Filters(sources=("*/oaks.md",)))
    )
    assert [Path(r.source).name for r in by_source] == ["oaks.md"]
    for mode in ("bm25", "dense", "hybrid"):
        none = await filled.search(
            "trees", SearchOptions(mode=mode, filters=Filters(sources=("*/zzz*",)))
        )
        assert none == []


async def test_empty_knowledge_base_and_empty_query(
    kb: KnowledgeBase, filled: KnowledgeBase
) -> None:
    assert await filled.search("   ") == []


async def test_nothing_indexed_yet_returns_nothing(tmp_path: Path) -> None:
    from pilothouse.knowledge.testing import HashingEmbedder

    base = KnowledgeBase(tmp_path / "empty.sqlite3", HashingEmbedder())
    assert await base.search("anything") == []
    base.close()


async def test_rrf_fusion_can_be_chosen(filled: KnowledgeBase) -> None:
    options = SearchOptions(k=3, fusion=FusionSettings(method="rrf"))
    results = await filled.search("owls nocturnal", options)
    assert results[0].source.endswith("owls.md")
    assert results[0].score <= 2 / 61  # two rankings, best rank 1 each


def test_weighted_fusion_and_rrf_arithmetic() -> None:
    fused = weighted({1: 10.0, 2: 5.0}, {1: 0.2, 3: 0.9}, dense_weight=0.5)
    assert fused == pytest.approx({1: 0.6, 2: 0.25, 3: 0.45})
    saturated = weighted({1: 10.0}, {1: 0.2}, dense_weight=0.5, scaling="saturate", half=10.0)
    assert saturated == pytest.approx({1: 0.5 * 0.2 + 0.5 * 0.5})
    rrf = reciprocal_rank([[1, 2], [2, 3]], k=60)
    assert rrf == pytest.approx({1: 1 / 61, 2: 1 / 62 + 1 / 61, 3: 1 / 62})


def test_fts_query_quotes_words_and_drops_stopwords() -> None:
    assert fts_query('How do I "install" the widget?') == '"install" OR "widget"'
    assert fts_query("the") == '"the"'
    assert fts_query("?!") is None


def test_invalid_options_are_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        SearchOptions(mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must"):
        SearchOptions(k=0)
    with pytest.raises(ValueError, match="dense_weight"):
        FusionSettings(dense_weight=1.5)


class Judge:
    """Relevant when the passage mentions the word; can be told to fail."""

    def __init__(self, word: str, fail_on: str | None = None):
        self.word = word
        self.fail_on = fail_on
        self.seen: list[str] = []

    async def judge(self, query: str, passage: str) -> float:
        self.seen.append(passage)
        if self.fail_on and self.fail_on in passage:
            raise RuntimeError("judge broke")
        return 1.0 if self.word in passage.lower() else 0.0


async def test_rerank_reorders_and_drops_irrelevant_passages(filled: KnowledgeBase) -> None:
    plain = await filled.search("animals that live", SearchOptions(k=5))
    judge = Judge("ants")
    reranked = await filled.search("animals that live", SearchOptions(k=5), judge=judge)
    assert judge.seen, "the judge was consulted"
    assert len(plain) > 1 and len(judge.seen) == len(plain)
    assert [r.text for r in reranked] == [r.text for r in plain if "ants" in r.text.lower()]
    assert len(reranked) == 1 and reranked[0].scores["rerank"] == 1.0


async def test_a_failing_judge_never_loses_a_passage_silently(filled: KnowledgeBase) -> None:
    judge = Judge("owls", fail_on="Otters")
    results = await filled.search(
        "otters owls", SearchOptions(k=5), judge=judge, rerank_settings=RerankSettings(top_n=5)
    )
    owls = [r for r in results if "Owls" in r.text]
    otters = [r for r in results if "Otters" in r.text]
    assert owls and owls[0].scores["rerank"] == 1.0
    assert otters and otters[0].scores["rerank_error"] == 1.0
    assert results.index(owls[0]) < results.index(otters[0])


async def test_very_common_terms_are_left_out_of_keyword_search(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(20):
        (folder / f"d{i}.md").write_text(f"Python scripts number {i} print things.")
    (folder / "z.md").write_text("Python scripts feed the zebras.")
    await kb.add([str(folder)])
    keywords = kb.retriever.keywords
    # "python" and "scripts" (stemmed "script") are in every chunk: pruned at 10%.
    assert keywords.searchable_words("python scripts for zebras", 0.1) == ["zebras"]
    assert keywords.searchable_words("python scripts for zebras", 1.0) == [
        "python",
        "scripts",
        "zebras",
    ]
    # Only common words: the rarest are kept rather than nothing.
    assert len(keywords.searchable_words("python scripts", 0.1)) == 2
    pruned = await kb.search("python zebras", SearchOptions(mode="bm25", k=3, keyword_max_df=0.1))
    assert [Path(r.source).name for r in pruned] == ["z.md"]
    # BM25 mode is plain BM25 unless asked otherwise: every term counts.
    full = await kb.search("python zebras", SearchOptions(mode="bm25", k=3))
    assert len(full) == 3 and Path(full[0].source).name == "z.md"
    assert SearchOptions(mode="hybrid").max_df == 0.1 and SearchOptions(mode="bm25").max_df == 1.0


async def test_rerank_top_n_below_k_keeps_the_unjudged_results(filled: KnowledgeBase) -> None:
    plain = await filled.search("animals that live", SearchOptions(k=5))
    judge = Judge("ants")
    reranked = await filled.search(
        "animals that live",
        SearchOptions(k=5),
        judge=judge,
        rerank_settings=RerankSettings(top_n=2),
    )
    assert len(judge.seen) == 2
    judged_ids = {r.chunk_id for r in plain[:2]}
    # The two judged passages first (the irrelevant one dropped), then the rest unjudged.
    assert [r.chunk_id for r in reranked if r.chunk_id not in judged_ids] == [
        r.chunk_id for r in plain[2:]
    ]
    assert all("rerank" not in r.scores for r in reranked if r.chunk_id not in judged_ids)


async def test_rerank_keeps_the_callers_keyword_pruning(filled: KnowledgeBase) -> None:
    seen: list[float] = []
    search = filled.retriever.keywords.search

    def spy(*args: object, max_df: float = 0.1, **kwargs: object) -> list[tuple[int, float]]:
        seen.append(max_df)
        return search(*args, max_df=max_df, **kwargs)  # type: ignore[arg-type]

    filled.retriever.keywords.search = spy  # type: ignore[method-assign]
    options = SearchOptions(k=3, keyword_max_df=0.5)
    await filled.search("owls", options, judge=Judge("owls"))
    assert seen == [0.5]


async def test_duplicates_never_leave_fewer_than_k_results(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    folder = tmp_path / "versions"
    folder.mkdir()
    for version in range(30):  # one manual page indexed in thirty versions
        (folder / f"v{version}.md").write_text("Bees make honey from flower nectar in the hive.")
    distinct = ["wax combs", "queen bees", "drones", "pollen baskets", "swarming in spring"]
    for n, topic in enumerate(distinct):
        (folder / f"other{n}.md").write_text(f"Honey bees and {topic}: notes number {n}.")
    await kb.add([str(folder)])
    for mode in ("dense", "bm25", "hybrid"):
        options = SearchOptions(mode=mode, k=5, candidates=8)  # type: ignore[arg-type]
        results = await kb.search("bees make honey from nectar", options)
        assert len(results) == 5, mode
        texts = [r.text for r in results]
        assert len(set(texts)) == 5, mode
        assert texts.count("Bees make honey from flower nectar in the hive.") == 1, mode
