"""Telling the generations apart and normalising each into one PromptDefinition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pilothouse.copilot.prompty import (
    PromptyInputError,
    detect_generation,
    parse_prompty,
)


@pytest.mark.parametrize(
    ("front_matter", "fence", "generation"),
    [
        ({"model": {"configuration": {"type": "openai"}}}, "---", "A"),
        ({"model": {"connection": {"type": "azure_openai"}}}, "---", "B"),
        ({"model": {"connection": {"kind": "key"}}}, "---", "C"),
        ({"model": {"provider": "anthropic"}}, "---", "C"),
        # the spec's rules win over everything else
        ({"$schema": "x", "model": {"configuration": {}}}, "---", "A"),
        ({"model": {"connection": {"type": "openai"}}}, "+++", "B"),
        # fallbacks
        ({"model": "gpt-4o"}, "---", "C"),
        ({"name": "x"}, "+++", "C"),
        ({}, None, "C"),
        ({"inputs": [{"name": "q", "kind": "string"}]}, "---", "C"),
        ({"displayName": "X"}, "---", "C"),
        ({"$schema": "http://azureml/sdk-2-0/Prompty.yaml"}, "---", "B"),
        ({"id": "my-prompt"}, "---", "B"),
        ({"template": {"format": "mustache"}}, "---", "B"),
        ({"model": {"parameters": {"max_tokens": 5}}}, "---", "A"),
        ({"model": {"api": "chat"}}, "---", "A"),
        ({"sample": {"q": 1}}, "---", "A"),
        ({"inputs": {"q": {"type": "string"}}}, "---", "A"),
        ({"name": "nothing to go by"}, "---", "C"),
    ],
)
def test_detect_generation(
    front_matter: dict[str, Any], fence: str | None, generation: str
) -> None:
    assert detect_generation(front_matter, fence) == generation


def test_generation_can_be_forced(tmp_path: Path) -> None:
    text = "---\nname: x\ninputs:\n  q:\n    type: string\n---\nuser:\n{{q}}\n"
    assert parse_prompty(text, tmp_path).generation == "A"
    forced = parse_prompty(text, tmp_path, generation="B")
    assert forced.generation == "B"
    # no `template:` at all: Jinja2, as the runtime of generation B (prompty 1.0.0b3)
    # renders it; a `template:` mapping that names no format: mustache (its default)
    assert forced.definition.template.format == "jinja2"
    assert [m.text for m in forced.render({"q": "a<b"})] == ["a<b"]
    parser_only = text.replace("---\nuser", "template:\n  parser: prompty\n---\nuser")
    mustache = parse_prompty(parser_only, tmp_path, generation="B")
    assert mustache.definition.template.format == "mustache"
    assert [m.text for m in mustache.render({"q": "a<b"})] == ["a&lt;b"]


def test_generation_b_without_a_template_key_runs_its_jinja_loops(tmp_path: Path) -> None:
    # microsoft/prompty's own B test files loop with {% for %} and name no template;
    # rendered as mustache, the loop came out as literal text (compatibility corpus).
    text = (
        "---\nmetadata:\n  authors: [someone]\n"
        "model:\n  api: chat\n  connection:\n    azure_deployment: gpt-35-turbo\n"
        "inputs:\n  firstName: Jane\n  chat_history: []\n---\nsystem:\nHi {{firstName}}.\n"
        "{% for item in chat_history %}\n{{item.role}}:\n{{item.content}}\n{% endfor %}\n"
    )
    prompty = parse_prompty(text, tmp_path)
    assert prompty.generation == "B"
    history = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi"}]
    rendered = prompty.render({"chat_history": history})
    assert [(m.role, m.text) for m in rendered] == [
        ("system", "Hi Jane."),
        ("user", "Hello"),
        ("assistant", "Hi"),
    ]


def test_unknown_keys_in_generation_c_are_ignored(tmp_path: Path) -> None:
    text = (
        "---\nname: x\nfutureTopLevel: {deep: [1, 2]}\nx-vendor: 1\n"
        "model:\n  id: m\n  provider: openai\n  newThing: true\n"
        "  connection:\n    kind: key\n    region: eu\n"
        "  options:\n    temperature: 0.5\n    reasoningBudget: 9\n"
        "inputs:\n  - name: q\n    kind: string\n    uiHint: textarea\n"
        "tools:\n  - name: t\n    kind: function\n    futureField: x\n"
        "template:\n  format:\n    kind: jinja2\n    flavor: strict\n  parser: prompty\n"
        "---\nuser:\n{{q}}\n"
    )
    prompty = parse_prompty(text, tmp_path)
    definition = prompty.definition
    assert definition.generation == "C"
    assert definition.model.options.temperature == 0.5
    assert definition.model.options.extra == {}  # unknown options are dropped, not passed
    assert [p.name for p in definition.inputs] == ["q"]
    assert definition.tools[0].options == {"futureField": "x"}
    assert [m.text for m in prompty.render({"q": "hello"})] == ["hello"]


def test_generation_a_parameters_map_to_neutral_options(tmp_path: Path) -> None:
    text = (
        "---\nmodel:\n  configuration:\n    type: openai\n    model: gpt-4o\n"
        "  parameters:\n    max_tokens: 100\n    temperature: 0.3\n    top_p: 0.8\n"
        "    frequency_penalty: 0.5\n    presence_penalty: 0.25\n    seed: 1\n    stop: END\n"
        "    parallel_tool_calls: true\n    response_format: {type: json_object}\n"
        "    logprobs: true\n---\nHi\n"
    )
    options = parse_prompty(text, tmp_path).definition.model.options
    assert (options.max_output_tokens, options.temperature, options.top_p) == (100, 0.3, 0.8)
    assert (options.frequency_penalty, options.presence_penalty, options.seed) == (0.5, 0.25, 1)
    assert options.stop == ("END",)
    assert options.allow_multiple_tool_calls is True
    assert options.response_format == {"type": "json_object"}
    assert options.extra == {"logprobs": True}  # passed through to the provider
    assert options.request_fields() == {
        "temperature": 0.3,
        "max_output_tokens": 100,
        "stop": ("END",),
        "seed": 1,
        "parallel_tool_calls": True,
    }


def test_legacy_prompt_flow_connection_and_deployment_name(tmp_path: Path) -> None:
    text = (
        "---\nmodel:\n  api: chat\n  connection: open_ai_connection\n"
        "  parameters:\n    deployment_name: gpt-4\n    max_tokens: 256\n---\nHi\n"
    )
    model = parse_prompty(text, tmp_path).definition.model
    assert model.id == "gpt-4"
    assert model.connection is not None
    assert (model.connection.kind, model.connection.name) == ("reference", "open_ai_connection")


def test_generation_c_options_map_per_provider_and_drop_what_a_provider_lacks(
    tmp_path: Path,
) -> None:
    text = (
        "---\nmodel:\n  id: m\n  provider: anthropic\n  options:\n    temperature: 0.1\n"
        "    maxOutputTokens: 512\n    topP: 0.9\n    topK: 20\n    frequencyPenalty: 0.2\n"
        "    seed: 5\n    stopSequences: [STOP]\n"
        "    additionalProperties: {metadata: {user_id: u1}}\n---\nHi\n"
    )
    options = parse_prompty(text, tmp_path).definition.model.options
    assert options.provider_options("openai_chat") == {
        "temperature": 0.1,
        "max_completion_tokens": 512,
        "top_p": 0.9,
        "frequency_penalty": 0.2,
        "seed": 5,
        "stop": ["STOP"],
        "metadata": {"user_id": "u1"},
    }
    assert options.provider_options("anthropic") == {
        "temperature": 0.1,
        "max_tokens": 512,
        "top_p": 0.9,
        "top_k": 20,
        "stop_sequences": ["STOP"],
        "metadata": {"user_id": "u1"},
    }
    gemini = options.provider_options("gemini")
    assert gemini["maxOutputTokens"] == 512 and gemini["topK"] == 20
    assert gemini["stopSequences"] == ["STOP"]


def test_generation_b_accepts_snake_and_camel_options(tmp_path: Path) -> None:
    text = (
        "---\nmodel:\n  id: m\n  connection:\n    type: openai\n"
        "  options:\n    maxTokens: 64\n    topP: 0.5\n    stop: [a, b]\n---\nHi\n"
    )
    options = parse_prompty(text, tmp_path).definition.model.options
    assert (options.max_output_tokens, options.top_p, options.stop) == (64, 0.5, ("a", "b"))


def test_generation_c_scalar_shorthand_and_input_schema(tmp_path: Path) -> None:
    text = (
        "---\nmodel: m\ninputSchema:\n  properties:\n    - name: city\n      kind: string\n"
        "      default: Oslo\n    - name: days\n      kind: integer\n      required: true\n"
        "---\nuser:\n{{city}} {{days}}\n"
    )
    prompty = parse_prompty(text, tmp_path)
    assert [(p.name, p.kind, p.required) for p in prompty.definition.inputs] == [
        ("city", "string", False),
        ("days", "integer", True),
    ]
    assert [m.text for m in prompty.render({"days": 3})] == ["Oslo 3"]
    shorthand = parse_prompty(
        "---\nmodel: m\ninputs:\n  firstName: Jane\n---\n{{firstName}}", tmp_path
    )
    prop = shorthand.definition.inputs[0]
    assert (prop.name, prop.kind, prop.default, prop.required) == (
        "firstName",
        "string",
        "Jane",
        False,
    )


def test_function_tool_bindings_are_hidden_from_the_model_and_override_its_arguments(
    tmp_path: Path,
) -> None:
    text = (
        "---\nmodel: m\ninputs:\n  - name: user_email\n    kind: string\n"
        "tools:\n  - name: create_ticket\n    kind: function\n    description: Create a ticket\n"
        "    strict: true\n    parameters:\n      - name: title\n        kind: string\n"
        "        required: true\n      - name: requester\n        kind: string\n"
        "        required: true\n      - name: queue\n        kind: string\n"
        "    bindings:\n      - name: requester\n        input: user_email\n"
        "      - name: queue\n        value: it-l1\n---\nHi\n"
    )
    tool = parse_prompty(text, tmp_path).definition.tools[0]
    spec = tool.spec()
    assert spec.name == "create_ticket" and spec.description == "Create a ticket"
    assert spec.parameters == {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
    }
    arguments = tool.bind_arguments(
        {"title": "Broken screen", "requester": "attacker@evil.example", "queue": "vip"},
        {"user_email": "ada@contoso.example"},
    )
    assert arguments == {
        "title": "Broken screen",
        "requester": "ada@contoso.example",
        "queue": "it-l1",
    }
    with pytest.raises(PromptyInputError, match="user_email"):
        tool.bind_arguments({"title": "x"}, {})


def test_mcp_and_openapi_tool_fields_are_kept(tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text('{"openapi": "3.1.0", "paths": {}}', encoding="utf-8")
    text = (
        "---\nmodel: m\ntools:\n  - name: docs\n    kind: mcp\n    serverName: docs\n"
        "    approvalMode: {kind: always}\n    allowedTools: [search]\n"
        "    connection:\n      kind: remote\n      endpoint: https://mcp.example/\n"
        "      headers: {x-team: it}\n"
        "  - name: api\n    kind: openapi\n    specification: ${file:spec.json}\n"
        "    operationIds: [getThing]\n    connection:\n      kind: key\n"
        "      endpoint: https://api.example\n      apiKey: ${env:API_KEY}\n---\nHi\n"
    )
    docs, api = parse_prompty(text, tmp_path, environ={}, defer_connections=True).definition.tools
    assert (docs.kind, docs.server_name, docs.allowed_tools) == ("mcp", "docs", ("search",))
    assert docs.approval_mode == {"kind": "always"}
    assert docs.connection is not None and docs.connection.endpoint == "https://mcp.example/"
    assert docs.connection.options == {"headers": {"x-team": "it"}}
    assert api.kind == "openapi" and api.specification == {"openapi": "3.1.0", "paths": {}}
    assert api.options == {"operationIds": ["getThing"]}
    assert api.connection is not None
    resolved = api.connection.resolve({"API_KEY": "k-1"})
    assert resolved.api_key is not None and resolved.api_key.get_secret_value() == "k-1"


def test_structured_output_schema(tmp_path: Path) -> None:
    text = (
        "---\nmodel: m\noutputs:\n  answer: {kind: string}\n  confidence: {kind: float}\n"
        "  sources: {kind: array, items: {kind: string}}\n---\nHi\n"
    )
    schema = parse_prompty(text, tmp_path).definition.output_schema
    assert schema == {
        "type": "object",
        "properties": {
            "answer": {"type": "string"},
            "confidence": {"type": "number"},
            "sources": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["answer", "confidence", "sources"],
        "additionalProperties": False,
    }
    assert parse_prompty("---\nmodel: m\n---\nHi", tmp_path).definition.output_schema is None


def test_default_name_is_the_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "triage.claude.prompty"
    path.write_text("---\nmodel: m\n---\nHi\n", encoding="utf-8")
    from pilothouse.copilot.prompty import load_prompty

    assert load_prompty(path).name == "triage.claude"


def test_definition_feeds_a_model_request(tmp_path: Path) -> None:
    """What the runtime does with a definition: options, tools and output schema go
    straight into a ModelRequest."""
    from pilothouse.types import ModelRequest

    text = (
        "---\nname: Ticket triage!\nmodel:\n  id: m\n  provider: openai\n  options:\n"
        "    temperature: 0.2\n    maxOutputTokens: 50\n    stopSequences: [x]\n    seed: 3\n"
        "    allowMultipleToolCalls: false\n"
        "inputs:\n  - name: who\n    kind: string\n"
        "outputs:\n  - name: queue\n    kind: string\n"
        "tools:\n  - name: assign\n    kind: function\n    parameters:\n"
        "      - name: queue\n        kind: string\n      - name: requester\n        kind: string\n"
        "    bindings:\n      requester: who\n"
        "  - name: docs\n    kind: mcp\n---\nuser:\n{{who}}\n"
    )
    prompty = parse_prompty(text, tmp_path)
    definition = prompty.definition
    request = ModelRequest(
        messages=tuple(prompty.render({"who": "ada"})),
        tools=definition.tool_specs(),
        output_schema=definition.structured_output(),
        **definition.model.options.request_fields(),
    )
    assert (request.temperature, request.max_output_tokens, request.stop, request.seed) == (
        0.2,
        50,
        ("x",),
        3,
    )
    assert request.parallel_tool_calls is False
    assert [t.name for t in request.tools] == ["assign"]
    assert list(request.tools[0].parameters["properties"]) == ["queue"]
    assert request.output_schema is not None
    assert request.output_schema.name == "Ticket_triage"
    assert request.output_schema.schema["required"] == ["queue"]


def test_secret_settings_in_connections_are_masked(tmp_path: Path) -> None:
    text = (
        "---\nmodel:\n  id: m\n  provider: azure\n  connection:\n    kind: oauth\n"
        "    clientId: app\n    clientSecret: s3cr3t-value\n    subscription_key: k3y-value\n"
        "---\nHi\n"
    )
    definition = parse_prompty(text, tmp_path).definition
    assert "s3cr3t-value" not in repr(definition) and "k3y-value" not in repr(definition)
    connection = definition.model.connection
    assert connection is not None and connection.options["clientId"] == "app"
