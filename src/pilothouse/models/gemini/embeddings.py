"""Gemini embeddings (`:batchEmbedContents`): what may be sent, in what batches, and
reading the vectors back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pilothouse.errors import BadRequestError, MalformedResponseError
from pilothouse.models.http import number_list

DEFAULT_EMBEDDING_MODEL = "gemini-embedding-001"
EMBED_BATCH_SIZE = 100  # the most requests one batchEmbedContents call takes


def checked_texts(texts: Sequence[str], *, model: str) -> list[str]:
    """The texts as a list, or `BadRequestError` for input Gemini cannot embed."""
    if isinstance(texts, str):
        raise BadRequestError("embed() takes a list of texts, not one string", model=model)
    items = list(texts)
    for index, text in enumerate(items):
        if not isinstance(text, str) or not text.strip():
            raise BadRequestError(
                f"text {index} is empty or not a string; Gemini cannot embed it", model=model
            )
    return items


def batch_payloads(items: list[str], name: str) -> list[tuple[int, dict[str, Any]]]:
    """(texts in the batch, request body) for each batch of at most `EMBED_BATCH_SIZE`."""
    path = name if name.startswith("models/") else f"models/{name}"
    out: list[tuple[int, dict[str, Any]]] = []
    for start in range(0, len(items), EMBED_BATCH_SIZE):
        batch = items[start : start + EMBED_BATCH_SIZE]
        requests = [{"model": path, "content": {"parts": [{"text": t}]}} for t in batch]
        out.append((len(batch), {"requests": requests}))
    return out


def parse_vectors(data: dict[str, Any], expected: int, *, label: str) -> list[list[float]]:
    """The `expected` vectors of a `batchEmbedContents` answer, in order."""
    embeddings = data.get("embeddings")
    if not isinstance(embeddings, list) or len(embeddings) != expected:
        got = len(embeddings) if isinstance(embeddings, list) else "no"
        raise MalformedResponseError(
            f"batchEmbedContents returned {got} embeddings for {expected} texts", model=label
        )
    vectors: list[list[float]] = []
    for embedding in embeddings:
        values = number_list(embedding.get("values")) if isinstance(embedding, dict) else None
        if values is None:
            raise MalformedResponseError("an embedding has no numeric values", model=label)
        vectors.append(values)
    return vectors
