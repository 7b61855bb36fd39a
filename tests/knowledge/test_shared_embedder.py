"""One local embedding model per process: every knowledge base and copilot uses the
same loaded session and tokenizer, from any thread, and a forked child makes its own."""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.knowledge.base import KnowledgeBase
from pilothouse.knowledge.local_embedder import LocalMiniLM, shared_minilm
from pilothouse.models import FunctionModel

TEXT = "The VPN client is WireGuard."


def _copilot(folder: Path, name: str, fact: str) -> Path:
    (folder / "knowledge").mkdir(parents=True)
    (folder / "knowledge/facts.md").write_text(f"# Facts\n\n{fact}\n")
    (folder / "copilot.yaml").write_text(
        f"name: {name}\ninstructions: Answer from the passages.\n"
        "model: {primary: openai:gpt-4o-mini}\nknowledge: {sources: [knowledge]}\n"
    )
    return folder


async def test_two_copilots_in_one_process_share_one_embedding_model(tmp_path: Path) -> None:
    settings = Settings.from_sources(home=tmp_path / "home", environ={})
    model = FunctionModel(lambda r: "WireGuard [1].", model_id="openai:gpt-4o-mini")
    first = await Copilot.open(
        _copilot(tmp_path / "a", "a", TEXT), settings=settings, models=[model]
    )
    second = await Copilot.open(
        _copilot(tmp_path / "b", "b", "Printers are on floor 3."), settings=settings, models=[model]
    )
    try:
        assert first.knowledge is not None and second.knowledge is not None
        assert first.knowledge.embedder is second.knowledge.embedder is shared_minilm()
        assert first.knowledge.counter is second.knowledge.counter
        # Each still finds its own passages through the shared model.
        answer = await first.ask("Which VPN client do we use?")
        assert [c.source for c in answer.citations] == ["knowledge/facts.md"]
        assert "WireGuard" in model.requests[-1].messages[-1].text
        await second.ask("Where are the printers?")
        assert "floor 3" in model.requests[-1].messages[-1].text
    finally:
        await first.aclose()
        await second.aclose()


def test_knowledge_bases_opened_apart_share_it_too(tmp_path: Path) -> None:
    one = KnowledgeBase.open_local(tmp_path / "one.sqlite3")
    two = KnowledgeBase.open_local(tmp_path / "two.sqlite3")
    try:
        assert one.embedder is two.embedder
    finally:
        one.close()
        two.close()


def test_threads_asking_at_once_get_one_model_and_the_same_vectors() -> None:
    def use(_: int) -> tuple[LocalMiniLM, Any]:
        model = shared_minilm()
        return model, model.embed_array([TEXT])

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(use, range(8)))
    assert len({id(model) for model, _ in results}) == 1
    for _, vector in results:
        assert np.allclose(vector, results[0][1], atol=1e-6)


def _embed_in_child(queue: Any) -> None:
    queue.put(asyncio.run(shared_minilm().embed([TEXT])))


def test_a_forked_child_embeds_with_a_model_of_its_own() -> None:
    # The parent's model has a worker thread; a fork does not copy threads, so a child
    # that used the parent's would wait for it forever.
    parent = np.array(asyncio.run(shared_minilm().embed([TEXT])))
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_embed_in_child, args=(queue,))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
        child.join()
    assert child.exitcode == 0, "the child did not finish embedding"
    assert np.allclose(np.array(queue.get(timeout=5)), parent, atol=1e-5)
