"""A cloud embedding model plugs in through the model layer's adapter: the OpenAI
adapter, served by the wire-format fake, wrapped by `ClientEmbedder`, feeds a
knowledge base (this wiring is what the copilot runtime does)."""

from __future__ import annotations

from contextlib import aclosing
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.knowledge import ClientEmbedder, IndexMismatchError, KnowledgeBase
from pilothouse.models import create_model
from pilothouse.models.openai_chat import OpenAIChatModel
from pilothouse.testing.loopback import serve_app
from tests.fakes.openai_api import FakeOpenAI, fake_embedding


async def test_openai_embeddings_through_the_model_layer(tmp_path: Path) -> None:
    fake = FakeOpenAI(flavor="openai")
    with serve_app(fake.app) as url:
        settings = Settings.from_sources(
            home=tmp_path,
            environ={},
            file_data={"providers": {"openai": {"base_url": url, "api_key": "test-key"}}},
        )
        model = create_model("openai:text-embedding-3-small", settings)
        assert isinstance(model, OpenAIChatModel)
        async with aclosing(model):
            model.embedding_batch_size = 3
            dims = len(fake_embedding("x"))
            embedder = ClientEmbedder(
                model, model_id="openai:text-embedding-3-small", dimensions=dims, batch_size=4
            )
            folder = tmp_path / "docs"
            folder.mkdir()
            for i in range(5):
                (folder / f"d{i}.md").write_text(f"# Doc {i}\n\nDocument number {i} text.")
            base = KnowledgeBase(tmp_path / "kb.sqlite3", embedder)
            report = await base.add([str(folder)])
            assert report.count("added") == 5 and not report.failures
            assert fake.paths and set(fake.paths) == {"/embeddings"}
            assert {r["model"] for r in fake.requests} == {"text-embedding-3-small"}
            results = await base.search(
                "Document number 3 text",
            )
            assert results and results[0].scores.get("dense") is not None
            assert base.stats()["settings"]["embedding_model"] == "openai:text-embedding-3-small"
            base.close()

            # The same index opened with the local model is refused, not mixed.
            other = KnowledgeBase.open_local(tmp_path / "kb.sqlite3")
            with pytest.raises(IndexMismatchError, match="openai:text-embedding-3-small"):
                await other.search("anything")
            other.close()
