"""Rendering: the sandbox, Mustache, inputs, threads, images, and role parsing."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from pilothouse.copilot.prompty import (
    PromptyInputError,
    PromptyRenderError,
    parse_prompty,
    split_messages,
)
from pilothouse.types import ImagePart, Message, TextPart, ToolCallPart, ToolResultPart

from .helpers import message_json

C = "---\nname: t\nmodel: m\n{extra}---\n"


def _c(tmp_path: Path, body: str, extra: str = ""):  # type: ignore[no-untyped-def]
    return parse_prompty(C.format(extra=extra) + body, tmp_path)


# --- sandbox ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "{{ q.__class__.__base__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ q.__len__() }}",
    ],
)
def test_sandbox_refuses_dunder_access_with_a_clear_error(tmp_path: Path, expression: str) -> None:
    prompty = _c(tmp_path, f"system:\nHello\n\nuser:\n{expression}\n")
    with pytest.raises(PromptyRenderError) as info:
        prompty.render({"q": "text"})
    assert "sandbox forbids" in str(info.value)
    assert info.value.line == 9  # the file line of the expression


def test_sandbox_refuses_mutating_inputs(tmp_path: Path) -> None:
    prompty = _c(tmp_path, "{{ items.append(4) }}{{ items }}")
    items = [1, 2, 3]
    with pytest.raises(PromptyRenderError, match="sandbox"):
        prompty.render({"items": items})
    assert items == [1, 2, 3]


def test_includes_read_the_prompty_folder_only(tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    folder.mkdir()
    (tmp_path / "secret.txt").write_text("SECRET", encoding="utf-8")
    (folder / "other.txt").write_text("included {{ x }}", encoding="utf-8")
    (folder / "leak.txt").symlink_to(tmp_path / "secret.txt")
    assert _c(folder, "user:\n{% include 'other.txt' %}").render({"x": 1})[0].text == "included 1"
    for name in ("../secret.txt", str(tmp_path / "secret.txt"), "leak.txt", "missing.txt"):
        prompty = _c(folder, "user:\n{% include '" + name + "' %}")
        with pytest.raises(PromptyRenderError, match="template failed") as info:
            prompty.render({})
        assert "SECRET" not in str(info.value)


def test_jinja_keeps_whitespace_as_written_no_trim_or_lstrip(tmp_path: Path) -> None:
    prompty = _c(tmp_path, "user:\nA\n  {% if true %}\n  B\n  {% endif %}\nC\n")
    assert prompty.render({})[0].text == "A\n  \n  B\n  \nC"


def test_v2_minimal_jinja_subset_renders(tmp_path: Path) -> None:
    body = (
        "user:\n{# comment #}{{ name | default('you') | upper }} {{ tags | join(', ') }} "
        "{{ tags | length }} [{{ '  x  ' | trim }}] {{ 'ABC' | lower }}\n"
        "{% for t in tags %}{% if loop.first %}first={{ t }}{% elif t == 'b' %}"
        "b{% else %}other{% endif %};{% endfor %}"
    )
    assert _c(tmp_path, body).render({"tags": ["a", "b", "c"]})[0].text == (
        "YOU a, b, c 3 [x] abc\nfirst=a;b;other;"
    )


# --- mustache -----------------------------------------------------------------------

B = (
    "---\nmodel:\n  id: m\n  connection:\n    type: openai\n"
    "inputs:\n  - name: q\n    type: string\ntemplate: mustache\n---\n"
)


def test_mustache_escapes_like_prompty_and_triple_braces_do_not(tmp_path: Path) -> None:
    prompty = parse_prompty(B + "user:\n{{q}} | {{{q}}} | {{& q}}\n", tmp_path)
    assert prompty.definition.template.format == "mustache"
    text = prompty.render({"q": 'R&D <ops> "x" it\'s'})[0].text
    assert text == (
        'R&amp;D &lt;ops&gt; &quot;x&quot; it\'s | R&D <ops> "x" it\'s | R&D <ops> "x" it\'s'
    )


def test_mustache_partials_are_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.mustache").write_text("SECRET", encoding="utf-8")
    prompty = parse_prompty(B + "user:\n{{> secret}}\n", tmp_path)
    with pytest.raises(PromptyRenderError, match="partials"):
        prompty.render({"q": "x"})


def test_mustache_sees_only_plain_data(tmp_path: Path) -> None:
    class Account:
        password = "hunter2"

        def __str__(self) -> str:
            return "account"

    prompty = parse_prompty(B + "user:\n{{acct}} {{acct.password}}\n", tmp_path)
    assert prompty.render({"q": "x", "acct": Account()})[0].text == "account "


@pytest.mark.parametrize("body", ["user:\n{{#open}}never closed\n", "{{#a}}x{{/b}}", "{{/a}}"])
def test_mustache_syntax_error_at_load(tmp_path: Path, body: str) -> None:
    with pytest.raises(PromptyRenderError, match="Mustache syntax error"):
        parse_prompty(B + body, tmp_path)


# --- inputs -------------------------------------------------------------------------


def test_missing_required_input_names_it_and_its_declaration(tmp_path: Path) -> None:
    path = tmp_path / "p.prompty"
    path.write_text(
        "---\nmodel: m\ninputs:\n  - name: question\n    kind: string\n    required: true\n"
        "  - name: tone\n    kind: string\n    default: friendly\n---\nuser:\n{{question}}",
        encoding="utf-8",
    )
    from pilothouse.copilot.prompty import load_prompty

    prompty = load_prompty(path)
    with pytest.raises(PromptyInputError) as info:
        prompty.render({"tone": "dry"})
    assert "'question'" in str(info.value)
    assert (info.value.line, info.value.field) == (4, "inputs.question")
    assert prompty.resolve_inputs({"question": "q"}) == {"question": "q", "tone": "friendly"}


def test_generation_a_inputs_without_default_are_required(tmp_path: Path) -> None:
    text = (
        "---\nmodel:\n  configuration:\n    type: openai\n    model: m\n"
        "inputs:\n  a:\n    type: string\n  b:\n    type: string\n  c:\n    type: string\n"
        "    default: C\n---\nuser:\n{{a}}{{b}}{{c}}\n"
    )
    prompty = parse_prompty(text, tmp_path)
    with pytest.raises(PromptyInputError, match="missing required inputs 'a', 'b'"):
        prompty.render({})
    assert prompty.render({"a": "A", "b": "B"})[0].text == "ABC"


def test_defaults_are_copied_not_shared(tmp_path: Path) -> None:
    prompty = _c(
        tmp_path, "{{ items }}", "inputs:\n  - name: items\n    kind: array\n    default: []\n"
    )
    first = prompty.resolve_inputs({})
    first["items"].append("x")
    assert prompty.resolve_inputs({})["items"] == []


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("integer", "3"),
        ("integer", True),
        ("float", "1.5"),
        ("boolean", 1),
        ("array", "ab"),
        ("object", [1]),
        ("string", 5),
    ],
)
def test_wrong_kind_of_value_is_an_error_naming_the_input(
    tmp_path: Path, kind: str, value: object
) -> None:
    prompty = _c(tmp_path, "{{ x }}", f"inputs:\n  - name: x\n    kind: {kind}\n")
    with pytest.raises(PromptyInputError, match="'x' must be"):
        prompty.render({"x": value})


def test_enum_is_enforced(tmp_path: Path) -> None:
    prompty = _c(
        tmp_path, "{{ d }}", "inputs:\n  - name: d\n    kind: string\n    enumValues: [it, hr]\n"
    )
    assert prompty.render({"d": "it"})[0].text == "it"
    with pytest.raises(PromptyInputError, match="not one of 'it', 'hr'"):
        prompty.render({"d": "finance"})


def test_undeclared_inputs_are_passed_to_the_template(tmp_path: Path) -> None:
    assert _c(tmp_path, "user:\n{{ extra }}").render({"extra": "yes"})[0].text == "yes"


# --- threads ------------------------------------------------------------------------

THREAD = "inputs:\n  - name: history\n    kind: thread\n  - name: q\n    kind: string\n"


def test_thread_expands_into_messages_of_every_shape(tmp_path: Path) -> None:
    prompty = _c(tmp_path, "system:\nBe brief.\n{{history}}\nuser:\n{{q}}\n", THREAD)
    history: list[object] = [
        Message.user("hi", ImagePart(url="https://x.example/a.png")),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"id": 7}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "name": "lookup", "content": "found"},
        {"role": "assistant", "content": [{"type": "text", "text": "It is found."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
    ]
    messages = prompty.render({"history": history, "q": "thanks"})
    assert messages == [
        Message.system("Be brief."),
        Message.user("hi", ImagePart(url="https://x.example/a.png")),
        Message("assistant", (ToolCallPart("c1", "lookup", {"id": 7}),)),
        Message("tool", (ToolResultPart("c1", "lookup", "found"),)),
        Message("assistant", (TextPart("It is found."),)),
        Message("user", (TextPart("look"), ImagePart(data="AAAA", media_type="image/png"))),
        Message.user("thanks"),
    ]


def test_thread_inside_text_splits_the_message_around_it(tmp_path: Path) -> None:
    prompty = _c(tmp_path, "system:\nBefore.\n{{history}}\nAfter.\n", THREAD)
    messages = prompty.render({"history": [{"role": "user", "content": "u"}]})
    assert [(m.role, m.text) for m in messages] == [
        ("system", "Before."),
        ("user", "u"),
        ("system", "After."),
    ]


def test_thread_missing_or_empty_adds_nothing(tmp_path: Path) -> None:
    prompty = _c(tmp_path, "system:\nS\n{{history}}\nuser:\n{{q}}\n", THREAD)
    for value in ({}, {"history": []}, {"history": None}):
        assert [m.role for m in prompty.render({**value, "q": "x"})] == ["system", "user"]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("not a list", "list of messages"),
        ([42], "item 0 is a int"),
        ([{"role": "wizard", "content": "x"}], "not a role"),
        ([{"role": "user", "content": [{"type": "audio"}]}], "type 'audio'"),
    ],
)
def test_malformed_thread_is_an_input_error(tmp_path: Path, value: object, words: str) -> None:
    prompty = _c(tmp_path, "{{history}}", THREAD)
    with pytest.raises(PromptyInputError, match=words):
        prompty.render({"history": value})


# --- images -------------------------------------------------------------------------

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def test_relative_image_inside_the_folder_is_inlined(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "dot.png").write_bytes(PNG)
    messages = _c(tmp_path, "user:\nSee ![dot](img/dot.png) here").render({})
    assert message_json(messages[0]) == {
        "role": "user",
        "parts": [
            {"type": "text", "text": "See"},
            {"type": "image", "data": base64.b64encode(PNG).decode(), "media_type": "image/png"},
            {"type": "text", "text": "here"},
        ],
    }


def test_relative_image_escaping_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (tmp_path / "outside.png").write_bytes(PNG)
    os.symlink(tmp_path / "outside.png", folder / "link.png")
    for url in ("../outside.png", "link.png", "/etc/passwd.png"):
        prompty = parse_prompty(C.format(extra="") + f"user:\n![x]({url})", folder)
        with pytest.raises(PromptyRenderError, match="image"):
            prompty.render({})


def test_other_schemes_and_non_user_images_stay_text(tmp_path: Path) -> None:
    body = (
        "system:\n![logo](https://x.example/logo.png)\n"
        "user:\n![f](file:///etc/passwd) ![s](notes.txt)"
    )
    messages = _c(tmp_path, body).render({})
    assert messages == [
        Message.system("![logo](https://x.example/logo.png)"),
        Message.user("![f](file:///etc/passwd) ![s](notes.txt)"),
    ]


# --- role parsing -------------------------------------------------------------------


def test_role_markers_any_case_hash_prefix_and_attributes(tmp_path: Path) -> None:
    body = (
        'Preamble is system.\n\n#  User :\n\n\nfirst\n\n\nASSISTANT[name="bot", x=1]:\n'
        "second\n# system:\nthird\nuser:\n\n"
    )
    messages = _c(tmp_path, body).render({})
    assert [(m.role, m.text) for m in messages] == [
        ("system", "Preamble is system."),
        ("user", "first"),
        ("assistant", "second"),
        ("system", "third"),
    ]


def test_marker_must_be_alone_on_its_line(tmp_path: Path) -> None:
    messages = _c(tmp_path, "user: hello\nsystem: not a marker either\n").render({})
    assert [(m.role, m.text) for m in messages] == [
        ("system", "user: hello\nsystem: not a marker either")
    ]


def test_function_and_tool_markers_are_generation_a_only(tmp_path: Path) -> None:
    messages = _c(tmp_path, "user:\nq\ntool:\nresult\n").render({})
    assert [(m.role, m.text) for m in messages] == [("user", "q\ntool:\nresult")]


def test_dynamic_marker_with_whitespace_control(tmp_path: Path) -> None:
    body = "system:\nS\n{% for m in turns -%}\n{{- m.role }}:\n{{ m.text }}\n{% endfor %}"
    messages = _c(tmp_path, body).render(
        {"turns": [{"role": "User", "text": "a"}, {"role": "assistant", "text": "b"}]}
    )
    assert [(m.role, m.text) for m in messages] == [
        ("system", "S"),
        ("user", "a"),
        ("assistant", "b"),
    ]


def test_split_messages_without_a_nonce_splits_at_every_marker() -> None:
    segments = split_messages("intro\nuser:\nhi\nassistant[nonce=x]:\nyo\n")
    assert [(s.role, s.text) for s in segments] == [
        ("system", "intro"),
        ("user", "hi"),
        ("assistant", "yo"),
    ]
    guarded = split_messages("intro\nuser[nonce=a]:\nhi\nuser[nonce=b]:\nyo", nonce="a")
    assert [(s.role, s.text) for s in guarded] == [
        ("system", "intro"),
        ("user", "hi\nuser[nonce=b]:\nyo"),
    ]


def test_runtime_template_error_reports_its_line(tmp_path: Path) -> None:
    prompty = _c(tmp_path, "user:\nline one\n{{ 1 // zero }}\n")
    with pytest.raises(PromptyRenderError) as info:
        prompty.render({"zero": 0})
    assert info.value.line == 7 and "ZeroDivisionError" in str(info.value)


def test_non_chat_api_renders_one_user_message(tmp_path: Path) -> None:
    text = "---\nmodel:\n  id: e\n  provider: openai\n  apiType: embedding\n---\nsystem:\n{{t}}\n"
    messages = parse_prompty(text, tmp_path).render({"t": "embed me"})
    assert messages == [Message.user("system:\nembed me")]


def test_mustache_custom_delimiters_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PromptyRenderError, match="custom delimiters"):
        parse_prompty(B + "{{=<% %>=}}\nuser:\n<% q %>\n", tmp_path)


def test_thread_in_a_mustache_template(tmp_path: Path) -> None:
    text = (
        "---\nmodel:\n  id: m\n  connection:\n    type: openai\n"
        "inputs:\n  - name: history\n    type: thread\n  - name: q\n    type: string\n---\n"
        "system:\nS\n{{history}}\nuser:\n{{q}}\n"
    )
    messages = parse_prompty(text, tmp_path).render(
        {"history": [{"role": "assistant", "content": "earlier <answer>"}], "q": "now"}
    )
    assert [(m.role, m.text) for m in messages] == [
        ("system", "S"),
        ("assistant", "earlier <answer>"),  # thread messages are not escaped or re-parsed
        ("user", "now"),
    ]
