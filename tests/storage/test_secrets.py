"""What a process knows to be secret, from its settings: environment variables named
like secrets, config.toml keys and secret headers, the Pilothouse key pattern."""

from __future__ import annotations

from pathlib import Path

from pilothouse.config import Settings
from pilothouse.storage import load_settings
from pilothouse.storage.secrets import process_redactor, redactor_for, share
from pilothouse.tracing import MASK

ENV = {
    "OPENAI_API_KEY": "sk-env-openai-123",
    "JIRA_TOKEN": "jira-env-token-456",
    "SN_PASSWORD": "sn-env-password-789",
    "MY_CLIENT_SECRET": "client-secret-000",
    "HOME": "/home/someone-long-enough",
    "PWD": "/work/current-folder",
    "SSH_AUTH_SOCK": "/tmp/ssh-agent.sock",
    "EDITOR": "vim-editor-long",
    "PAGER": "x",
}


def test_environment_secrets_are_known_by_name(tmp_path: Path) -> None:
    redactor = redactor_for(Settings.from_sources(home=tmp_path, environ=ENV))
    text = " ".join(ENV.values())
    masked = redactor.scrub_text(text)
    for name in ("OPENAI_API_KEY", "JIRA_TOKEN", "SN_PASSWORD", "MY_CLIENT_SECRET"):
        assert ENV[name] not in masked
    for kept in ("/home/someone-long-enough", "vim-editor-long", "/work/current-folder"):
        assert kept in masked
    assert "/tmp/ssh-agent.sock" in masked


def test_config_keys_secret_headers_and_named_variables(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[providers.inhouse]\npreset = "openai"\nbase_url = "https://llm.corp.example/v1"\n'
        'api_key = "sk-config-key-111"\nheaders = {Authorization = "Bearer hdr-token-222", '
        'X-Team = "platform-team"}\n'
        '[providers.other]\npreset = "openai"\napi_key_env = "WEIRDLY_NAMED"\n'
    )
    settings = load_settings(tmp_path, environ={"WEIRDLY_NAMED": "weird-var-key-333"})
    redactor = redactor_for(settings)
    assert redactor is redactor_for(settings)  # one per settings
    text = "sk-config-key-111 hdr-token-222 weird-var-key-333 platform-team"
    assert redactor.scrub_text(text) == f"{MASK} {MASK} {MASK} platform-team"
    assert redactor.scrub_text("ph-" + "Z" * 43) == MASK


def test_a_process_keeps_one_redactor_across_settings(tmp_path: Path) -> None:
    process = process_redactor({"HF_TOKEN": "hf-token-444444"})
    first = share(Settings.from_sources(home=tmp_path, environ={}), process)
    second = share(
        Settings.from_sources(home=tmp_path, environ={"X_API_KEY": "x-key-55555"}), process
    )
    assert redactor_for(first) is redactor_for(second) is process
    assert process.scrub_text("hf-token-444444 x-key-55555") == f"{MASK} {MASK}"


def test_the_database_password_is_a_secret(tmp_path: Path) -> None:
    """The password in PILOTHOUSE_DATABASE_URL (or [storage] url) is masked wherever it
    would leave the process; the rest of the URL stays readable."""
    url = "postgresql://pilothouse:db-pass-Xy12345@db.internal:5432/ph"
    redactor = redactor_for(
        Settings.from_sources(home=tmp_path, environ={"PILOTHOUSE_DATABASE_URL": url})
    )
    masked = redactor.scrub_text(f"cannot connect to {url}")
    assert "db-pass-Xy12345" not in masked and MASK in masked
    assert "db.internal:5432" in masked
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.toml").write_text(f'[storage]\nurl = "{url}"\n')
    from_file = redactor_for(load_settings(home=tmp_path / "other", environ={}))
    assert "db-pass-Xy12345" not in from_file.scrub_text(url)
