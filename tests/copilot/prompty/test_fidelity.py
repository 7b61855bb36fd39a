"""What real Prompty files use, ranked by how many files use it (issue 17): each item
supported, or refused with an error naming the file, the line and what to use instead.

The files are written after the shapes of the public examples of the 2024 Prompty
runtime (generation B), the v2 draft (C) and Prompt flow (A)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from pilothouse.copilot.prompty import PromptyError, PromptyInputError, load_prompty
from pilothouse.models.openai_chat.request import build_payload
from pilothouse.models.profiles import profile_for
from pilothouse.models.providers import Endpoint
from pilothouse.types import ImagePart, ModelRequest, TextPart

THREADED_B = """\
---
name: Basic Prompt
description: A basic prompt that uses the chat API to answer questions
metadata:
  authors:
    - someone
model:
  api: chat
  connection:
    type: azure_openai
    azure_deployment: gpt-35-turbo
inputs:
  firstName: Jane
  lastName: Doe
  query: What is the meaning of life?
---
system:
You are an AI assistant who helps people find information.

# Customer
You are helping {{firstName}} {{lastName}} to find answers to their questions.

![thread]
{{query}}
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# 1. scalar shorthand inputs in A and B files


def test_scalar_shorthand_inputs_load_in_generation_b(tmp_path: Path) -> None:
    prompty = load_prompty(_write(tmp_path, "threaded.prompty", THREADED_B), environ={})
    assert prompty.generation == "B"
    inputs = {p.name: (p.kind, p.default) for p in prompty.definition.inputs}
    assert inputs == {
        "firstName": ("string", "Jane"),
        "lastName": ("string", "Doe"),
        "query": ("string", "What is the meaning of life?"),
    }
    messages = prompty.render({})
    assert "You are helping Jane Doe" in messages[0].text


def test_scalar_shorthand_inputs_in_generation_a_take_the_value_kind(tmp_path: Path) -> None:
    text = (
        "---\nmodel:\n  api: chat\n  configuration:\n    type: openai\n    model: gpt-4o\n"
        "inputs:\n  question: What is Prompty?\n  top: 3\n  strict: true\n  tags: [a, b]\n"
        "  required_one:\n---\nuser:\n{{question}} {{top}} {{strict}} {{tags|join(',')}}\n"
    )
    prompty = load_prompty(_write(tmp_path, "a.prompty", text), environ={})
    assert prompty.generation == "A"
    kinds = {p.name: p.kind for p in prompty.definition.inputs}
    assert kinds == {
        "question": "string",
        "top": "integer",
        "strict": "boolean",
        "tags": "array",
        "required_one": "string",
    }
    with pytest.raises(PromptyInputError, match="required_one"):
        prompty.render({})
    assert prompty.render({"required_one": ""})[0].text == "What is Prompty? 3 True a,b"


def test_a_property_without_a_type_takes_the_kind_of_its_sample_or_default(
    tmp_path: Path,
) -> None:
    # The 2024 runtime's shape (its inputs often come from ${file:context.json}):
    # `{name: {sample: value}}` with no type; found re-measuring the compatibility corpus.
    (tmp_path / "context.json").write_text(
        '{"customer": {"sample": {"firstName": "Sally"}}, '
        '"documentation": {"sample": [{"id": "17"}, {"id": "3"}]}, '
        '"question": {"sample": "Which jacket?"}, "top": {"default": 3}}'
    )
    text = (
        "---\nmodel:\n  api: chat\n  connection:\n    azure_deployment: gpt-35-turbo\n"
        "inputs: ${file:context.json}\n---\nsystem:\nHelp {{customer.firstName}}.\n"
        "{% for item in documentation %}catalog: {{item.id}}\n{% endfor %}\n"
        "user:\n{{question}} {{top + 1}}\n"
    )
    prompty = load_prompty(_write(tmp_path, "context.prompty", text), environ={})
    kinds = {p.name: p.kind for p in prompty.definition.inputs}
    assert kinds == {
        "customer": "object",
        "documentation": "array",
        "question": "string",
        "top": "integer",
    }
    sample = {p.name: p.example for p in prompty.definition.inputs if p.name != "top"}
    system, user = prompty.render(sample)
    assert system.text == "Help Sally.\ncatalog: 17\ncatalog: 3"
    assert user.text == "Which jacket? 4"


