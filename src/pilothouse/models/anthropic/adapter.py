"""`AnthropicModel`: a Claude model (or any server speaking the Messages API). Host
details (URL, key, `anthropic-version`) live here; the body is built by request.py and
read back by response.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pilothouse.config import Settings
from pilothouse.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    MalformedResponseError,
    ModelError,
    ModelNotAvailableError,
)
from pilothouse.models.anthropic.request import OutputTool, build_payload
from pilothouse.models.anthropic.response import StreamDecoder, event_error, parse_message
from pilothouse.models.base import AdapterEvent, Completion, Finish
from pilothouse.models.http import (
    HTTPProtocolModel,
    open_sse,
    parse_json_data,
    post_json,
)
from pilothouse.models.providers import Endpoint, provider_entry
from pilothouse.types import ModelRequest
from pilothouse.util.urls import safe_url

DEFAULT_API_VERSION = "2023-06-01"


class AnthropicModel(HTTPProtocolModel):
    """A Claude model (or any server speaking the Messages API)."""

    def __init__(self, model_id: str, name: str, endpoint: Endpoint, settings: Settings):
        super().__init__(model_id, name, endpoint)
        entry = provider_entry(endpoint.provider, settings)
        self._key_env = entry.key_env
        self._key_required = entry.key_required

    # --- transport -----------------------------------------------------------------

    def _url(self) -> str:
        base = self.endpoint.base_url.rstrip("/")
        if not base:
            raise ConfigError(
                f"{self.id}: no base URL for provider {self.endpoint.provider!r}; "
                f"set base_url in [providers.{self.endpoint.provider}] of config.toml"
            )
        return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"

    def _headers(self) -> dict[str, str]:
        if self.endpoint.api_key is None and self._key_required:
            where = f"the {self._key_env} environment variable or " if self._key_env else ""
            raise AuthenticationError(
                f"no API key for provider {self.endpoint.provider!r}: set {where}api_key "
                f"in [providers.{self.endpoint.provider}] of config.toml",
                model=self.id,
            )
        return {
            **self.endpoint.auth_headers(),
            "anthropic-version": self.endpoint.api_version or DEFAULT_API_VERSION,
        }

    def _refine(self, error: ModelError) -> ModelError:
        """Anthropic answers 404 `not_found_error` for an unknown model name."""
        if isinstance(error, BadRequestError) and error.status == 404:
            return ModelNotAvailableError(
                f"{error.detail}; check the model name {self.name!r} against the "
                "provider's model list",
                model=self.id,
                status=404,
            )
        return error

    def _payload(
        self, request: ModelRequest, *, stream: bool
    ) -> tuple[dict[str, Any], OutputTool | None]:
        return build_payload(
            request, name=self.name, profile=self.profile, model=self.id, stream=stream
        )

    # --- non-streaming -------------------------------------------------------------

    async def _complete(self, request: ModelRequest) -> Completion:
        headers = self._headers()
        payload, output = self._payload(request, stream=False)
        url = self._url()
        try:
            data = await post_json(
                self._http(), url, payload, headers, model=self.id, limits=self._json_timeout()
            )
        except ModelError as error:
            raise self._refine(error) from None
        if data.get("type") == "error":
            raise self._refine(event_error(data, model=self.id, url=safe_url(url)))
        return parse_message(data, output, model=self.id, url=safe_url(url))

    # --- streaming -----------------------------------------------------------------

    async def _stream(self, request: ModelRequest) -> AsyncIterator[AdapterEvent]:
        headers = self._headers()
        payload, output = self._payload(request, stream=True)
        url = self._url()
        shown = safe_url(url)
        decoder = StreamDecoder(output, model=self.id, url=shown)
        try:
            async with open_sse(self._http(), url, payload, headers, model=self.id) as events:
                async for sse in events:
                    if not sse.data.strip():
                        continue
                    data = parse_json_data(sse, model=self.id, url=shown)
                    if not isinstance(data, dict):
                        raise MalformedResponseError(
                            f"{shown} sent a stream event that is not an object", model=self.id
                        )
                    if (data.get("type") or sse.event) == "error":
                        raise event_error(data, model=self.id, url=shown)
                    for event in decoder.feed(data):
                        yield event
                        if isinstance(event, Finish):
                            return
        except ModelError as error:
            raise self._refine(error) from None
