"""A chat model as a constrained yes/no relevance judge for knowledge reranking."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.copilot.copilot import Copilot
from pilothouse.copilot.definition import load_definition
from pilothouse.copilot.rerank import RELEVANCE_SCHEMA, ModelRelevanceJudge
from pilothouse.errors import ConfigError, ResponseRejectedError
from pilothouse.knowledge import KnowledgeBase, RerankSettings, SearchOptions
from pilothouse.knowledge.testing import HashingEmbedder
from pilothouse.models.testing import FunctionModel
from pilothouse.types import ModelRequest


def passage_of(request: ModelRequest) -> str:
    return request.messages[-1].text.split("Passage:\n", 1)[1]


def otter_judge(request: ModelRequest) -> str:
    return '{"relevant": true}' if "otter" in passage_of(request).lower() else '{"relevant": false}'


async def test_the_judge_asks_a_constrained_yes_no_question() -> None:
    model = FunctionModel(otter_judge)
    judge = ModelRelevanceJudge(model)
    assert await judge.judge("river animals", "Otters swim in rivers.") == 1.0
    assert await judge.judge("river animals", "Oak trees grow acorns.") == 0.0
    request = model.requests[0]
    assert request.output_schema is not None
    assert request.output_schema.schema == RELEVANCE_SCHEMA
    assert request.temperature == 0.0
    # Shared prefix first (system, question), the passage last.
    assert request.messages[0].role == "system"
    assert request.messages[-1].text.startswith("Question: river animals")
    assert request.messages[-1].text.index("Question") < request.messages[-1].text.index("Otters")


async def test_long_passages_are_cut() -> None:
    model = FunctionModel(otter_judge)
    await ModelRelevanceJudge(model, max_passage_chars=50).judge("q", "otter " * 100)
    assert len(passage_of(model.requests[0])) < 100


@pytest.mark.parametrize("answer", ["yes", '{"relevant": "yes"}', "[true]", ""])
async def test_an_answer_outside_the_schema_is_rejected(answer: str) -> None:
    judge = ModelRelevanceJudge(FunctionModel(lambda request: answer))
    with pytest.raises(ResponseRejectedError, match="relevance judge"):
        await judge.judge("q", "p")


async def test_knowledge_search_reranks_with_a_model_judge(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "otters.md").write_text("# Otters\n\nOtters are river animals that eat fish.")
    (folder / "oaks.md").write_text("# Oaks\n\nOak trees by the river grow acorns.")
    (folder / "owls.md").write_text("# Owls\n\nOwls hunt by the river at night.")
    base = KnowledgeBase(tmp_path / "kb.sqlite3", HashingEmbedder())
    await base.add([str(folder)])
    plain = await base.search("river", SearchOptions(k=3))
    assert len(plain) == 3
    model = FunctionModel(otter_judge)
    reranked = await base.search(
        "river",
        SearchOptions(k=3),
        judge=ModelRelevanceJudge(model),
        rerank_settings=RerankSettings(),
    )
    assert [r.source for r in reranked] == [str(folder / "otters.md")]
    assert reranked[0].scores["rerank"] == 1.0
    assert len(model.requests) == 3  # every candidate was judged

    # A judge that breaks keeps every passage, marked, instead of dropping them.
    broken = ModelRelevanceJudge(FunctionModel(lambda request: "no idea"))
    kept = await base.search("river", SearchOptions(k=3), judge=broken)
    assert len(kept) == 3 and all(r.scores.get("rerank_error") == 1.0 for r in kept)
    base.close()


@pytest.mark.real_model
async def test_the_local_model_judges_through_constrained_decoding() -> None:
    """The embedded 0.5B model, asked the constrained yes/no question, answers in the
    schema and tells an obviously relevant passage from an unrelated one."""
    from pilothouse.config import Settings
    from pilothouse.models.local import LocalModel
    from pilothouse.models.providers import resolve_endpoint
    from tests.real_model import REAL_MODEL, real_weights

    gguf = real_weights()
    settings = Settings.from_sources(
        home=gguf.parent.parent, environ={}, file_data={"local": {"context_size": 2048}}
    )
    model = LocalModel(
        f"local:{REAL_MODEL}", REAL_MODEL, resolve_endpoint("local", settings), settings
    )
    judge = ModelRelevanceJudge(model)
    try:
        question = "How do I reset my forgotten password?"
        relevant = await judge.judge(
            question,
            "If you have forgotten your password, use the self-service reset portal at "
            "reset.example.com and confirm with the code sent to your phone.",
        )
        unrelated = await judge.judge(
            question, "The canteen serves lunch from 11:30 to 14:00; soup costs 3 euros."
        )
    finally:
        await model.aclose()
    assert relevant == 1.0
    assert unrelated == 0.0


def _with_retrieval(folder: Path, retrieval: str) -> None:
    path = folder / "copilot.yaml"
    text = path.read_text()
    path.write_text(text.replace("retrieval: {mode: hybrid, top_k: 2}", f"retrieval: {retrieval}"))


def _printing_judge_and_answer(request: ModelRequest) -> str:
    if request.output_schema is not None:  # a relevance judgement
        return '{"relevant": true}' if "Printers" in passage_of(request) else '{"relevant": false}'
    return "Printers are on floor 3 [1]."


async def test_copilot_rerank_setting_takes_effect(copilot_dir: Path, settings: Settings) -> None:
    _with_retrieval(copilot_dir, "{mode: hybrid, top_k: 2, rerank: true, rerank_top_n: 2}")
    model = FunctionModel(_printing_judge_and_answer, model_id="local:qwen")
    copilot = await Copilot.open(copilot_dir, settings=settings, models=[model])
    try:
        answer = await copilot.ask("Which VPN client do we use?")
    finally:
        await copilot.aclose()
    judged = [r for r in model.requests if r.output_schema is not None]
    assert 1 <= len(judged) <= 2  # at most rerank_top_n passages were judged
    # The judge found only the printing passage relevant: it alone grounds the answer.
    prompt = next(r for r in model.requests if r.output_schema is None).messages[-1].text
    assert "Printers are on floor 3" in prompt and "WireGuard" not in prompt
    assert answer.status == "completed"


async def test_copilot_without_rerank_asks_no_judge(copilot_dir: Path, settings: Settings) -> None:
    model = FunctionModel(_printing_judge_and_answer, model_id="local:qwen")
    copilot = await Copilot.open(copilot_dir, settings=settings, models=[model])
    try:
        await copilot.ask("Which VPN client do we use?")
    finally:
        await copilot.aclose()
    assert not [r for r in model.requests if r.output_schema is not None]


def test_rerank_model_without_rerank_is_refused(copilot_dir: Path) -> None:
    _with_retrieval(copilot_dir, "{top_k: 2, rerank_model: 'openai:gpt-4.1-mini'}")
    with pytest.raises(ConfigError, match="rerank is false"):
        load_definition(copilot_dir)
