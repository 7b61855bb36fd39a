"""`${env:...}` and `${file:...}` references and their sandboxing rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pilothouse.copilot.prompty import PromptyReferenceError, load_prompty, parse_prompty

A_HEAD = "---\nname: t\nmodel:\n  configuration:\n    type: openai\n    model: {model}\n---\nHi\n"
C_HEAD = "---\nname: t\nmodel:\n  id: {model}\n  provider: openai\n---\nHi\n"


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- env ----------------------------------------------------------------------------


def test_env_set_is_used_in_every_generation(tmp_path: Path) -> None:
    env = {"MODEL": "gpt-4o"}
    for head in (A_HEAD, C_HEAD):
        prompty = parse_prompty(head.format(model="${env:MODEL}"), tmp_path, environ=env)
        assert prompty.definition.model.id == "gpt-4o"


def test_env_unset_in_generation_a_keeps_the_literal_text(tmp_path: Path) -> None:
    prompty = parse_prompty(A_HEAD.format(model="${env:NOT_SET_ANYWHERE}"), tmp_path, environ={})
    assert prompty.definition.model.id == "${env:NOT_SET_ANYWHERE}"


def test_env_unset_in_generation_c_fails_naming_variable_file_line_and_field(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, "p.prompty", C_HEAD.format(model="${env:NOT_SET_ANYWHERE}"))
    with pytest.raises(PromptyReferenceError) as info:
        load_prompty(path, environ={})
    message = str(info.value)
    assert "NOT_SET_ANYWHERE" in message
    assert f"{path}:4: model.id:" in message
    assert info.value.line == 4 and info.value.field == "model.id"


def test_env_unset_in_generation_b_fails(tmp_path: Path) -> None:
    text = "---\nmodel:\n  id: ${env:NOPE}\n  connection:\n    type: openai\n---\nHi\n"
    with pytest.raises(PromptyReferenceError, match="NOPE"):
        parse_prompty(text, tmp_path, environ={})


def test_env_default_is_used_when_unset_and_ignored_when_set(tmp_path: Path) -> None:
    text = C_HEAD.format(model="${env:CHAT_MODEL:gpt-4.1-mini}")
    assert parse_prompty(text, tmp_path, environ={}).definition.model.id == "gpt-4.1-mini"
    set_env = {"CHAT_MODEL": "gpt-4o"}
    assert parse_prompty(text, tmp_path, environ=set_env).definition.model.id == "gpt-4o"


def test_env_default_may_contain_colons(tmp_path: Path) -> None:
    text = (
        "---\nmodel:\n  id: m\n  provider: openai\n  connection:\n    kind: key\n"
        "    endpoint: ${env:EP:https://api.example.com:8443/v1}\n---\nHi\n"
    )
    connection = parse_prompty(text, tmp_path, environ={}).definition.model.connection
    assert connection is not None
    assert connection.resolve({}).endpoint == "https://api.example.com:8443/v1"


def test_text_around_a_reference_is_not_a_reference(tmp_path: Path) -> None:
    text = "---\nname: t\ndescription: uses ${env:X} inline\nmodel: m\n---\nHi\n"
    prompty = parse_prompty(text, tmp_path, environ={"X": "value"})
    assert prompty.definition.description == "uses ${env:X} inline"


def test_unset_env_in_a_b_or_c_connection_fails_the_load_naming_file_line_and_field(
    tmp_path: Path,
) -> None:
    c = (
        "---\nmodel:\n  id: m\n  provider: openai\n  connection:\n    kind: key\n"
        "    apiKey: ${env:MISSING_KEY}\n---\nHi\n"
    )
    b = (
        "---\nid: b\nmodel:\n  api: chat\n  connection:\n    type: azure_openai\n"
        "    azure_endpoint: ${env:MISSING_ENDPOINT}\n---\nHi\n"
    )
    file = tmp_path / "c.prompty"
    file.write_text(c, encoding="utf-8")
    with pytest.raises(PromptyReferenceError, match="MISSING_KEY") as info:
        load_prompty(file, environ={})
    assert info.value.path == file and info.value.line == 5
    assert str(info.value).startswith(f"{file}:5: connection.api_key: ")
    with pytest.raises(PromptyReferenceError, match="MISSING_ENDPOINT is not set"):
        parse_prompty(b, tmp_path, environ={})
    # Generation A keeps the literal text, as Prompt flow did.
    a = (
        "---\nmodel:\n  configuration:\n    type: openai\n    api_key: ${env:MISSING_KEY}\n"
        "---\nHi\n"
    )
    assert parse_prompty(a, tmp_path, environ={}).definition.model.connection is not None


def test_deferred_connections_resolve_on_demand_so_a_missing_key_does_not_block_loading(
    tmp_path: Path,
) -> None:
    text = (
        "---\nmodel:\n  id: m\n  provider: openai\n  connection:\n    kind: key\n"
        "    apiKey: ${env:MISSING_KEY}\n---\nHi\n"
    )
    prompty = parse_prompty(text, tmp_path, environ={}, defer_connections=True)  # loads
    connection = prompty.definition.model.connection
    assert connection is not None
    with pytest.raises(PromptyReferenceError, match="MISSING_KEY") as info:
        connection.resolve({})
    assert info.value.field == "connection.api_key"
    resolved = connection.resolve({"MISSING_KEY": "sk-live"})
    assert resolved.api_key is not None
    assert resolved.api_key.get_secret_value() == "sk-live"
    assert "sk-live" not in repr(resolved)


def test_generation_a_connection_resolves_at_load_and_masks_the_key(tmp_path: Path) -> None:
    text = (
        "---\nmodel:\n  configuration:\n    type: azure_openai\n    azure_deployment: d\n"
        "    api_key: ${env:AOAI_KEY}\n---\nHi\n"
    )
    prompty = parse_prompty(text, tmp_path, environ={"AOAI_KEY": "secret-value-123"})
    connection = prompty.definition.model.connection
    assert connection is not None and connection.api_key is not None
    assert connection.api_key.get_secret_value() == "secret-value-123"
    assert "secret-value-123" not in repr(prompty.definition)


def test_environ_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PILOTHOUSE_TEST_MODEL", "from-os-environ")
    text = C_HEAD.format(model="${env:PILOTHOUSE_TEST_MODEL}")
    assert parse_prompty(text, tmp_path).definition.model.id == "from-os-environ"


# --- file ---------------------------------------------------------------------------


def test_file_references_parse_json_and_yaml_and_read_text(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    _write(tmp_path, "shared/sample.json", '{"question": "What is MFA?", "n": 3}')
    _write(tmp_path, "shared/meta.yaml", "owner: it\ntags: [a, b]\n")
    _write(tmp_path, "shared/desc.txt", "Long description\nover two lines.\n")
    text = (
        "---\nname: t\ndescription: ${file:shared/desc.txt}\n"
        "model:\n  configuration:\n    type: openai\n    model: m\n"
        "sample: ${file:shared/sample.json}\nversion: ${file:shared/meta.yaml}\n---\nHi\n"
    )
    prompty = load_prompty(_write(tmp_path, "p.prompty", text))
    assert prompty.definition.description == "Long description\nover two lines.\n"
    assert prompty.definition.sample == {"question": "What is MFA?", "n": 3}
    assert prompty.definition.metadata["version"] == {"owner": "it", "tags": ["a", "b"]}
    # The document keeps the reference as written, so the file round-trips.
    assert prompty.document.front_matter["sample"] == "${file:shared/sample.json}"


@pytest.mark.parametrize(
    "reference",
    ["/etc/passwd", "C:\\Windows\\win.ini", "~/secrets.json"],
)
def test_absolute_file_reference_is_refused(tmp_path: Path, reference: str) -> None:
    path = _write(tmp_path, "p.prompty", f"---\nmodel: m\nsample: ${{file:{reference}}}\n---\nHi\n")
    with pytest.raises(PromptyReferenceError) as info:
        load_prompty(path)
    assert "relative to the Prompty's folder" in str(info.value)
    assert info.value.line == 3 and info.value.field == "sample"


@pytest.mark.parametrize("reference", ["../outside.json", "sub/../../outside.json", "..\\x.json"])
def test_dot_dot_file_reference_is_refused(tmp_path: Path, reference: str) -> None:
    folder = tmp_path / "prompts"
    (folder / "sub").mkdir(parents=True)
    _write(tmp_path, "outside.json", "{}")
    path = _write(folder, "p.prompty", f"---\nmodel: m\nsample: ${{file:{reference}}}\n---\nHi\n")
    with pytest.raises(PromptyReferenceError, match=r"'\.\.'"):
        load_prompty(path)


def test_symlink_escaping_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    folder.mkdir()
    secret = _write(tmp_path, "secret.json", '{"password": "x"}')
    os.symlink(secret, folder / "innocent.json")
    path = _write(folder, "p.prompty", "---\nmodel: m\nsample: ${file:innocent.json}\n---\nHi\n")
    with pytest.raises(PromptyReferenceError, match="symlink that leads outside"):
        load_prompty(path)


def test_symlinked_directory_escaping_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    folder.mkdir()
    (tmp_path / "elsewhere").mkdir()
    _write(tmp_path / "elsewhere", "data.json", "{}")
    os.symlink(tmp_path / "elsewhere", folder / "linked")
    path = _write(folder, "p.prompty", "---\nmodel: m\nsample: ${file:linked/data.json}\n---\nHi\n")
    with pytest.raises(PromptyReferenceError, match="symlink"):
        load_prompty(path)


def test_symlink_inside_the_folder_is_allowed(tmp_path: Path) -> None:
    _write(tmp_path, "real.json", '{"ok": true}')
    os.symlink(tmp_path / "real.json", tmp_path / "alias.json")
    path = _write(tmp_path, "p.prompty", "---\nmodel: m\nsample: ${file:alias.json}\n---\nHi\n")
    assert load_prompty(path).document.front_matter["sample"] == "${file:alias.json}"


def test_missing_file_and_unparseable_json_say_so(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.prompty", "---\nmodel: m\ntools: ${file:tools.json}\n---\nHi\n")
    with pytest.raises(PromptyReferenceError, match="does not exist"):
        load_prompty(path)
    _write(tmp_path, "tools.json", "[{not json")
    with pytest.raises(PromptyReferenceError, match="could not be parsed") as info:
        load_prompty(path)
    assert info.value.field == "tools" and info.value.line == 3