# 2. the model id written under connection.azure_deployment


def test_model_id_under_connection_azure_deployment(tmp_path: Path) -> None:
    b = load_prompty(_write(tmp_path, "b.prompty", THREADED_B), environ={})
    assert (b.definition.model.id, b.definition.model.provider) == ("gpt-35-turbo", "azure")
    c_text = (
        "---\nmodel:\n  provider: azure\n  connection:\n    kind: key\n"
        "    endpoint: https://x.openai.azure.com\n    azure_deployment: ${env:DEPLOYMENT}\n"
        "---\nuser:\nhi\n"
    )
    c = load_prompty(_write(tmp_path, "c.prompty", c_text), environ={"DEPLOYMENT": "gpt-4o"})
    assert c.definition.model.id == "gpt-4o"


# 3. template: nunjucks


def test_nunjucks_is_refused_naming_file_line_and_what_to_use(tmp_path: Path) -> None:
    text = "---\nname: js\nmodel:\n  api: chat\ntemplate: nunjucks\n---\nuser:\n{{ q }}\n"
    file = _write(tmp_path, "js.prompty", text)
    with pytest.raises(PromptyError) as info:
        load_prompty(file, environ={})
    assert str(info.value).startswith(f"{file}:5: template: ")
    assert "nunjucks" in str(info.value) and "template: jinja2" in str(info.value)


# 4. 2024-style tools keyed by id


def test_tools_keyed_by_id_with_parameters_under_options(tmp_path: Path) -> None:
    text = (
        "---\nname: t\nmodel:\n  api: chat\ninputs:\n  question: hi\ntools:\n  - id: bing\n"
        "    type: web_search\n    description: Search the web.\n    options:\n"
        "      url: https://search.example\n      parameters:\n        - name: query\n"
        "          type: string\n          description: The search query.\n"
        "  - id: get_weather\n    type: function\n    description: Weather.\n"
        "    parameters:\n      type: object\n      properties:\n        city: {type: string}\n"
        "---\nuser:\n{{question}}\n"
    )
    prompty = load_prompty(_write(tmp_path, "tools.prompty", text), environ={})
    bing, weather = prompty.definition.tools
    assert (bing.name, bing.kind, bing.description) == ("bing", "web_search", "Search the web.")
    assert bing.parameters["properties"]["query"]["type"] == "string"
    assert (weather.name, weather.kind) == ("get_weather", "function")
    assert [s.name for s in prompty.definition.tool_specs()] == ["get_weather"]


def test_a_tool_with_neither_name_nor_id_says_so(tmp_path: Path) -> None:
    text = "---\nmodel: m\ntools:\n  - kind: function\n    description: x\n---\nhi\n"
    file = _write(tmp_path, "t.prompty", text)
    with pytest.raises(PromptyError, match=r":4: tools\[0\]: a tool needs a name .*id:"):
        load_prompty(file, environ={})


# 6. ![thread] lines


def test_thread_line_expands_the_conversation_there(tmp_path: Path) -> None:
    prompty = load_prompty(_write(tmp_path, "threaded.prompty", THREADED_B), environ={})
    thread = [
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": "An assistant."},
    ]
    messages = prompty.render({"thread": thread, "query": "And now?"})
    assert [(m.role, m.text) for m in messages[1:]] == [
        ("user", "Who are you?"),
        ("assistant", "An assistant."),
        ("system", "And now?"),
    ]
    assert "![thread]" not in messages[0].text
    alone = prompty.render({})  # no conversation: nothing is left where the line was
    assert all("![thread]" not in m.text and "PILOTHOUSE" not in m.text for m in alone)


