"""Settings: the data directory, config.toml, keys that never show."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.config import Settings, default_home
from pilothouse.errors import ConfigError
from pilothouse.storage import load_settings


def test_home_comes_from_the_environment(tmp_path: Path) -> None:
    assert default_home({"PILOTHOUSE_HOME": str(tmp_path)}) == tmp_path.resolve()
    assert load_settings(environ={"PILOTHOUSE_HOME": str(tmp_path)}).home == tmp_path.resolve()


def test_default_home_is_per_user_when_unset() -> None:
    home = default_home({})
    assert home.name == "pilothouse"
    assert home.is_absolute()


def test_config_file_overrides_providers_and_default_model(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'default_model = "openai:gpt-4.1-mini"\n'
        "[providers.openai]\n"
        'base_url = "http://127.0.0.1:9/v1"\n'
        'api_key_env = "MY_KEY"\n'
    )
    settings = load_settings(tmp_path, environ={"MY_KEY": "sk-from-env"})
    assert settings.default_model == "openai:gpt-4.1-mini"
    assert settings.provider("openai").base_url == "http://127.0.0.1:9/v1"
    key = settings.api_key("openai", "OPENAI_API_KEY")
    assert key is not None and key.get_secret_value() == "sk-from-env"


def test_keys_never_show_in_repr_or_dump(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[providers.openai]\napi_key = "sk-secret-999"\n')
    settings = load_settings(tmp_path, environ={"ANTHROPIC_API_KEY": "sk-ant-777"})
    text = repr(settings) + str(settings) + settings.model_dump_json()
    assert "sk-secret-999" not in text
    assert "sk-ant-777" not in text
    assert settings.api_key("openai", None).get_secret_value() == "sk-secret-999"  # type: ignore[union-attr]


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("default_model = \n")
    with pytest.raises(ConfigError, match=r"config\.toml: not valid TOML"):
        load_settings(tmp_path, environ={})


def test_unknown_field_names_the_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[providers.openai]\nbase_ur = 'x'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, environ={})
    assert "config.toml" in str(info.value)
    assert "providers.openai.base_ur" in str(info.value)


def test_environment_can_choose_the_default_model(tmp_path: Path) -> None:
    settings = Settings.from_sources(
        home=tmp_path, environ={"PILOTHOUSE_DEFAULT_MODEL": "anthropic:claude-haiku-4-5"}
    )
    assert settings.default_model == "anthropic:claude-haiku-4-5"
