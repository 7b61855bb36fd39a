"""The data directory: where it is, and the settings file inside it."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pilothouse.config import ProviderSettings, Settings, default_home
from pilothouse.errors import ConfigError
from pilothouse.storage.provider_keys import ProviderKeyStore
from pilothouse.util.suggest import did_you_mean


def load_settings(home: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `home/config.toml` (optional) and the environment.

    Errors name the file and the field (or the TOML line) that is wrong.
    """
    env = os.environ if environ is None else environ
    root = home if home is not None else default_home(env)
    path = root / "config.toml"
    data = None
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text: {exc}") from None
    try:
        settings = Settings.from_sources(home=root, file_data=data, environ=env)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {'; '.join(_problem(err) for err in exc.errors())}") from None
    settings.use_stored_keys(ProviderKeyStore(root).get)
    return settings


def _problem(error: Any) -> str:
    """`field.path: message`, with "did you mean" for a misspelt field."""
    loc = tuple(str(p) for p in error["loc"])
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = f"unknown field{did_you_mean(loc[-1], _fields_of(loc[:-1]))}"
    return f"{'.'.join(loc)}: {message}"


def _fields_of(table: tuple[str, ...]) -> list[str]:
    """The fields a config.toml table may hold: the top level, `[NAME]`, `[providers.X]`."""
    if not table:
        return list(Settings.model_fields)
    if table[0] == "providers" and len(table) == 2:
        return list(ProviderSettings.model_fields)
    field = Settings.model_fields.get(table[0]) if len(table) == 1 else None
    return list(getattr(field.annotation, "model_fields", {})) if field is not None else []
