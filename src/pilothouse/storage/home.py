"""The data directory: where it is, and the settings file inside it."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from pilothouse.config import Settings, default_home
from pilothouse.errors import ConfigError


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
        return Settings.from_sources(home=root, file_data=data, environ=env)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
