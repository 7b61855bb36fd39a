"""The OpenAI Chat Completions protocol, spoken by OpenAI, Azure OpenAI and every
OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio, Groq, Together,
OpenRouter, Mistral).

Who hosts the model is the `Endpoint` (models/providers.py): base URL, key header,
Azure's deployment URLs and api-version, and which field carries the output token
limit. What the model can do is its profile (profiles.toml). This module only maps
Pilothouse's neutral request to the wire format and the answer back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from pilothouse.config import Settings
from pilothouse.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ContentFilteredError,
    ContextTooLongError,
    MalformedResponseError,
    ModelError,
    ModelNotAvailableError,
    RateLimitedError,
    UnavailableError,
)
from pilothouse.models.base import AdapterEvent, Completion, Finish, ProtocolModel, dump_json
from pilothouse.models.http import (
    error_message,
    make_client,
    open_sse,
    parse_json_data,
    post_json,
    safe_url,
)
from pilothouse.models.providers import Endpoint, provider_entry
from pilothouse.types import (
    FinishReason,
    ImagePart,
    Message,
    ModelRequest,
    OutputSchema,
    Part,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
    UsageEvent,
    parse_tool_arguments,
)

logger = logging.getLogger(__name__)

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",  # the legacy functions API
    "content_filter": "content_filter",
}

# OpenAI accepts at most 2048 inputs per embeddings request (and about 300k tokens in
# all); 256 keeps a batch of typical knowledge chunks well under both.
EMBEDDING_INPUT_LIMIT = 2048
DEFAULT_EMBEDDING_BATCH = 256


class OpenAIChatModel(ProtocolModel):
    """A chat model (and embeddings) behind an OpenAI Chat Completions endpoint."""

    embedding_batch_size: int = DEFAULT_EMBEDDING_BATCH
    """Inputs per embeddings request; at most `EMBEDDING_INPUT_LIMIT`."""

    def __init__(self, model_id: str, name: str, endpoint: Endpoint, settings: Settings):
        super().__init__(model_id)
        self.name = name
        self.endpoint = endpoint
        self._client: httpx.AsyncClient | None = None
        self._key_env, self._key_required = _key_facts(endpoint, settings)
        self._config_path = settings.config_path

    # --- the protocol --------------------------------------------------------------

    async def _complete(self, request: ModelRequest) -> Completion:
        url = self._url("chat/completions", self.name)
        headers = self._auth_headers()
        payload = self.payload(request, stream=False)
        try:
            data = await post_json(self._http(), url, payload, headers, model=self.id)
        except ModelError as error:
            raise _refine(error) from None
        return self._parse_completion(data, safe_url(url))

    async def _stream(self, request: ModelRequest) -> AsyncIterator[AdapterEvent]:
        url = self._url("chat/completions", self.name)
        headers = self._auth_headers()
        payload = self.payload(request, stream=True)
        shown = safe_url(url)
        finish: FinishReason | None = None
        refused = False
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
                    if not isinstance(chunk, dict):
                        raise MalformedResponseError(
                            f"{shown} sent a stream chunk that is not a JSON object", model=self.id
                        )
                    error = _error_in(chunk) or (chunk if event.event == "error" else None)
                    if error is not None:
                        raise _vendor_error(error, model=self.id, where=f"the stream from {shown}")
                    usage = _chunk_usage(chunk)
                    if usage is not None:
                        yield UsageEvent(usage)
                    choices = chunk.get("choices") or []
                    if not isinstance(choices, list):
                        raise MalformedResponseError(
                            f"{shown} sent 'choices' that is not a list", model=self.id
                        )
                    for choice in choices:
                        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                            continue
                        delta = choice.get("delta") or {}
                        if not isinstance(delta, dict):
                            raise MalformedResponseError(
                                f"{shown} sent a 'delta' that is not an object", model=self.id
                            )
                        for out in _delta_events(delta):
                            yield out
                        refusal = delta.get("refusal")
                        if isinstance(refusal, str) and refusal:
                            refused = True
                            yield TextDelta(refusal)
                        reason = choice.get("finish_reason")
                        if reason:
                            finish = _finish_reason(reason)
        except ModelError as error:
            raise _refine(error) from None
        if finish is None:
            if done:
                raise MalformedResponseError(
                    f"{shown} ended the stream with [DONE] but never gave a finish_reason",
                    model=self.id,
                )
            return  # the base class reports the stream as cut short
        if not done:
            logger.debug("%s: stream from %s ended without [DONE] after finishing", self.id, shown)
        yield Finish("content_filter" if refused else finish)

    # --- embeddings ----------------------------------------------------------------

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> list[list[float]]:
        """One vector per text, in the order given. `model` names the embedding model
        (for Azure: its deployment); by default this model's own name."""
        name = model or self.name
        model_id = f"{self.endpoint.provider}:{name}"
        if isinstance(texts, str):
            raise BadRequestError(
                "embed() takes a sequence of texts, not one string; wrap it in a list",
                model=model_id,
            )
        items = list(texts)
        for position, text in enumerate(items):
            if not isinstance(text, str) or not text:
                raise BadRequestError(
                    f"text {position} to embed is empty or not a string; the embeddings API "
                    "rejects empty input, so drop or replace it",
                    model=model_id,
                )
        if not items:
            return []
        size = max(1, min(self.embedding_batch_size, EMBEDDING_INPUT_LIMIT))
        url = self._url("embeddings", name)
        headers = self._auth_headers()
        vectors: list[list[float]] = []
        for start in range(0, len(items), size):
            batch = items[start : start + size]
            payload: dict[str, Any] = {"input": batch, "encoding_format": "float"}
            if self.endpoint.flavor != "azure":
                payload["model"] = name
            try:
                data = await post_json(self._http(), url, payload, headers, model=model_id)
            except ModelError as error:
                raise _refine(error) from None
            vectors.extend(_parse_embeddings(data, len(batch), model=model_id, url=safe_url(url)))
        return vectors

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # --- request mapping -----------------------------------------------------------

    def payload(self, request: ModelRequest, *, stream: bool) -> dict[str, Any]:
        """The JSON body for `request` (public so tests and tools can inspect it)."""
        body: dict[str, Any] = {}
        if self.endpoint.flavor != "azure":  # Azure takes the deployment from the URL
            body["model"] = self.name
        body["messages"] = self._messages(request)
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                }
                for tool in request.tools
            ]
            body["tool_choice"] = self._tool_choice(request)
            if self.profile.parallel_tools:
                body["parallel_tool_calls"] = request.parallel_tool_calls
        elif request.tool_choice not in ("auto", "none"):
            raise BadRequestError(
                f"tool_choice is {request.tool_choice!r} but the request has no tools; "
                "add the tools or use tool_choice='auto'",
                model=self.id,
            )
        if request.output_schema is not None:
            body["response_format"] = self._response_format(request.output_schema)
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_output_tokens is not None:
            body[self.endpoint.max_tokens_field] = request.max_output_tokens
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _messages(self, request: ModelRequest) -> list[dict[str, Any]]:
        messages = list(request.messages)
        schema = request.output_schema
        if schema is not None and not self.profile.json_schema:
            # JSON mode without server-side schema: say the schema in words instead.
            first_turn = next((i for i, m in enumerate(messages) if m.role != "system"), 0)
            messages.insert(first_turn, Message.system(_schema_instruction(schema)))
        out: list[dict[str, Any]] = []
        folded: list[str] = []  # system text for models without a system role
        for message in messages:
            if message.role == "system":
                if self.profile.system_role:
                    out.append({"role": "system", "content": message.text})
                else:
                    folded.append(message.text)
            elif message.role == "assistant":
                out.append(self._assistant(message))
            else:
                out.extend(self._user_or_tool(message))
        if folded:
            _fold_system(out, "\n\n".join(folded))
        return out

    def _assistant(self, message: Message) -> dict[str, Any]:
        if message.images:
            raise BadRequestError(
                "an assistant message holds an image, which the OpenAI protocol cannot send; "
                "move the image to a user message",
                model=self.id,
            )
        calls = message.tool_calls
        text = message.text
        entry: dict[str, Any] = {
            "role": "assistant",
            "content": text if text or not calls else None,
        }
        if calls:
            entry["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json},
                }
                for call in calls
            ]
        return entry

    def _user_or_tool(self, message: Message) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {
                "role": "tool",
                "tool_call_id": result.tool_call_id,
                "content": f"Error: {result.content}" if result.is_error else result.content,
            }
            for result in message.tool_results
        ]
        content = [p for p in message.parts if isinstance(p, TextPart | ImagePart)]
        if message.tool_calls:
            raise BadRequestError(
                f"a {message.role} message holds a tool call; only assistant messages may",
                model=self.id,
            )
        if content or not out:
            out.append({"role": "user", "content": _user_content(content)})
        return out

    def _tool_choice(self, request: ModelRequest) -> str | dict[str, Any]:
        choice = request.tool_choice
        if choice in ("auto", "none", "required"):
            return choice
        names = [tool.name for tool in request.tools]
        if choice not in names:
            raise BadRequestError(
                f"tool_choice names {choice!r}, which is not among the request's tools "
                f"({', '.join(names)})",
                model=self.id,
            )
        return {"type": "function", "function": {"name": choice}}

    def _response_format(self, schema: OutputSchema) -> dict[str, Any]:
        if not self.profile.json_schema:
            return {"type": "json_object"}
        return {
            "type": "json_schema",
            "json_schema": {"name": schema.name, "schema": schema.schema, "strict": schema.strict},
        }

    # --- response mapping ----------------------------------------------------------

    def _parse_completion(self, data: dict[str, Any], url: str) -> Completion:
        error = _error_in(data)
        if error is not None:
            raise _vendor_error(error, model=self.id, where=f"the answer from {url}")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise MalformedResponseError(f"{url} answered without any choice", model=self.id)
        choice = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict):
            raise MalformedResponseError(
                f"{url} answered a choice without a message", model=self.id
            )
        parts: list[Part] = []
        text = _content_text(message.get("content"))
        refusal = message.get("refusal")
        refused = isinstance(refusal, str) and bool(refusal)
        if text:
            parts.append(TextPart(text))
        elif refused:
            parts.append(TextPart(str(refusal)))
        raw_calls = message.get("tool_calls") or []
        if not isinstance(raw_calls, list):
            raise MalformedResponseError(
                f"{url} sent 'tool_calls' that is not a list", model=self.id
            )
        for index, raw in enumerate(raw_calls):
            parts.append(self._tool_call(raw, index, url))
        legacy = message.get("function_call")
        if not raw_calls and isinstance(legacy, dict):
            parts.append(self._tool_call({"function": legacy}, 0, url))
        reason = choice.get("finish_reason")
        finish = _finish_reason(reason) if reason else "stop"
        if refused:
            finish = "content_filter"
        elif finish == "stop" and any(isinstance(p, ToolCallPart) for p in parts):
            finish = "tool_calls"
        return Completion(Message("assistant", tuple(parts)), finish, _usage(data.get("usage")))

    def _tool_call(self, raw: Any, index: int, url: str) -> ToolCallPart:
        function = raw.get("function") if isinstance(raw, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(function, dict) or not isinstance(name, str) or not name:
            raise MalformedResponseError(f"{url} sent a tool call without a name", model=self.id)
        arguments = _arguments_text(function.get("arguments"))
        args, unparsed = parse_tool_arguments(arguments)
        call_id = raw.get("id") if isinstance(raw, dict) else None
        return ToolCallPart(
            id=call_id if isinstance(call_id, str) and call_id else f"call_{index}",
            name=name,
            arguments=args,
            raw_arguments=unparsed,
        )

    # --- plumbing ------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = make_client(self.endpoint)
        return self._client

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


# --- helpers ----------------------------------------------------------------------


def _key_facts(endpoint: Endpoint, settings: Settings) -> tuple[str, bool]:
    """The environment variable that holds the key, and whether one is required."""
    configured = settings.provider(endpoint.provider).api_key_env
    try:
        entry = provider_entry(endpoint.provider, settings)
    except ConfigError:  # built by hand for a name the registry does not know
        return configured or "an API key", False
    return configured or entry.key_env or "an API key", entry.key_required and entry.auth != "none"


def _user_content(parts: list[TextPart | ImagePart]) -> str | list[dict[str, Any]]:
    if all(isinstance(p, TextPart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, TextPart))
    out: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            out.append({"type": "text", "text": part.text})
        else:
            out.append({"type": "image_url", "image_url": {"url": part.as_data_url()}})
    return out


def _fold_system(messages: list[dict[str, Any]], system: str) -> None:
    """Put system text at the start of the first user message (for models that have
    no system role)."""
    for message in messages:
        if message["role"] != "user":
            continue
        content = message["content"]
        if isinstance(content, str):
            message["content"] = f"{system}\n\n{content}" if content else system
        else:
            message["content"] = [{"type": "text", "text": system}, *content]
        return
    messages.insert(0, {"role": "user", "content": system})


def _schema_instruction(schema: OutputSchema) -> str:
    return (
        "Answer with one JSON object only, no other text. It must validate against "
        f"this JSON Schema:\n{dump_json(schema.schema)}"
    )


def _content_text(content: Any) -> str:
    """Message content as text: a string, null, or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _arguments_text(arguments: Any) -> str:
    """Tool arguments as JSON text. The protocol sends a string; some compatible servers
    send the object itself."""
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    return dump_json(arguments)


def _delta_events(delta: dict[str, Any]) -> list[TextDelta | ToolCallDelta]:
    events: list[TextDelta | ToolCallDelta] = []
    content = delta.get("content")
    if isinstance(content, str) and content:
        events.append(TextDelta(content))
    calls = delta.get("tool_calls") or []
    if isinstance(calls, list):
        for position, call in enumerate(calls):
            if not isinstance(call, dict):
                continue
            function = call.get("function") or {}
            index = call.get("index", position)
            call_id = call.get("id")
            name = function.get("name") if isinstance(function, dict) else None
            events.append(
                ToolCallDelta(
                    index=index if isinstance(index, int) else position,
                    id=call_id if isinstance(call_id, str) and call_id else None,
                    name=name if isinstance(name, str) and name else None,
                    arguments_delta=_arguments_text(
                        function.get("arguments") if isinstance(function, dict) else None
                    ),
                )
            )
    legacy = delta.get("function_call")
    if not calls and isinstance(legacy, dict):
        name = legacy.get("name")
        events.append(
            ToolCallDelta(
                index=0,
                name=name if isinstance(name, str) and name else None,
                arguments_delta=_arguments_text(legacy.get("arguments")),
            )
        )
    return events


def _finish_reason(reason: Any) -> FinishReason:
    mapped = _FINISH.get(str(reason))
    if mapped is None:
        logger.warning("unknown finish_reason %r taken as 'stop'", reason)
        return "stop"
    return mapped


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        input_tokens=_int(raw.get("prompt_tokens")),
        output_tokens=_int(raw.get("completion_tokens")),
        cached_tokens=_int(cached),
    )


def _chunk_usage(chunk: dict[str, Any]) -> Usage | None:
    raw = chunk.get("usage")
    if not isinstance(raw, dict):  # Groq puts it under x_groq in the last chunk
        extra = chunk.get("x_groq")
        raw = extra.get("usage") if isinstance(extra, dict) else None
    return _usage(raw) if isinstance(raw, dict) else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _error_in(data: dict[str, Any]) -> dict[str, Any] | None:
    """The error object in a body or chunk: `{"error": {...}}` (OpenAI), `{"error":
    "text"}`, or vLLM's older flat `{"object": "error", "message": ...}`."""
    error = data.get("error")
    if isinstance(error, dict):
        return error
    if isinstance(error, str) and error:
        return {"message": error}
    if data.get("object") == "error":
        return data
    return None


def _vendor_error(error: dict[str, Any], *, model: str, where: str) -> ModelError:
    """The typed error for an error object inside a 200 answer or a stream."""
    detail = error_message(json.dumps({"error": error}))
    code = error.get("code")
    status = code if isinstance(code, int) else None
    kind = f"{error.get('type') or ''} {code or ''} {detail}".lower()
    message = f"error in {where}: {detail}"
    if status == 429 or "rate_limit" in kind or "insufficient_quota" in kind:
        return _refine(RateLimitedError(message, model=model, status=status))
    if status in (401, 403) or "authentication" in kind or "invalid_api_key" in kind:
        return AuthenticationError(message, model=model, status=status)
    if "context_length" in kind or "maximum context" in kind:
        return ContextTooLongError(message, model=model, status=status)
    if "content_filter" in kind or "content management policy" in kind:
        return ContentFilteredError(message, model=model, status=status)
    if (status is not None and 400 <= status < 500) or "invalid_request" in kind:
        return BadRequestError(message, model=model, status=status)
    return UnavailableError(message, model=model, status=status)


def _refine(error: ModelError) -> ModelError:
    """OpenAI-specific readings of errors the shared mapping cannot know."""
    detail = str(error)
    if isinstance(error, RateLimitedError) and "insufficient_quota" in detail:
        error.retryable = False  # the quota is spent: waiting does not help, failover does
        return error
    if type(error) is BadRequestError and error.status == 404:
        return ModelNotAvailableError(
            f"{error.detail} (check the model name, or for Azure the deployment name, "
            "and the base URL)",
            model=error.model,
            status=404,
        )
    return error


def _parse_embeddings(
    data: dict[str, Any], count: int, *, model: str, url: str
) -> list[list[float]]:
    error = _error_in(data)
    if error is not None:
        raise _vendor_error(error, model=model, where=f"the answer from {url}")
    items = data.get("data")
    if not isinstance(items, list) or len(items) != count:
        got = len(items) if isinstance(items, list) else "no"
        raise MalformedResponseError(f"{url} sent {got} embeddings for {count} inputs", model=model)
    vectors: list[list[float] | None] = [None] * count
    for item in items:
        index = item.get("index") if isinstance(item, dict) else None
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < count or vectors[index] is not None:
            raise MalformedResponseError(f"{url} sent an embedding with a bad index", model=model)
        if not isinstance(vector, list) or not vector or not all(_is_number(v) for v in vector):
            raise MalformedResponseError(
                f"{url} sent embedding {index} that is not a list of numbers", model=model
            )
        vectors[index] = [float(v) for v in vector]
    dimensions = {len(v) for v in vectors if v is not None}
    if len(dimensions) != 1:
        raise MalformedResponseError(f"{url} sent embeddings of different lengths", model=model)
    return [v for v in vectors if v is not None]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
