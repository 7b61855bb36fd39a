"""A strict local stand-in for the OpenAI Chat Completions and Embeddings APIs, in three
flavors: OpenAI itself, Azure OpenAI (deployment paths, `api-version` query, `api-key`
header) and an OpenAI-compatible server (vLLM).

It validates requests the way the documented API does (unknown fields, roles, content
parts, tool-call/tool-result pairing, tool and response-format schemas, parameters only
allowed together) and answers mistakes with the vendor's 400 error body, so a mapping
bug in the adapter fails a test instead of passing silently.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from pilothouse.testing.conformance import HarnessSpec
from pilothouse.testing.wire import (
    CutStream,
    Facts,
    Fail,
    FakeVendor,
    Malformed,
    MidStreamError,
    Reply,
    Stall,
    Step,
    compact,
)

Flavor = Literal["openai", "azure", "vllm"]

AZURE_API_VERSIONS = ("2024-06-01", "2024-10-21", "2025-04-01-preview")
ROLES = ("system", "developer", "user", "assistant", "tool")
TOP_LEVEL = {
    "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "response_format",
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "stream",
    "stream_options", "n", "user", "frequency_penalty", "presence_penalty", "logit_bias",
    "logprobs", "top_logprobs", "metadata", "store", "service_tier", "reasoning_effort",
    "modalities", "audio", "prediction", "functions", "function_call",
}  # fmt: skip
EMBEDDING_FIELDS = {"input", "model", "encoding_format", "dimensions", "user"}
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
DATA_URL = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/]+=*$")


# --- steps only this fake understands ------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """The model refuses: `message.refusal` (or `delta.refusal`) instead of content."""

    text: str = "I can't help with that."


@dataclass(frozen=True)
class RawJSON:
    """Answer this exact JSON body (for shapes the neutral script cannot express)."""

    body: Any
    status: int = 200


@dataclass(frozen=True)
class RawSSE:
    """Stream these `data:` payloads verbatim, nothing else."""

    payloads: tuple[str, ...]


class Invalid(Exception):
    """A request the real API would refuse with 400."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param


def fake_embedding(text: str, dimensions: int = 8) -> list[float]:
    """The fake's deterministic vector for `text`: its length, then hash bytes."""
    digest = hashlib.sha256(text.encode()).digest()
    return [float(len(text))] + [b / 255 for b in digest[: dimensions - 1]]


