"""`pilothouse keys set PROVIDER`: provider keys kept in the OS keyring, or in a 0600
file with a warning where there is none; never in config.toml; used by the models."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from typer.testing import CliRunner

from pilothouse.cli import app
from pilothouse.storage import load_settings
from pilothouse.testing.wire import Reply

MODEL = "openai:gpt-4.1-mini"


class MemoryKeyring(KeyringBackend):
    """A real keyring backend (keyring's plugin interface) that keeps passwords in a
    dict, standing in for the Keychain or the Secret Service."""

    priority = 10  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.passwords.pop((service, username))


@pytest.fixture
def no_keyring():  # type: ignore[no-untyped-def]
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring():  # type: ignore[no-untyped-def]
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def invoke(home: Path, openai_fake):  # type: ignore[no-untyped-def]
    fake, url = openai_fake
    (home / "config.toml").write_text(f'[providers.openai]\nbase_url = "{url}"\n')
    runner = CliRunner()

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        environ = {"PILOTHOUSE_HOME": str(home), "OPENAI_API_KEY": "", "COLUMNS": "200"}
        return runner.invoke(app, list(args), input=input, env={**environ, **(env or {})})

    run.fake = fake  # type: ignore[attr-defined]
    return run


def test_without_a_keyring_the_key_goes_to_a_private_file(invoke, home: Path, no_keyring) -> None:  # type: ignore[no-untyped-def]
    stored = invoke("keys", "set", "openai", input="sk-live-stored-1234\n")
    assert stored.exit_code == 0, stored.output
    assert "warning: no system keyring" in stored.stderr
    path = home / "provider-keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "sk-live-stored-1234" not in (home / "config.toml").read_text()
    assert "sk-live-stored-1234" not in stored.output

    invoke.fake.push(Reply("Hello from the stored key."))
    asked = invoke("ask", "Hi", "-m", MODEL, "-q")
    assert asked.exit_code == 0, asked.output
    assert invoke.fake.headers[-1]["authorization"] == "Bearer sk-live-stored-1234"

    listed = invoke("keys", "providers", "--json")
    rows = {r["provider"]: r for r in map(json.loads, listed.stdout.splitlines())}
    assert rows["openai"]["key"] == "provider-keys.json"
    assert rows["anthropic"]["key"] is None
    assert "sk-live-stored" not in listed.stdout

    # The environment variable wins over the stored key.
    invoke.fake.push(Reply("From the variable."))
    from_env = invoke("ask", "Hi", "-m", MODEL, "-q", env={"OPENAI_API_KEY": "sk-live-env"})
    assert from_env.exit_code == 0
    assert invoke.fake.headers[-1]["authorization"] == "Bearer sk-live-env"

    assert invoke("keys", "unset", "openai").exit_code == 0
    assert load_settings(home, {}).api_key("openai", "OPENAI_API_KEY") is None
    again = invoke("keys", "unset", "openai")
    assert again.exit_code == 2 and "no stored key" in again.stderr


def test_with_a_keyring_the_key_is_kept_there(invoke, home: Path, memory_keyring) -> None:  # type: ignore[no-untyped-def]
    stored = invoke("keys", "set", "openai", input="sk-in-keyring\n")
    assert stored.exit_code == 0, stored.output
    assert "keyring" in stored.stderr and "warning" not in stored.stderr
    assert memory_keyring.passwords == {("pilothouse", "openai"): "sk-in-keyring"}
    assert "sk-in-keyring" not in (home / "provider-keys.json").read_text()
    key = load_settings(home, {}).api_key("openai", "OPENAI_API_KEY")
    assert key is not None and key.get_secret_value() == "sk-in-keyring"
    assert invoke("keys", "unset", "openai").exit_code == 0
    assert memory_keyring.passwords == {}


def test_an_unknown_provider_is_refused_with_a_suggestion(invoke, no_keyring) -> None:  # type: ignore[no-untyped-def]
    result = invoke("keys", "set", "opneai", input="sk-x\n")
    assert result.exit_code == 2
    assert "did you mean 'openai'?" in result.stderr


def test_keys_help_separates_server_keys_from_provider_keys() -> None:
    text = CliRunner().invoke(app, ["keys", "--help"], env={"COLUMNS": "200"}).output
    assert "Server API keys" in text and "Provider keys" in text
    server, provider = text.index("Server API keys"), text.index("Provider keys (used")
    assert server < text.index("│ create ") < provider < text.index("│ set ")
