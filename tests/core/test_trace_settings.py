"""`[traces]` in config.toml: how long runs are kept, validated with a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.config import Settings, TraceSettings
from pilothouse.errors import ConfigError
from pilothouse.storage import load_settings


def test_runs_are_kept_30_days_by_default(tmp_path: Path) -> None:
    assert load_settings(tmp_path, environ={}).traces.keep_days == 30
    assert Settings.from_sources(home=tmp_path, environ={}).traces == TraceSettings()


@pytest.mark.parametrize(("text", "days"), [("0", 0.0), ("7", 7.0), ("0.5", 0.5)])
def test_keep_days_from_the_config_file(tmp_path: Path, text: str, days: float) -> None:
    (tmp_path / "config.toml").write_text(f"[traces]\nkeep_days = {text}\n")
    assert load_settings(tmp_path, environ={}).traces.keep_days == days


@pytest.mark.parametrize("text", ["-1", "-0.5", '"30d"', "true", "nan", "inf", "[30]"])
def test_a_bad_keep_days_names_the_file_the_field_and_the_rule(tmp_path: Path, text: str) -> None:
    (tmp_path / "config.toml").write_text(f"[traces]\nkeep_days = {text}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, environ={})
    message = str(info.value)
    assert "config.toml" in message and "traces.keep_days" in message
    assert "a number of days, 0 or more (0 keeps traces forever)" in message


def test_unknown_keys_in_traces_are_refused(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[traces]\nkeep_day = 7\n")
    with pytest.raises(ConfigError, match=r"traces\.keep_day"):
        load_settings(tmp_path, environ={})
