"""Local model servers as far as readiness sees them: `GET /v1/models` in the shape
each one documents (Ollama's OpenAI-compatible list, vLLM's, llama.cpp server's), a
key check, and a server that never answers in time."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def ollama_models(*names: str) -> list[dict[str, Any]]:
    return [
        {"id": n, "object": "model", "created": 1735689600, "owned_by": "library"} for n in names
    ]


def vllm_models(*names: str) -> list[dict[str, Any]]:
    return [
        {
            "id": n,
            "object": "model",
            "created": 1735689600,
            "owned_by": "vllm",
            "root": n,
            "parent": None,
            "max_model_len": 32768,
            "permission": [],
        }
        for n in names
    ]


def llamacpp_models(path: str) -> list[dict[str, Any]]:
    return [
        {
            "id": path,
            "object": "model",
            "created": 1735689600,
            "owned_by": "llamacpp",
            "meta": {"n_ctx_train": 32768, "n_params": 494032768},
        }
    ]


class ModelServer:
    """Answers `GET /v1/models` with `models`; `key` makes it refuse other keys (401);
    `delay_s` makes it slow; `listing=False` gives a 404 (a server without a list)."""

    def __init__(
        self,
        models: list[dict[str, Any]],
        *,
        key: str | None = None,
        delay_s: float = 0.0,
        listing: bool = True,
    ) -> None:
        self.models = models
        self.key = key
        self.delay_s = delay_s
        self.listing = listing
        self.requests: list[dict[str, str]] = []
        self.app = Starlette(routes=[Route("/v1/models", self.list_models)])

    async def list_models(self, request: Request) -> Response:
        self.requests.append(dict(request.headers))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.key is not None and request.headers.get("authorization") != f"Bearer {self.key}":
            return JSONResponse(
                {"error": {"message": "invalid api key", "type": "invalid_request_error"}}, 401
            )
        if not self.listing:
            return JSONResponse({"detail": "Not Found"}, 404)
        return JSONResponse({"object": "list", "data": self.models})
