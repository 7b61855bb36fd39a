"""The embeddings side of the OpenAI protocol (`POST .../embeddings`): what may be sent,
in what batches, and reading the vectors back in input order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pilothouse.errors import BadRequestError, MalformedResponseError
from pilothouse.models.http import number_list
from pilothouse.models.openai_chat.response import error_in, vendor_error

# OpenAI accepts at most 2048 inputs per embeddings request (and about 300k tokens in
# all); 256 keeps a batch of typical knowledge chunks well under both.
EMBEDDING_INPUT_LIMIT = 2048
DEFAULT_EMBEDDING_BATCH = 256


def checked_texts(texts: Sequence[str], *, model: str) -> list[str]:
    """The texts as a list, or `BadRequestError` for input the API would reject."""
    if isinstance(texts, str):
        raise BadRequestError(
            "embed() takes a sequence of texts, not one string; wrap it in a list",
            model=model,
        )
    items = list(texts)
    for position, text in enumerate(items):
        if not isinstance(text, str) or not text:
            raise BadRequestError(
                f"text {position} to embed is empty or not a string; the embeddings API "
                "rejects empty input, so drop or replace it",
                model=model,
            )
    return items


def batches(items: list[str], size: int) -> list[list[str]]:
    """`items` in batches of `size`, kept within `EMBEDDING_INPUT_LIMIT`."""
    size = max(1, min(size, EMBEDDING_INPUT_LIMIT))
    return [items[start : start + size] for start in range(0, len(items), size)]


def embeddings_payload(batch: list[str], *, name: str | None) -> dict[str, Any]:
    """The body for one batch; `name` is None where the URL names the model (Azure)."""
    payload: dict[str, Any] = {"input": batch, "encoding_format": "float"}
    if name is not None:
        payload["model"] = name
    return payload


def parse_embeddings(
    data: dict[str, Any], count: int, *, model: str, url: str
) -> list[list[float]]:
    """The `count` vectors of an embeddings answer, in input order (by `index`)."""
    error = error_in(data)
    if error is not None:
        raise vendor_error(error, model=model, where=f"the answer from {url}")
    items = data.get("data")
    if not isinstance(items, list) or len(items) != count:
        got = len(items) if isinstance(items, list) else "no"
        raise MalformedResponseError(f"{url} sent {got} embeddings for {count} inputs", model=model)
    vectors: list[list[float] | None] = [None] * count
    for item in items:
        index = item.get("index") if isinstance(item, dict) else None
        vector = number_list(item.get("embedding")) if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < count or vectors[index] is not None:
            raise MalformedResponseError(f"{url} sent an embedding with a bad index", model=model)
        if not vector:
            raise MalformedResponseError(
                f"{url} sent embedding {index} that is not a list of numbers", model=model
            )
        vectors[index] = vector
    dimensions = {len(v) for v in vectors if v is not None}
    if len(dimensions) != 1:
        raise MalformedResponseError(f"{url} sent embeddings of different lengths", model=model)
    return [v for v in vectors if v is not None]
