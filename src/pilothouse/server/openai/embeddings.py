"""`/v1/embeddings`: the embedded local embedding model, and any model whose adapter
can embed (OpenAI-compatible hosts, Azure, Gemini), by `provider:model` id or through a
gateway route (its targets tried in order)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import orjson

from pilothouse.config import Settings
from pilothouse.errors import ConfigError, ModelError
from pilothouse.knowledge.local_embedder import MODEL_ID
from pilothouse.models.base import Model
from pilothouse.models.registry import create_model
from pilothouse.server.asgi import HTTPError
from pilothouse.server.openai.request import bad

LOCAL_EMBEDDER = MODEL_ID
MAX_INPUTS = 2048


class _Embeds(Protocol):
    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class Embeddings:
    """Embedding models by id, made on first use and closed with the server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._models: dict[str, Any] = {}

    async def aclose(self) -> None:
        models, self._models = self._models, {}
        for model in models.values():
            if isinstance(model, Model):
                await model.aclose()

    def _model(self, model_id: str) -> Any:
        model = self._models.get(model_id)
        if model is not None:
            return model
        if model_id == LOCAL_EMBEDDER:
            from pilothouse.knowledge.local_embedder import shared_minilm

            model = shared_minilm()
        else:
            try:
                model = create_model(model_id, self.settings)
            except ConfigError as exc:
                raise HTTPError(404, str(exc), code="model_not_found", param="model") from None
            if not callable(getattr(model, "embed", None)):
                raise HTTPError(
                    400,
                    f"model {model_id!r} cannot embed: use {LOCAL_EMBEDDER}, or an OpenAI-"
                    "compatible, Azure or Gemini embedding model",
                    code="model_cannot_embed",
                    param="model",
                )
        if len(self._models) < 256:
            self._models[model_id] = model
        return model

    async def _embed(self, model_id: str, texts: list[str]) -> list[list[float]]:
        model = self._model(model_id)
        if model_id == LOCAL_EMBEDDER:
            vectors: list[list[float]] = await model.embed(texts)
            return vectors
        name = model_id.partition(":")[2]
        result: list[list[float]] = await model.embed(texts, model=name)
        return result

    async def answer(self, data: dict[str, Any], targets: list[str], shown: str) -> bytes:
        """The embeddings response body for a checked request, trying `targets`."""
        texts = _texts(data.get("input"))
        fmt = data.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            raise bad("encoding_format must be float or base64", "encoding_format")
        if data.get("dimensions") is not None:
            raise bad("'dimensions' is not supported; the model's own size is used", "dimensions")
        errors: list[str] = []
        vectors: list[list[float]] | None = None
        for target in targets:
            try:
                vectors = await self._embed(target, texts)
                break
            except ModelError as error:
                errors.append(f"{type(error).__name__}: {error}")
                if not error.failover:
                    break
        if vectors is None:
            raise HTTPError(
                502,
                f"model {shown!r}: every target failed ({'; '.join(errors)})",
                code="upstream_failed",
                type="upstream_error",
            )
        tokens = sum(len(t.split()) for t in texts)
        items = [
            {"object": "embedding", "index": i, "embedding": _encode(v, fmt)}
            for i, v in enumerate(vectors)
        ]
        body = {
            "object": "list",
            "data": items,
            "model": shown,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return orjson.dumps(body)


def _texts(raw: Any) -> list[str]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise bad("'input' must be a non-empty string or array of strings", "input")
    if len(raw) > MAX_INPUTS:
        raise bad(f"'input' holds more than {MAX_INPUTS} items", "input")
    for i, text in enumerate(raw):
        if not isinstance(text, str):
            raise bad(f"input[{i}] must be a string (token arrays are not supported)", "input")
        if not text:
            raise bad(f"input[{i}] is empty", "input")
    return raw


def _encode(vector: list[float], fmt: str) -> list[float] | str:
    if fmt == "float":
        return vector
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