def test_thread_line_uses_a_declared_thread_input(tmp_path: Path) -> None:
    text = (
        "---\nmodel: m\ninputs:\n  conversation:\n    kind: thread\n---\nsystem:\nBe brief.\n"
        "\n![thread]\n\nuser:\nlast\n"
    )
    prompty = load_prompty(_write(tmp_path, "t.prompty", text), environ={})
    messages = prompty.render({"conversation": [{"role": "user", "content": "earlier"}]})
    assert [(m.role, m.text) for m in messages] == [
        ("system", "Be brief."),
        ("user", "earlier"),
        ("user", "last"),
    ]


# 7. {% extends %} relative to the file


def test_extends_reads_the_base_from_the_prompty_folder(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "base.prompty",
        "---\nname: base\n---\nsystem:\n{% block instructions %}Be helpful.{% endblock %}\n\n"
        "user:\n{% block question %}{% endblock %}\n",
    )
    child = (
        "---\nname: child\nmodel:\n  api: chat\ninputs:\n  question: hi\n---\n"
        "{% extends 'base.prompty' %}\n{% block instructions %}Answer in French.{% endblock %}\n"
        "{% block question %}{{ question }}{% endblock %}\n"
    )
    prompty = load_prompty(_write(tmp_path, "child.prompty", child), environ={})
    assert [(m.role, m.text) for m in prompty.render({"question": "Bonjour?"})] == [
        ("system", "Answer in French."),
        ("user", "Bonjour?"),
    ]


def test_extends_outside_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    folder.mkdir()
    _write(tmp_path, "base.prompty", "system:\nSECRET\n")
    child = "---\nname: c\nmodel: m\n---\n{% extends '../base.prompty' %}\n"
    prompty = load_prompty(_write(folder, "c.prompty", child), environ={})
    with pytest.raises(PromptyError, match="goes up") as info:
        prompty.render({})
    assert "SECRET" not in str(info.value)


# 8. image, audio and file inputs