class FakeOpenAI(FakeVendor):
    """Plays the script in OpenAI's wire format. `max_tokens_field` is the only token
    limit field this server accepts (OpenAI's reasoning models refuse `max_tokens`; the
    compatible server here documents only `max_tokens`)."""

    def __init__(
        self,
        *,
        flavor: Flavor = "openai",
        key: str = "test-key",
        max_tokens_field: str | None = None,
        reverse_embeddings: bool = False,
    ) -> None:
        super().__init__(key)
        self.flavor = flavor
        self.max_tokens_field = max_tokens_field or (
            "max_tokens" if flavor == "vllm" else "max_completion_tokens"
        )
        self.reverse_embeddings = reverse_embeddings
        if flavor == "azure":
            prefix = "/openai/deployments/{deployment}"
            routes = [
                Route(f"{prefix}/chat/completions", self.chat, methods=["POST"]),
                Route(f"{prefix}/embeddings", self.embeddings, methods=["POST"]),
            ]
        else:
            routes = [
                Route("/chat/completions", self.chat, methods=["POST"]),
                Route("/embeddings", self.embeddings, methods=["POST"]),
            ]
        routes.append(Route("/{path:path}", self.not_found, methods=["GET", "POST"]))
        self.app = Starlette(routes=routes)

    # --- endpoints -------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        payload = self.requests[-1]
        try:
            facts = self.validate_chat(payload, request.path_params.get("deployment"))
        except Invalid as problem:
            return self.error(400, problem.message, param=problem.param)
        step = self.next_step(facts)
        include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
        if payload.get("stream"):
            return await self.render_stream(step, facts.model, include_usage)
        return await self.render_json(step, facts.model)

    async def embeddings(self, request: Request) -> Response:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        payload = self.requests[-1]
        try:
            texts, dimensions = self.validate_embeddings(payload)
        except Invalid as problem:
            return self.error(400, problem.message, param=problem.param)
        step = self.script.pop(0) if self.script else None
        if isinstance(step, Fail):
            return self.failure(step)
        if isinstance(step, Malformed):
            return Response('{"object": "list", "data": [', media_type="application/json")
        if isinstance(step, RawJSON):
            return self.json_response(step.body, step.status)
        model = payload.get("model") or request.path_params.get("deployment", "")
        data = [
            {"object": "embedding", "index": i, "embedding": fake_embedding(text, dimensions)}
            for i, text in enumerate(texts)
        ]
        if self.reverse_embeddings:
            data.reverse()
        tokens = sum(len(t.split()) for t in texts)
        return self.json_response(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def not_found(self, request: Request) -> Response:
        if self.flavor == "azure":
            return self.json_response(
                {"error": {"code": "404", "message": "Resource not found"}}, 404
            )
        return self.error(404, f"Invalid URL ({request.method} /{request.path_params['path']})")

    def issued(self, key: str) -> bool:
        """Keys this fake accepts: its own, and any "live" key (`sk-live-...`)."""
        return key == self.key or key.startswith("sk-live-")

    async def _gate(self, request: Request) -> Response | None:
        """Record the request, then check the body parses, the api-version and the key."""
        try:
            await self.record(request)
        except ValueError:
            return self.error(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly.)",
            )
        if self.flavor == "azure":
            version = request.query_params.get("api-version")
            if not version:
                return self.json_response(
                    {"error": {"code": "404", "message": "Resource not found"}}, 404
                )
            if version not in AZURE_API_VERSIONS:
                return self.json_response(
                    {"error": {"code": "BadRequest", "message": "API version not supported"}}, 400
                )
            if not self.issued(request.headers.get("api-key", "")):
                return self.json_response(
                    {
                        "error": {
                            "code": "401",
                            "message": "Access denied due to invalid subscription key or wrong "
                            "API endpoint. Make sure to provide a valid key for an active "
                            "subscription and use a correct regional API endpoint for your "
                            "resource.",
                        }
                    },
                    401,
                )
            return None
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer ") and self.issued(auth[7:]):
            return None
        if self.flavor == "vllm":
            return self.json_response({"error": "Unauthorized"}, 401)
        if not auth.startswith("Bearer ") or not auth[7:]:
            return self.error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        given = auth[7:]
        masked = given[:3] + "*" * max(len(given) - 7, 0) + given[-4:]
        return self.error(
            401,
            f"Incorrect API key provided: {masked}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )

    # --- request validation ----------------------------------------------------------

    def validate_chat(self, body: dict[str, Any], deployment: str | None) -> Facts:
        for name in body:
            if name not in TOP_LEVEL:
                raise Invalid(f"Unrecognized request argument supplied: {name}")
        facts = Facts()
        if self.flavor == "azure":
            facts.model = deployment or ""
        else:
            model = body.get("model")
            if not isinstance(model, str) or not model:
                raise Invalid("you must provide a model parameter", "model")
            facts.model = model
        self._validate_messages(body.get("messages"), facts)
        tool_names = self._validate_tools(body, facts)
        self._validate_tool_choice(body, tool_names, facts)
        self._validate_response_format(body.get("response_format"), body, facts)
        other = (
            "max_tokens"
            if self.max_tokens_field == "max_completion_tokens"
            else "max_completion_tokens"
        )
        if other in body:
            raise Invalid(
                f"Unsupported parameter: '{other}' is not supported with this model. "
                f"Use '{self.max_tokens_field}' instead.",
                other,
            )
        limit = body.get(self.max_tokens_field)
        if limit is not None and (not _is_int(limit) or limit < 1):
            raise Invalid(f"Invalid '{self.max_tokens_field}': expected an integer >= 1.")
        facts.max_tokens = limit
        temperature = body.get("temperature")
        if temperature is not None and (not _is_number(temperature) or not 0 <= temperature <= 2):
            raise Invalid(
                f"Invalid 'temperature': decimal above maximum value. Expected a value <= 2, "
                f"but got {temperature} instead.",
                "temperature",
            )
        facts.temperature = temperature
        seed = body.get("seed")
        if seed is not None and not _is_int(seed):
            raise Invalid("Invalid type for 'seed': expected an integer.", "seed")
        facts.seed = seed
        facts.stop = self._validate_stop(body.get("stop"))
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise Invalid("Invalid type for 'stream': expected a boolean.", "stream")
        facts.stream = stream
        options = body.get("stream_options")
        if options is not None:
            if not stream:
                raise Invalid(
                    "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                    "stream_options",
                )
            if not isinstance(options, dict) or set(options) - {"include_usage"}:
                raise Invalid("Invalid 'stream_options'.", "stream_options")
            if not isinstance(options.get("include_usage", False), bool):
                raise Invalid("Invalid type for 'stream_options.include_usage'.")
        if body.get("n", 1) != 1:
            raise Invalid("This fake serves n=1 only.", "n")
        return facts

    def _validate_messages(self, messages: Any, facts: Facts) -> None:
        if not isinstance(messages, list) or not messages:
            raise Invalid("[] is too short - 'messages'", "messages")
        systems: list[str] = []
        open_calls: list[str] = []  # ids of the last assistant tool calls not answered yet
        may_answer = False  # a tool message is allowed here
        for i, message in enumerate(messages):
            where = f"messages[{i}]"
            if not isinstance(message, dict):
                raise Invalid(f"Invalid type for '{where}': expected an object.", where)
            role = message.get("role")
            if role not in ROLES:
                raise Invalid(
                    f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', "
                    "'user', 'function', 'tool', and 'developer'.",
                    f"{where}.role",
                )
            if role != "tool" and open_calls:
                raise Invalid(
                    "An assistant message with 'tool_calls' must be followed by tool messages "
                    "responding to each 'tool_call_id'. The following tool_call_ids did not "
                    f"have response messages: {', '.join(open_calls)}",
                    f"{where}.role",
                )
            content = message.get("content")
            if role in ("system", "developer"):
                systems.append(self._text_content(content, f"{where}.content", allow_null=False))
                may_answer = False
            elif role == "user":
                text, images = self._user_content(content, f"{where}.content")
                facts.messages.append(["user", text])
                facts.images += images
                may_answer = False
            elif role == "assistant":
                calls = message.get("tool_calls")
                text = self._text_content(
                    content, f"{where}.content", allow_null=bool(calls), refusal=True
                )
                facts.messages.append(["assistant", text])
                open_calls = self._assistant_calls(calls, where, facts)
                may_answer = bool(open_calls)
            else:  # tool
                call_id = message.get("tool_call_id")
                if not isinstance(call_id, str) or not call_id:
                    raise Invalid(
                        "Missing parameter 'tool_call_id': messages with role 'tool' must have "
                        "a 'tool_call_id'.",
                        f"{where}.tool_call_id",
                    )
                if not may_answer:
                    raise Invalid(
                        "Invalid parameter: messages with role 'tool' must be a response to a "
                        "preceding message with 'tool_calls'.",
                        f"{where}.role",
                    )
                if call_id not in open_calls:
                    raise Invalid(
                        f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in "
                        "'tool_calls' of previous message.",
                        f"{where}.tool_call_id",
                    )
                open_calls.remove(call_id)
                text = self._text_content(content, f"{where}.content", allow_null=False)
                facts.messages.append(["tool", text])
                facts.tool_results.append([call_id, text])
        if open_calls:
            raise Invalid(
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(open_calls)}",
                "messages",
            )
        facts.system = "\n\n".join(systems)

    def _text_content(
        self, content: Any, where: str, *, allow_null: bool, refusal: bool = False
    ) -> str:
        if content is None:
            if allow_null:
                return ""
            raise Invalid(f"Invalid value for '{where}': expected a string, got null.", where)
        if isinstance(content, str):
            return content
        if not isinstance(content, list) or not content:
            raise Invalid(f"Invalid type for '{where}': expected a string or an array.", where)
        texts: list[str] = []
        allowed = ("text", "refusal") if refusal else ("text",)
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in allowed:
                raise Invalid(
                    f"Invalid value: '{kind}'. Supported values are: {', '.join(allowed)}.",
                    f"{where}[{j}].type",
                )
            value = part.get(kind)
            if not isinstance(value, str):
                raise Invalid(f"Missing required parameter: '{where}[{j}].{kind}'.")
            texts.append(value if kind == "text" else "")
        return "".join(texts)

    def _user_content(self, content: Any, where: str) -> tuple[str, int]:
        if isinstance(content, str):
            return content, 0
        if not isinstance(content, list) or not content:
            raise Invalid(f"Invalid type for '{where}': expected a string or an array.", where)
        texts: list[str] = []
        images = 0
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind == "image_url":
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, dict) else None
                if not isinstance(url, str) or not (
                    url.startswith(("https://", "http://")) or DATA_URL.match(url)
                ):
                    raise Invalid(
                        "Invalid 'image_url': expected an http(s) URL or a base64 data URL.",
                        f"{where}[{j}].image_url.url",
                    )
                if set(image) - {"url", "detail"} or image.get("detail", "auto") not in (
                    "auto",
                    "low",
                    "high",
                ):
                    raise Invalid("Invalid 'image_url'.", f"{where}[{j}].image_url")
                images += 1
            else:
                raise Invalid(
                    f"Invalid value: '{kind}'. Supported values are: 'text', 'image_url', "
                    "'input_audio', 'refusal', 'audio', and 'file'.",
                    f"{where}[{j}].type",
                )
        return "".join(texts), images

    def _assistant_calls(self, calls: Any, where: str, facts: Facts) -> list[str]:
        if calls is None:
            return []
        if not isinstance(calls, list) or not calls:
            raise Invalid("Invalid 'tool_calls': empty array.", f"{where}.tool_calls")
        ids: list[str] = []
        for j, call in enumerate(calls):
            at = f"{where}.tool_calls[{j}]"
            if not isinstance(call, dict) or call.get("type") != "function":
                raise Invalid(f"Missing required parameter: '{at}.type'.", f"{at}.type")
            function = call.get("function")
            if not isinstance(call.get("id"), str) or not call["id"]:
                raise Invalid(f"Missing required parameter: '{at}.id'.", f"{at}.id")
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise Invalid(f"Missing required parameter: '{at}.function'.", f"{at}.function")
            arguments = function.get("arguments")
            if not isinstance(arguments, str):
                raise Invalid(
                    f"Invalid type for '{at}.function.arguments': expected a string, but got "
                    f"{type(arguments).__name__} instead.",
                    f"{at}.function.arguments",
                )
            try:
                parsed = json.loads(arguments)
            except json.JSONDecodeError:
                parsed = arguments
            facts.assistant_tool_calls.append([function["name"], compact(parsed)])
            ids.append(call["id"])
        return ids

    def _validate_tools(self, body: dict[str, Any], facts: Facts) -> list[str]:
        tools = body.get("tools")
        if tools is None:
            for name in ("tool_choice", "parallel_tool_calls"):
                if name in body:
                    raise Invalid(
                        f"Invalid value for '{name}': '{name}' is only allowed when 'tools' "
                        "are specified.",
                        name,
                    )
            return []
        if not isinstance(tools, list) or not tools:
            raise Invalid("[] is too short - 'tools'", "tools")
        names: list[str] = []
        for i, tool in enumerate(tools):
            at = f"tools[{i}]"
            if not isinstance(tool, dict) or tool.get("type") != "function":
                raise Invalid(f"Missing required parameter: '{at}.type'.", f"{at}.type")
            function = tool.get("function")
            if not isinstance(function, dict) or set(function) - {
                "name",
                "description",
                "parameters",
                "strict",
            }:
                raise Invalid(f"Invalid '{at}.function'.", f"{at}.function")
            name = function.get("name")
            if not isinstance(name, str) or not NAME.match(name):
                raise Invalid(
                    f"Invalid '{at}.function.name': string does not match pattern. Expected a "
                    "string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                    f"{at}.function.name",
                )
            if name in names:
                raise Invalid(f"Duplicate tool name: '{name}'.", "tools")
            if not isinstance(function.get("description", ""), str):
                raise Invalid(f"Invalid type for '{at}.function.description'.")
            params = function.get("parameters", {"type": "object", "properties": {}})
            _check_schema(params, f"Invalid schema for function '{name}'", f"{at}.function")
            if params.get("type") != "object":
                raise Invalid(
                    f"Invalid schema for function '{name}': schema must be a JSON Schema of "
                    "'type: \"object\"', got 'type: \"{params.get('type')}\"'.",
                    f"{at}.function.parameters",
                )
            names.append(name)
            facts.tools.append(name)
            facts.tool_params.append(list((params.get("properties") or {}).keys()))
        parallel = body.get("parallel_tool_calls")
        if parallel is not None and not isinstance(parallel, bool):
            raise Invalid("Invalid type for 'parallel_tool_calls'.", "parallel_tool_calls")
        return names

    def _validate_tool_choice(self, body: dict[str, Any], names: list[str], facts: Facts) -> None:
        choice = body.get("tool_choice")
        if choice is None:
            return
        if choice in ("none", "auto", "required"):
            facts.tool_choice = choice
            return
        function = choice.get("function") if isinstance(choice, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(choice, dict) or choice.get("type") != "function" or not name:
            raise Invalid(
                "Invalid value for 'tool_choice': expected 'none', 'auto', 'required' or an "
                "object naming a function.",
                "tool_choice",
            )
        if name not in names:
            raise Invalid(
                f"Invalid value for 'tool_choice': function '{name}' is not in 'tools'.",
                "tool_choice",
            )
        facts.tool_choice = name

    def _validate_response_format(self, fmt: Any, body: dict[str, Any], facts: Facts) -> None:
        if fmt is None:
            return
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind == "text":
            return
        if kind == "json_object":
            if "json" not in json.dumps(body.get("messages")).lower():
                raise Invalid(
                    "'messages' must contain the word 'json' in some form, to use "
                    "'response_format' of type 'json_object'.",
                    "messages",
                )
            return
        if kind != "json_schema":
            raise Invalid(
                f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', and "
                "'json_schema'.",
                "response_format.type",
            )
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or set(spec) - {"name", "schema", "strict", "description"}:
            raise Invalid("Invalid 'response_format.json_schema'.", "response_format.json_schema")
        name = spec.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise Invalid(
                "Missing required parameter: 'response_format.json_schema.name'.",
                "response_format.json_schema.name",
            )
        schema = spec.get("schema")
        _check_schema(schema, f"Invalid schema for response_format '{name}'", "response_format")
        strict = spec.get("strict", False)
        if not isinstance(strict, bool):
            raise Invalid("Invalid type for 'response_format.json_schema.strict'.")
        if strict and self.flavor != "vllm":
            _check_strict(schema, name, ())
        facts.schema_properties = list((schema.get("properties") or {}).keys())

    def _validate_stop(self, stop: Any) -> list[str]:
        if stop is None:
            return []
        if isinstance(stop, str):
            return [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise Invalid("Invalid type for 'stop': expected a string or an array.", "stop")
        if len(stop) > 4:
            raise Invalid(
                f"Invalid 'stop': array too long. Expected an array with maximum length 4, but "
                f"got an array with length {len(stop)} instead.",
                "stop",
            )
        return list(stop)

    def validate_embeddings(self, body: dict[str, Any]) -> tuple[list[str], int]:
        for name in body:
            if name not in EMBEDDING_FIELDS:
                raise Invalid(f"Unrecognized request argument supplied: {name}")
        if self.flavor != "azure" and not isinstance(body.get("model"), str):
            raise Invalid("you must provide a model parameter", "model")
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        invalid = Invalid(
            "'$.input' is invalid. Please check the API reference: "
            "https://platform.openai.com/docs/api-reference.",
            "input",
        )
        if not isinstance(texts, list) or not texts or len(texts) > 2048:
            raise invalid
        if not all(isinstance(t, str) and t for t in texts):
            raise invalid
        if body.get("encoding_format", "float") not in ("float", "base64"):
            raise Invalid("Invalid value for 'encoding_format'.", "encoding_format")
        dimensions = body.get("dimensions", 8)
        if not _is_int(dimensions) or dimensions < 2:
            raise Invalid("Invalid value for 'dimensions'.", "dimensions")
        return texts, dimensions

    # --- rendering -------------------------------------------------------------------

    def error(
        self, status: int, message: str, *, param: str | None = None, code: Any = None
    ) -> Response:
        """An error body in the documented shape `{"error": {message, type, param, code}}`."""
        kind = "invalid_request_error" if status < 500 else "server_error"
        if status == 429:
            kind = "requests"  # OpenAI names the exhausted limit: requests or tokens
        if self.flavor == "vllm":  # vLLM names the exception and repeats the status
            kind, code = {400: "BadRequestError", 404: "NotFoundError"}.get(status, kind), status
        elif self.flavor == "azure" and code is None:
            code = str(status) if status != 400 else None
        elif status == 429 and code is None:
            code = "rate_limit_exceeded"
        body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        return self.json_response(body, status)

    def failure(self, step: Fail) -> Response:
        response = self.error(step.status, step.message)
        if step.status == 429:
            wait = step.retry_after or "1"
            response.headers["retry-after"] = wait
            if self.flavor == "azure":
                response.headers["retry-after-ms"] = str(int(float(wait) * 1000))
            response.headers["x-ratelimit-limit-requests"] = "500"
            response.headers["x-ratelimit-remaining-requests"] = "0"
            response.headers["x-ratelimit-reset-requests"] = f"{wait}s"
            response.headers["x-ratelimit-limit-tokens"] = "200000"
            response.headers["x-ratelimit-remaining-tokens"] = "0"
            response.headers["x-ratelimit-reset-tokens"] = f"{wait}s"
        elif step.retry_after:
            response.headers["retry-after"] = step.retry_after
        return response

    def _completion_id(self) -> dict[str, Any]:
        base: dict[str, Any] = {
            "id": f"chatcmpl-{len(self.requests):06d}",
            "created": int(time.time()),
        }
        if self.flavor != "vllm":
            base["system_fingerprint"] = "fp_fake"
        return base

    def _usage(self, usage: tuple[int, int, int]) -> dict[str, Any]:
        prompt, completion, cached = usage
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }

    async def render_json(self, step: Step | Refusal | RawJSON | RawSSE, model: str) -> Response:
        if isinstance(step, Fail):
            return self.failure(step)
        if isinstance(step, Malformed):
            return Response('{"id": "chatcmpl-broken", "choices": [', media_type="application/json")
        if isinstance(step, RawJSON):
            return self.json_response(step.body, step.status)
        if isinstance(step, Stall):
            await asyncio.sleep(step.seconds)
            step = Reply(step.text or "late")
        if isinstance(step, CutStream | MidStreamError | RawSSE):
            raise TypeError(f"{type(step).__name__} only applies to streaming requests")
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        finish = "stop"
        usage = (11, 7, 3)
        if isinstance(step, Refusal):
            message["refusal"] = step.text
        else:
            message["content"] = step.text if step.text or not step.tool_calls else None
            if step.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                    }
                    for call in step.tool_calls
                ]
            finish = step.finish or ("tool_calls" if step.tool_calls else "stop")
            usage = step.usage
        if self.flavor == "openai":
            message["annotations"] = []
        choice: dict[str, Any] = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": finish,
        }
        body = {
            **self._completion_id(),
            "object": "chat.completion",
            "model": model,
            "choices": [choice],
            "usage": self._usage(usage),
        }
        if self.flavor == "azure":
            body["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": {}}]
            choice["content_filter_results"] = {}
        return self.json_response(body)

    async def render_stream(
        self, step: Step | Refusal | RawJSON | RawSSE, model: str, include_usage: bool
    ) -> Response:
        if isinstance(step, Fail):
            return self.failure(step)
        if isinstance(step, RawJSON):
            return self.json_response(step.body, step.status)
        head = {**self._completion_id(), "object": "chat.completion.chunk", "model": model}
        if include_usage:
            head["usage"] = None

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return "data: " + json.dumps({**head, "choices": [choice]}) + "\n\n"

        async def events() -> AsyncIterator[str]:
            if isinstance(step, Malformed):
                yield "data: {this is not json\n\n"
                return
            if isinstance(step, RawSSE):
                for payload in step.payloads:
                    yield f"data: {payload}\n\n"
                return
            if self.flavor == "azure":  # Azure opens with the prompt filter results
                filters = [{"prompt_index": 0, "content_filter_results": {}}]
                yield (
                    "data: "
                    + json.dumps(
                        {**head, "model": "", "choices": [], "prompt_filter_results": filters}
                    )
                    + "\n\n"
                )
            yield chunk({"role": "assistant", "content": "", "refusal": None})
            if isinstance(step, Refusal):
                for piece in self.split_text(step.text, 2):
                    yield chunk({"refusal": piece})
                yield chunk({}, "stop")
                async for line in self._tail(head, include_usage, (9, 4, 0)):
                    yield line
                return
            text = step.text if isinstance(step, Reply | CutStream | MidStreamError | Stall) else ""
            pieces = self.split_text(text, step.chunks if isinstance(step, Reply) else 3)
            for piece in pieces:
                yield chunk({"content": piece})
            if isinstance(step, Stall):
                await asyncio.sleep(step.seconds)
                yield chunk({}, "stop")
                yield "data: [DONE]\n\n"
                return
            if isinstance(step, CutStream):
                if step.abrupt:
                    raise ConnectionAbortedError("the fake drops the connection on purpose")
                return
            if isinstance(step, MidStreamError):
                error = {
                    "message": step.message,
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
                yield "data: " + json.dumps({"error": error}) + "\n\n"
                yield "data: [DONE]\n\n"
                return
            assert isinstance(step, Reply)
            for index, call in enumerate(step.tool_calls):
                yield chunk(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": call.id,
                                "type": "function",
                                "function": {"name": call.name, "arguments": ""},
                            }
                        ]
                    }
                )
                for piece in self.split_text(json.dumps(call.arguments), 3):
                    yield chunk(
                        {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                    )
            finish = step.finish or ("tool_calls" if step.tool_calls else "stop")
            yield chunk({}, finish)
            async for line in self._tail(head, include_usage, step.usage):
                yield line

        return StreamingResponse(events(), media_type="text/event-stream")

    async def _tail(
        self, head: dict[str, Any], include_usage: bool, usage: tuple[int, int, int]
    ) -> AsyncIterator[str]:
        if include_usage:
            yield (
                "data: " + json.dumps({**head, "choices": [], "usage": self._usage(usage)}) + "\n\n"
            )
        yield "data: [DONE]\n\n"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_schema(schema: Any, prefix: str, param: str) -> None:
    if not isinstance(schema, dict):
        raise Invalid(f"{prefix}: schema must be an object.", param)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise Invalid(f"{prefix}: {exc.message}.", param) from None


def _check_strict(schema: Any, name: str, path: tuple[str, ...]) -> None:
    """OpenAI's strict structured-output rules: every object lists all its properties as
    required and sets additionalProperties to false."""
    if not isinstance(schema, dict):
        return
    context = f"context=({', '.join(repr(p) for p in path)})"
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            raise Invalid(
                f"Invalid schema for response_format '{name}': In {context}, "
                "'additionalProperties' is required to be supplied and to be false.",
                "response_format",
            )
        properties = schema.get("properties") or {}
        missing = [key for key in properties if key not in (schema.get("required") or [])]
        if missing:
            raise Invalid(
                f"Invalid schema for response_format '{name}': In {context}, 'required' is "
                f"required to be supplied and to be an array including every key in properties. "
                f"Missing '{missing[0]}'.",
                "response_format",
            )
        for key, sub in properties.items():
            _check_strict(sub, name, (*path, "properties", key))
    for keyword in ("items", "anyOf", "$defs", "definitions"):
        sub = schema.get(keyword)
        if isinstance(sub, dict) and keyword in ("$defs", "definitions"):
            for key, item in sub.items():
                _check_strict(item, name, (*path, keyword, key))
        elif isinstance(sub, list):
            for i, item in enumerate(sub):
                _check_strict(item, name, (*path, keyword, str(i)))
        elif isinstance(sub, dict):
            _check_strict(sub, name, (*path, keyword))


def harness_specs() -> list[HarnessSpec]:
    features = frozenset({"seed", "mid_stream_error"})
    return [
        HarnessSpec(
            "openai",
            lambda: FakeOpenAI(flavor="openai"),
            model_name="gpt-4.1-mini",
            features=features,
        ),
        HarnessSpec(
            "azure",
            lambda: FakeOpenAI(flavor="azure"),
            model_name="prod-gpt41-mini",
            settings={"api_version": "2024-10-21"},
            features=features,
        ),
        HarnessSpec(
            "vllm",
            lambda: FakeOpenAI(flavor="vllm"),
            model_name="Qwen/Qwen2.5-7B-Instruct",
            features=features,
        ),
    ]
