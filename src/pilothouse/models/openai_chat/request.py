"""Pilothouse's neutral `ModelRequest` as a Chat Completions request body.

Who hosts the model decides the `model` field (Azure takes the deployment from the URL)
and the name of the output-token limit; the profile decides whether system messages
keep their role, whether the output schema is enforced by the server (`json_schema`)
or only described in words (`json_object`), and whether `parallel_tool_calls` is sent.
"""

from __future__ import annotations

from typing import Any

from pilothouse.errors import BadRequestError
from pilothouse.models.base import dump_json
from pilothouse.models.profiles import ModelProfile
from pilothouse.models.providers import Endpoint
from pilothouse.types import ImagePart, Message, ModelRequest, OutputSchema, TextPart


def build_payload(
    request: ModelRequest,
    *,
    name: str,
    endpoint: Endpoint,
    profile: ModelProfile,
    model: str,
    stream: bool,
) -> dict[str, Any]:
    """The JSON body for `request` sent to model `name` at `endpoint`; `model` is the
    Pilothouse model id named in errors."""
    body: dict[str, Any] = {}
    if endpoint.flavor != "azure":  # Azure takes the deployment from the URL
        body["model"] = name
    body["messages"] = _messages(request, profile, model)
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
        body["tool_choice"] = _tool_choice(request, model)
        if profile.parallel_tools:
            body["parallel_tool_calls"] = request.parallel_tool_calls
    elif request.tool_choice not in ("auto", "none"):
        raise BadRequestError(
            f"tool_choice is {request.tool_choice!r} but the request has no tools; "
            "add the tools or use tool_choice='auto'",
            model=model,
        )
    if request.output_schema is not None:
        body["response_format"] = _response_format(request.output_schema, profile)
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_output_tokens is not None:
        body[endpoint.max_tokens_field] = request.max_output_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    if request.seed is not None:
        body["seed"] = request.seed
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    ends_with_answer = bool(request.messages) and request.messages[-1].role == "assistant"
    if ends_with_answer and endpoint.prefill == "continue_final_message":
        body["continue_final_message"] = True  # vLLM: carry on the answer so far
        body["add_generation_prompt"] = False
    return body


def _messages(request: ModelRequest, profile: ModelProfile, model: str) -> list[dict[str, Any]]:
    messages = list(request.messages)
    schema = request.output_schema
    if schema is not None and not profile.json_schema:
        # JSON mode without server-side schema: say the schema in words instead.
        first_turn = next((i for i, m in enumerate(messages) if m.role != "system"), 0)
        messages.insert(first_turn, Message.system(_schema_instruction(schema)))
    out: list[dict[str, Any]] = []
    folded: list[str] = []  # system text for models without a system role
    for message in messages:
        if message.role == "system":
            if profile.system_role:
                out.append(_named({"role": "system", "content": message.text}, message))
            else:
                folded.append(message.text)
        elif message.role == "assistant":
            out.append(_named(_assistant(message, model), message))
        else:
            out.extend(_named(m, message) for m in _user_or_tool(message, model))
    if folded:
        _fold_system(out, "\n\n".join(folded))
    return out


def _named(entry: dict[str, Any], message: Message) -> dict[str, Any]:
    """The message's speaker name (`name`), on the messages that may carry one."""
    if message.name and entry.get("role") in ("system", "user", "assistant"):
        entry["name"] = message.name
    return entry


def _assistant(message: Message, model: str) -> dict[str, Any]:
    if message.images:
        raise BadRequestError(
            "an assistant message holds an image, which the OpenAI protocol cannot send; "
            "move the image to a user message",
            model=model,
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


def _user_or_tool(message: Message, model: str) -> list[dict[str, Any]]:
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
            model=model,
        )
    if content or not out:
        out.append({"role": "user", "content": _user_content(content)})
    return out


def _tool_choice(request: ModelRequest, model: str) -> str | dict[str, Any]:
    choice = request.tool_choice
    if choice in ("auto", "none", "required"):
        return choice
    names = [tool.name for tool in request.tools]
    if choice not in names:
        raise BadRequestError(
            f"tool_choice names {choice!r}, which is not among the request's tools "
            f"({', '.join(names)})",
            model=model,
        )
    return {"type": "function", "function": {"name": choice}}


def _response_format(schema: OutputSchema, profile: ModelProfile) -> dict[str, Any]:
    if not profile.json_schema:
        return {"type": "json_object"}
    return {
        "type": "json_schema",
        "json_schema": {"name": schema.name, "schema": schema.schema, "strict": schema.strict},
    }


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
