"""`GeminiModel`: a Gemini model over the Generative Language API. Host details (URLs,
the key header) and the memory of thought signatures live here; the body is built by
request.py and read back by response.py and embeddings.py."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pilothouse.config import Settings
from pilothouse.errors import AuthenticationError, ModelError
from pilothouse.models.base import AdapterEvent, Completion, Finish
from pilothouse.models.gemini.embeddings import (
    DEFAULT_EMBEDDING_MODEL,
    batch_payloads,
    checked_texts,
    parse_vectors,
)
from pilothouse.models.gemini.request import build_payload
from pilothouse.models.gemini.response import ChunkReader, gemini_error, parse_completion
from pilothouse.models.http import (
    HTTPProtocolModel,
    open_sse,
    parse_json_data,
    post_json,
)
from pilothouse.models.providers import Endpoint, provider_entry
from pilothouse.types import ModelRequest
from pilothouse.util.urls import safe_url

_SIGNATURE_MEMORY = 4096


class GeminiModel(HTTPProtocolModel):
    """A Gemini model over the Generative Language API."""

    def __init__(self, model_id: str, name: str, endpoint: Endpoint, settings: Settings):
        super().__init__(model_id, name, endpoint)
        entry = provider_entry(endpoint.provider, settings)
        self._key_env = settings.provider(endpoint.provider).api_key_env or entry.key_env
        self._key_required = entry.key_required
        self._signatures: OrderedDict[str, str] = OrderedDict()

    # --- plumbing --------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        if self.endpoint.api_key is None and self._key_required:
            where = self._key_env or f"[providers.{self.endpoint.provider}] api_key"
            raise AuthenticationError(f"no Gemini API key: set {where}", model=self.id)
        return self.endpoint.auth_headers()

    def _url(self, model: str, method: str) -> str:
        path = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
        return f"{self.endpoint.base_url}/{path}:{method}"

    def remember_signature(self, call_id: str, signature: str) -> None:
        """Keep a call's thought signature to send back with it (bounded memory)."""
        self._signatures[call_id] = signature
        self._signatures.move_to_end(call_id)
        while len(self._signatures) > _SIGNATURE_MEMORY:
            self._signatures.popitem(last=False)

    async def _post(self, url: str, payload: dict[str, Any], *, label: str) -> dict[str, Any]:
        headers = self._headers()
        return await post_json(
            self._http(),
            url,
            payload,
            headers,
            model=label,
            error_for=gemini_error,
            limits=self._json_timeout(),
        )

    # --- chat ------------------------------------------------------------------------

    def payload(self, request: ModelRequest) -> dict[str, Any]:
        """The generateContent body for `request`."""
        return build_payload(request, self.profile, self._signatures)

    async def _complete(self, request: ModelRequest) -> Completion:
        body = self.payload(request)
        url = self._url(self.name, "generateContent")
        data = await self._post(url, body, label=self.id)
        return parse_completion(
            data, model=self.id, url=safe_url(url), remember=self.remember_signature
        )

    async def _stream(self, request: ModelRequest) -> AsyncIterator[AdapterEvent]:
        body = self.payload(request)
        headers = self._headers()
        url = self._url(self.name, "streamGenerateContent") + "?alt=sse"
        shown = safe_url(url)
        reader = ChunkReader(model=self.id, url=shown, remember=self.remember_signature)
        reading = False
        try:
            async with open_sse(
                self._http(), url, body, headers, model=self.id, error_for=gemini_error
            ) as events:
                async for sse in events:
                    reading = True
                    for event in reader.read(parse_json_data(sse, model=self.id, url=shown)):
                        yield event
                    reading = False
        except ModelError:
            # A transport drop after the chunk that finished the answer loses nothing;
            # errors in what was read, and any before the finish, are raised.
            if reading or reader.finish is None:
                raise
        if reader.finish is not None:
            yield Finish(reader.finish)

    # --- embeddings ------------------------------------------------------------------

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> list[list[float]]:
        """One vector per text, in order, via `batchEmbedContents` (in batches of 100)."""
        items = checked_texts(texts, model=self.id)
        name = model or DEFAULT_EMBEDDING_MODEL
        label = f"{self.endpoint.provider}:{name}"
        url = self._url(name, "batchEmbedContents")
        vectors: list[list[float]] = []
        for count, payload in batch_payloads(items, name):
            try:
                data = await self._post(url, payload, label=label)
            except ModelError as error:
                raise self._mask(error) from None
            vectors.extend(parse_vectors(data, count, label=label))
        return vectors
