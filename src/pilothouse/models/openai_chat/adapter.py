"""`OpenAIChatModel`: one chat model (and its embeddings) behind an OpenAI Chat
Completions endpoint. Host details (URLs, keys, Azure) live here; the body is built by
request.py and read back by response.py and embeddings.py."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

from pilothouse.config import Settings
from pilothouse.errors import (
    AuthenticationError,
    ConfigError,
    MalformedResponseError,
    ModelError,
    ModelNotAvailableError,
)
from pilothouse.models.base import AdapterEvent, Completion, Finish
from pilothouse.models.http import (
    HTTPProtocolModel,
    open_sse,
    parse_json_data,
    post_json,
)
from pilothouse.models.openai_chat.embeddings import (
    DEFAULT_EMBEDDING_BATCH,
    batches,
    checked_texts,
    embeddings_payload,
    parse_embeddings,
)
from pilothouse.models.openai_chat.request import build_payload
from pilothouse.models.openai_chat.response import ChunkReader, parse_completion, refine
from pilothouse.models.providers import Endpoint, provider_entry
from pilothouse.types import ModelRequest
from pilothouse.util.urls import safe_url

logger = logging.getLogger(__name__)


class OpenAIChatModel(HTTPProtocolModel):
    """A chat model (and embeddings) behind an OpenAI Chat Completions endpoint."""

    embedding_batch_size: int = DEFAULT_EMBEDDING_BATCH
    """Inputs per embeddings request; at most `EMBEDDING_INPUT_LIMIT`."""

    def __init__(self, model_id: str, name: str, endpoint: Endpoint, settings: Settings):
        super().__init__(model_id, name, endpoint)
        self._key_env, self._key_required = _key_facts(endpoint, settings)
        self._config_path = settings.config_path

    # --- the protocol --------------------------------------------------------------

    async def _complete(self, request: ModelRequest) -> Completion:
        url = self._url("chat/completions", self.name)
        headers = self._auth_headers()
        payload = self.payload(request, stream=False)
        try:
            data = await post_json(
                self._http(), url, payload, headers, model=self.id, limits=self._json_timeout()
            )
        except ModelError as error:
            raise refine(error) from None
        return parse_completion(data, model=self.id, url=safe_url(url))

    async def _stream(self, request: ModelRequest) -> AsyncIterator[AdapterEvent]:
        url = self._url("chat/completions", self.name)
        headers = self._auth_headers()
        payload = self.payload(request, stream=True)
        shown = safe_url(url)
        reader = ChunkReader(model=self.id, url=shown)
        done = False
        try:
            async with open_sse(self._http(), url, payload, headers, model=self.id) as events:
                async for event in events:
                    data = event.data.strip()
                    if data == "[DONE]":
                        done = True
                        break
                    if not data:
                        continue
                    chunk = parse_json_data(event, model=self.id, url=shown)
                    for out in reader.read(chunk, event=event.event):
                        yield out
        except ModelError as error:
            raise refine(error) from None
        if reader.finish is None:
            if done:
                raise MalformedResponseError(
                    f"{shown} ended the stream with [DONE] but never gave a finish_reason",
                    model=self.id,
                )
            return  # the base class reports the stream as cut short
        if not done:
            logger.debug("%s: stream from %s ended without [DONE] after finishing", self.id, shown)
        yield Finish("content_filter" if reader.refused else reader.finish)

    def payload(self, request: ModelRequest, *, stream: bool) -> dict[str, Any]:
        """The JSON body for `request` (public so tests and tools can inspect it)."""
        return build_payload(
            request,
            name=self.name,
            endpoint=self.endpoint,
            profile=self.profile,
            model=self.id,
            stream=stream,
        )

    # --- embeddings ----------------------------------------------------------------

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> list[list[float]]:
        """One vector per text, in the order given. `model` names the embedding model
        (for Azure: its deployment); by default this model's own name."""
        name = model or self.name
        model_id = f"{self.endpoint.provider}:{name}"
        items = checked_texts(texts, model=model_id)
        if not items:
            return []
        url = self._url("embeddings", name)
        headers = self._auth_headers()
        named = None if self.endpoint.flavor == "azure" else name
        vectors: list[list[float]] = []
        for batch in batches(items, self.embedding_batch_size):
            payload = embeddings_payload(batch, name=named)
            try:
                data = await post_json(
                    self._http(),
                    url,
                    payload,
                    headers,
                    model=model_id,
                    limits=self._json_timeout(),
                )
            except ModelError as error:
                raise self._mask(refine(error)) from None
            vectors.extend(parse_embeddings(data, len(batch), model=model_id, url=safe_url(url)))
        return vectors

    # --- the host ------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        provider = self.endpoint.provider
        if self.endpoint.api_key is None and self._key_required:
            raise AuthenticationError(
                f"no API key for provider {provider!r}: set the environment variable "
                f"{self._key_env}, or api_key under [providers.{provider}] in {self._config_path}",
                model=self.id,
            )
        return self.endpoint.auth_headers()

    def _url(self, operation: str, model: str) -> str:
        base = self.endpoint.base_url
        provider = self.endpoint.provider
        if not base:
            hint = "AZURE_OPENAI_ENDPOINT or " if self.endpoint.flavor == "azure" else ""
            raise ModelNotAvailableError(
                f"provider {provider!r} has no base URL: set {hint}base_url under "
                f"[providers.{provider}] in {self._config_path}",
                model=self.id,
            )
        if self.endpoint.flavor != "azure":
            return f"{base}/{operation}"
        version = self.endpoint.api_version
        if not version:
            raise ModelNotAvailableError(
                f"provider {provider!r} is Azure OpenAI and needs an api-version: set "
                f"OPENAI_API_VERSION or api_version under [providers.{provider}]",
                model=self.id,
            )
        deployment = quote(model, safe="")
        return (
            f"{base}/openai/deployments/{deployment}/{operation}"
            f"?api-version={quote(version, safe='')}"
        )


def _key_facts(endpoint: Endpoint, settings: Settings) -> tuple[str, bool]:
    """The environment variable that holds the key, and whether one is required."""
    configured = settings.provider(endpoint.provider).api_key_env
    try:
        entry = provider_entry(endpoint.provider, settings)
    except ConfigError:  # built by hand for a name the registry does not know
        return configured or "an API key", False
    return configured or entry.key_env or "an API key", entry.key_required and entry.auth != "none"
