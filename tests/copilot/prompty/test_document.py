"""Front matter parsing: malformed files give file:line errors; documents round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.copilot.prompty import (
    PromptyDocument,
    PromptyError,
    dump_prompty,
    load_prompty,
    parse_prompty,
)

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(CORPUS.glob("*.prompty"))


def _load_error(tmp_path: Path, text: str) -> PromptyError:
    path = tmp_path / "bad.prompty"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PromptyError) as info:
        load_prompty(path, environ={})
    assert str(info.value).startswith(f"{path}:")
    return info.value


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("---\nname: x\nmodel: [unclosed\n---\nHi\n", 3),
        ("---\nname: x\nmodel:\n  id: a\n   provider: b\n---\nHi\n", 5),
        ("---\nname: x\n\tmodel: m\n---\nHi\n", 3),
        ('---\nname: "unterminated\n---\nHi\n', 2),
    ],
)
def test_invalid_yaml_reports_the_file_line(tmp_path: Path, text: str, line: int) -> None:
    error = _load_error(tmp_path, text)
    assert error.line == line
    assert "not valid YAML" in str(error)


def test_unclosed_front_matter_is_an_error(tmp_path: Path) -> None:
    error = _load_error(tmp_path, "---\nname: x\nmodel: m\nsystem:\nHi\n")
    assert error.line == 1 and "never closed" in str(error)


def test_front_matter_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    error = _load_error(tmp_path, "---\n- a\n- b\n---\nHi\n")
    assert error.line == 2 and "mapping" in str(error)


def test_duplicate_key_is_an_error_with_its_line(tmp_path: Path) -> None:
    error = _load_error(tmp_path, "---\nname: x\nmodel: m\nname: y\n---\nHi\n")
    assert (error.line, error.field) == (4, "name")


@pytest.mark.parametrize(
    ("front_matter", "line", "field", "words"),
    [
        (
            "model:\n  id: m\n  provider: openai\n  options:\n    temperature: hot\n",
            6,
            "model.options.temperature",
            "expected a number",
        ),
        (
            "model:\n  id: m\n  provider: openai\n  options:\n    maxOutputTokens: 1.5\n",
            6,
            "model.options.maxOutputTokens",
            "whole number",
        ),
        (
            "model: m\ninputs:\n  - name: q\n    kind: strnig\n",
            5,
            "inputs[0].kind",
            "unknown kind 'strnig'",
        ),
        ("model: m\ntemplate: handlebars\n", 3, "template", "not supported"),
        (
            "model: m\ntools:\n  - kind: function\n    description: no name\n",
            4,
            "tools[0]",
            "needs a name",
        ),
        (
            "model:\n  configuration: gpt-4\n",
            3,
            "model.configuration",
            "expected a mapping",
        ),
        (
            "model: m\ntools:\n  - name: t\n    parameters:\n      - name: a\n"
            "    bindings:\n      b: some_input\n",
            8,
            "tools[0].bindings.b",
            "does not name a parameter",
        ),
        ("model: m\ninputs:\n  - name: a\n  - name: a\n", 5, "inputs[1]", "declared twice"),
    ],
)
def test_invalid_field_reports_line_and_field(
    tmp_path: Path, front_matter: str, line: int, field: str, words: str
) -> None:
    error = _load_error(tmp_path, f"---\n{front_matter}---\nHi\n")
    assert (error.line, error.field) == (line, field)
    assert words in str(error)
    assert f":{line}: {field}: " in str(error)


def test_template_syntax_error_reports_the_file_line(tmp_path: Path) -> None:
    error = _load_error(tmp_path, "---\nmodel: m\n---\nsystem:\nHi {{ name\n")
    assert error.line == 5 and "syntax error" in str(error)


def test_no_front_matter_and_empty_front_matter(tmp_path: Path) -> None:
    bare = parse_prompty("Just instructions.\n", tmp_path)
    assert bare.generation == "C" and bare.document.fence is None
    assert [(m.role, m.text) for m in bare.render()] == [("system", "Just instructions.")]
    empty = parse_prompty("---\n---\nuser:\nHi\n", tmp_path)
    assert empty.document.front_matter == {}
    assert [(m.role, m.text) for m in empty.render()] == [("user", "Hi")]


def test_plus_fence_and_bom_and_crlf(tmp_path: Path) -> None:
    text = "\ufeff+++\r\nname: x\r\nmodel: m\r\n+++\r\nuser:\r\nHi\r\n"
    prompty = parse_prompty(text, tmp_path)
    assert prompty.document.fence == "+++" and prompty.name == "x"
    assert [(m.role, m.text) for m in prompty.render()] == [("user", "Hi")]


@pytest.mark.parametrize("file", FILES, ids=[f.name for f in FILES])
def test_corpus_file_round_trips_through_dump_and_load(file: Path) -> None:
    original = load_prompty(file, environ={"OPENAI_API_KEY": "k"}, defer_connections=True)
    text = dump_prompty(original)
    document = PromptyDocument.parse(text, file)
    assert document == original.document
    assert document.dump() == text  # dumping is stable
    again = parse_prompty(
        text, file.parent, path=file, environ={"OPENAI_API_KEY": "k"}, defer_connections=True
    )
    assert again.definition == original.definition
    assert again.generation == original.generation


def test_edited_document_dumps_the_edit(tmp_path: Path) -> None:
    prompty = parse_prompty("---\nname: a\nmodel: m\n---\nuser:\n{{q}}\n", tmp_path)
    edited = PromptyDocument(
        {**prompty.document.front_matter, "description": "now described"},
        prompty.document.body,
        prompty.document.fence,
    )
    reloaded = parse_prompty(dump_prompty(edited), tmp_path)
    assert reloaded.definition.description == "now described"
    assert reloaded.definition.body == prompty.definition.body


def test_missing_file_or_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PromptyError, match="cannot read the Prompty file"):
        load_prompty(tmp_path / "nope.prompty")
    with pytest.raises(PromptyError, match="cannot read the Prompty file"):
        load_prompty(tmp_path)
    (tmp_path / "latin1.prompty").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(PromptyError, match="not UTF-8"):
        load_prompty(tmp_path / "latin1.prompty")


SECRET_HEAD = (
    "---\nname: leaky\nmodel:\n  api: chat\n  configuration:\n    type: openai\n"
    "    api_key: sk-front-matter-secret-123\n    model: gpt-4o\n---\nsystem:\nYou help.\n"
)


def _indented(text: str, indent: str) -> str:
    head, body = text.split("---\nsystem:", 1)
    return "".join(indent + line + "\n" for line in (head + "---").split("\n")) + "system:" + body


@pytest.mark.parametrize(
    "text",
    [
        "\n" + SECRET_HEAD,
        "\n\n   \n" + SECRET_HEAD,
        _indented(SECRET_HEAD, "  "),
        "\n" + _indented(SECRET_HEAD, "    "),
    ],
    ids=["blank-line", "blank-lines", "indented", "blank-and-indented"],
)
def test_front_matter_after_blank_lines_or_indentation_is_never_prompt_text(
    tmp_path: Path, text: str
) -> None:
    prompty = parse_prompty(text, tmp_path, environ={})
    assert prompty.name == "leaky"
    assert prompty.definition.model.id == "gpt-4o"
    messages = prompty.render()
    assert [(m.role, m.text) for m in messages] == [("system", "You help.")]


def test_front_matter_indented_with_tabs_is_a_clear_error(tmp_path: Path) -> None:
    error = _load_error(tmp_path, _indented(SECRET_HEAD, "\t"))
    assert "front matter is not valid YAML" in str(error)
    assert "sk-front-matter-secret" not in str(error)


def test_errors_in_a_late_front_matter_give_the_file_line(tmp_path: Path) -> None:
    error = _load_error(tmp_path, "\n\n---\nname: x\nmodel: [unclosed\n---\nHi\n")
    assert error.line == 5
    unclosed = _load_error(tmp_path, "\n  ---\n  name: x\nHi\n")
    assert unclosed.line == 2 and "never closed" in str(unclosed)


def test_an_indented_dash_line_inside_the_yaml_does_not_close_it(tmp_path: Path) -> None:
    text = "---\nname: x\ndescription: |\n  one\n  ---\n  two\n---\nsystem:\nHi\n"
    prompty = parse_prompty(text, tmp_path, environ={})
    assert prompty.document.front_matter["description"] == "one\n---\ntwo"
