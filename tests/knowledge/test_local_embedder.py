"""The real local embedding model (int8 ONNX all-MiniLM-L6-v2): small and fast, so
these run in every test run. Everything else uses the hashing embedder."""

from __future__ import annotations

import numpy as np

from pilothouse.knowledge.local_embedder import (
    DIMENSIONS,
    LocalMiniLM,
    minilm_token_counter,
    model_file,
    tokenizer_file,
)


async def test_real_model_embeds_meaning_not_just_words() -> None:
    model = LocalMiniLM()
    vectors = np.array(
        await model.embed(
            [
                "How do I get my money back?",
                "Refunds are paid within 14 days of receiving the goods.",
                "Bolt the frame to the wall with four bolts.",
            ]
        )
    )
    assert vectors.shape == (3, DIMENSIONS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.1


async def test_real_model_is_deterministic_and_batch_independent() -> None:
    model = LocalMiniLM(batch_size=2)
    texts = ["short", "a much longer sentence about the weather in Oslo today", "mid length text"]
    together = np.array(await model.embed(texts))
    alone = np.array([await model.embed([t]) for t in texts]).reshape(3, -1)
    assert np.allclose(together, alone, atol=1e-4)


def test_assets_come_from_packages_with_pinned_hashes() -> None:
    assert model_file().name == "model.onnx"
    assert tokenizer_file().name == "tokenizer.json"
    counter = minilm_token_counter()
    assert counter.count("Refunds are paid") == 4  # refund ##s are paid


async def test_fixed_padded_lengths_and_arena_setting_do_not_change_vectors() -> None:
    texts = ["short", "a much longer sentence about the weather in Oslo today", "mid length text"]
    plain = np.array(await LocalMiniLM(batch_size=8).embed(texts))
    padded = np.array(await LocalMiniLM(batch_size=8, pad_to=(64, 256)).embed(texts))
    arena = np.array(await LocalMiniLM(batch_size=8, memory_arena=True).embed(texts))
    assert np.allclose(plain, padded, atol=1e-4)
    assert np.allclose(plain, arena, atol=1e-5)