def test_image_input_becomes_an_image_part(tmp_path: Path) -> None:
    (tmp_path / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    text = (
        "---\nmodel: m\ninputs:\n  picture:\n    kind: image\n  question: What is it?\n---\n"
        "system:\nDescribe images.\n\nuser:\n{{question}}\n{{picture}}\n"
    )
    prompty = load_prompty(_write(tmp_path, "v.prompty", text), environ={})
    user = prompty.render({"picture": "https://img.example/cat.png"})[1]
    assert user.parts == (TextPart("What is it?"), ImagePart(url="https://img.example/cat.png"))
    local = prompty.render({"picture": "chart.png"})[1]
    data = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    assert local.parts[1] == ImagePart(data=data, media_type="image/png")
    markdown = text.replace("{{picture}}", "![image]({{picture}})")
    prompty_md = load_prompty(_write(tmp_path, "m.prompty", markdown), environ={})
    assert prompty_md.render({"picture": "chart.png"})[1].parts[1] == local.parts[1]
    with pytest.raises(PromptyInputError, match="picture"):
        prompty.render({"picture": "notes.txt"})


def test_prompt_flow_image_values_are_images(tmp_path: Path) -> None:
    # Prompt flow writes an image input's value as {"data:image/png;path": "logo.png"},
    # {"data:image/png;url": URL} or {"data:image/png;base64": DATA}.
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    text = (
        "---\nmodel:\n  api: chat\n  configuration:\n    type: openai\n    model: gpt-4o\n"
        "inputs:\n  image:\n    type: image\n    default:\n      data:image/png;path: logo.png\n"
        "---\nuser:\nPlease describe this picture: {{image}}\n"
    )
    prompty = load_prompty(_write(tmp_path, "pf.prompty", text), environ={})
    data = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    [user] = prompty.render({})
    assert user.parts == (
        TextPart("Please describe this picture:"),
        ImagePart(data=data, media_type="image/png"),
    )
    [by_url] = prompty.render({"image": {"data:image/jpeg;url": "https://img.example/a.jpg"}})
    assert by_url.parts[1] == ImagePart(url="https://img.example/a.jpg")
    [inline] = prompty.render({"image": {"data:image/png;base64": data}})
    assert inline.parts[1] == ImagePart(data=data, media_type="image/png")


@pytest.mark.parametrize("kind", ["audio", "file"])
def test_audio_and_file_inputs_are_refused_with_the_line(tmp_path: Path, kind: str) -> None:
    text = f"---\nmodel: m\ninputs:\n  question: hi\n  recording:\n    kind: {kind}\n---\nhi\n"
    file = _write(tmp_path, "r.prompty", text)
    with pytest.raises(PromptyError) as info:
        load_prompty(file, environ={})
    assert str(info.value).startswith(f"{file}:5: inputs.recording: ")
    assert "string input instead" in str(info.value)


# 9. whitespace per generation's runtime

BLOCKS = "user:\nA\n{% if true %}\nB\n{% endif %}\nC\n"


def test_generation_a_renders_with_prompt_flows_trim_blocks(tmp_path: Path) -> None:
    a = "---\nmodel:\n  api: chat\n  configuration:\n    type: openai\n---\n" + BLOCKS
    c = "---\nmodel: m\n---\n" + BLOCKS
    assert load_prompty(_write(tmp_path, "a.prompty", a), environ={}).render({})[0].text == (
        "A\nB\nC"
    )
    assert load_prompty(_write(tmp_path, "c.prompty", c), environ={}).render({})[0].text == (
        "A\n\nB\n\nC"
    )


# 10. developer role, role attributes, numbers from ${env:}


def test_developer_role_and_name_attributes(tmp_path: Path) -> None:
    text = (
        '---\nmodel: m\n---\ndeveloper:\nFollow the policy.\n\nuser[name="Ada"]:\nHi\n\n'
        "assistant[name=bot]:\nHello\n"
    )
    messages = load_prompty(_write(tmp_path, "d.prompty", text), environ={}).render({})
    assert [(m.role, m.name, m.text) for m in messages] == [
        ("system", None, "Follow the policy."),
        ("user", "Ada", "Hi"),
        ("assistant", "bot", "Hello"),
    ]
    payload = build_payload(
        ModelRequest(tuple(messages)),
        name="gpt-4o",
        endpoint=Endpoint(
            "openai", "openai", "https://api.openai.com/v1", None, "bearer", None, "standard", 60
        ),
        profile=profile_for("openai:gpt-4o"),
        model="openai:gpt-4o",
        stream=False,
    )
    assert [m.get("name") for m in payload["messages"]] == [None, "Ada", "bot"]


def test_numeric_options_may_come_from_env(tmp_path: Path) -> None:
    text = (
        "---\nmodel:\n  id: gpt-4o\n  provider: openai\n  options:\n"
        "    temperature: ${env:TEMPERATURE:0.2}\n    maxOutputTokens: ${env:MAX_TOKENS}\n"
        "    seed: ${env:SEED:7}\n---\nhi\n"
    )
    file = _write(tmp_path, "n.prompty", text)
    options = load_prompty(file, environ={"MAX_TOKENS": "300"}).definition.model.options
    assert (options.temperature, options.max_output_tokens, options.seed) == (0.2, 300, 7)
    with pytest.raises(PromptyError, match=r":7: model.options.maxOutputTokens: expected a whole"):
        load_prompty(file, environ={"MAX_TOKENS": "many"})
    literal = text.replace("${env:TEMPERATURE:0.2}", "'0.2'")
    with pytest.raises(PromptyError, match="temperature: expected a number"):
        load_prompty(_write(tmp_path, "l.prompty", literal), environ={"MAX_TOKENS": "1"})
