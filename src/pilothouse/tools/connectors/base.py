"""What every connector shares: one API client per configured service (base URL,
credential, typed errors, a bounded retry on 429 and 503), and tools defined by a
schema and an async handler.

Retries: a 429 with a `Retry-After` of at most `max_retry_wait_s` seconds, and a
502/503/504 answer to a read, are retried once; anything else comes back at once
as a typed error whose text tells the model what happened and what to do.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from pilothouse.tools.base import Tool
from pilothouse.tools.errors import ToolConfigError
from pilothouse.tools.http import (
    Credential,
    HttpResponse,
    SafeHttpClient,
)
from pilothouse.tools.results import DEFAULT_RESULT_BUDGET
from pilothouse.tools.status import error_for_status
from pilothouse.util.retry_after import parse_retry_after
from pilothouse.util.urls import safe_url

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[Any]]
DetailFn = Callable[[HttpResponse], str]
_RETRY_STATUSES = frozenset({502, 503, 504})


def plain_detail(response: HttpResponse) -> str:
    return response.text.strip()[:500]


class ApiClient:
    """Requests to one service, with its credential and its error format."""

    def __init__(
        self,
        *,
        service: str,
        base_url: str,
        client: SafeHttpClient,
        credential: Credential | None,
        detail: DetailFn = plain_detail,
        default_params: Mapping[str, str] | None = None,
        max_retries: int = 1,
        max_retry_wait_s: float = 10.0,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ToolConfigError(f"{service}: base_url {base_url!r} must be an http(s) URL")
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.credential = credential
        self.detail = detail
        self.default_params = dict(default_params or {})
        self.max_retries = max_retries
        self.max_retry_wait_s = max_retry_wait_s

    def url(self, path: str) -> httpx.URL:
        return httpx.URL(self.base_url + path)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """Send, retry where it can help, and raise a typed error for 4xx/5xx."""
        url = self.url(path)
        merged = {**self.default_params, **(params or {})}
        sent_headers = {"Accept": "application/json", **(headers or {})}
        response: HttpResponse | None = None
        for attempt in range(self.max_retries + 1):
            response = await self.client.request(
                method,
                url,
                params=merged or None,
                headers=sent_headers,
                json_body=json_body,
                credential=self.credential,
            )
            if attempt == self.max_retries:
                break
            wait = self._retry_wait(method, response)
            if wait is None:
                break
            logger.info(
                "%s: HTTP %s from %s, retrying in %.1f s",
                self.service,
                response.status,
                safe_url(url),
                wait,
            )
            await asyncio.sleep(wait)
        assert response is not None
        if response.status >= 400:
            raise error_for_status(
                response.status,
                self.detail(response),
                response.headers,
                where=f"{method} {safe_url(url)}",
                service=self.service,
            )
        return response

    def _retry_wait(self, method: str, response: HttpResponse) -> float | None:
        if response.status == 429:
            wait = parse_retry_after(response.headers)
            if wait is not None and wait <= self.max_retry_wait_s:
                return wait
            return None
        if response.status in _RETRY_STATUSES and method in ("GET", "HEAD"):
            return min(parse_retry_after(response.headers) or 0.5, self.max_retry_wait_s)
        return None

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self.request(method, path, **kwargs)).json()


class ConnectorTool(Tool):
    """A curated tool: a JSON Schema and an async handler."""

    def __init__(
        self,
        name: str,
        description: str,
        parameters: dict[str, Any],
        handler: Handler,
        *,
        read_only: bool,
        result_budget: int = DEFAULT_RESULT_BUDGET,
    ):
        super().__init__(
            name=name,
            description=description,
            parameters=parameters,
            read_only=read_only,
            result_budget=result_budget,
        )
        self._handler = handler

    async def invoke(self, arguments: dict[str, Any]) -> Any:
        return await self._handler(arguments)


def obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """An argument schema: an object with these properties, nothing else."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def integer(description: str, default: int, minimum: int, maximum: int) -> dict[str, Any]:
    return {
        "type": "integer",
        "description": description,
        "default": default,
        "minimum": minimum,
        "maximum": maximum,
    }


def path_segment(value: Any, what: str) -> str:
    """An id safe to put in a URL path (no slashes, no dot segments)."""
    from urllib.parse import quote

    from pilothouse.tools.errors import ToolArgumentsError

    text = str(value).strip()
    if not text or text in (".", "..") or not re.fullmatch(r"[\w.:~@+-]+", text):
        raise ToolArgumentsError(f"{what} {text!r} is not a valid id")
    return quote(text, safe="")
