"""`pilothouse runs prune` as a real process over a data directory holding old and
recent runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.cli.retention import parse_duration
from pilothouse.storage.traces import TraceStore
from tests.cli.conftest import Run
from tests.storage.aged_runs import days_ago, record_orphan, record_run


def seed(home: Path) -> dict[str, str]:
    """Runs that ended 40 days, 20 days and 2 hours ago (3 spans each), and a runless
    trace of one span 50 days old."""
    with TraceStore(home / "pilothouse.db") as store:
        return {
            "40d": record_run(store, days_ago(40), days_ago(40) + 1),
            "20d": record_run(store, days_ago(20), days_ago(20) + 1),
            "2h": record_run(store, days_ago(2 / 24), days_ago(2 / 24) + 1),
            "orphan": record_orphan(store, days_ago(50)),
        }


def stored(home: Path) -> set[str]:
    with TraceStore(home / "pilothouse.db") as store:
        return {r.run_id for r in store.list_runs(limit=100)}


def test_prune_older_than_deletes_old_runs_and_says_so(cli: Run, home: Path) -> None:
    runs = seed(home)
    result = cli("runs", "prune", "--older-than", "30d")
    assert result.returncode == 0, result.stderr
    assert "Deleted 1 run and 4 spans: runs older than 30d, ended before " in result.stdout
    assert stored(home) == {runs["20d"], runs["2h"]}

    hours = cli("runs", "prune", "--older-than", "3h")
    assert hours.returncode == 0, hours.stderr
    assert "Deleted 1 run and 3 spans" in hours.stdout
    assert stored(home) == {runs["2h"]}
    listing = cli("runs")
    assert runs["2h"][:12] in listing.stdout and runs["20d"][:12] not in listing.stdout


def test_dry_run_only_counts(cli: Run, home: Path) -> None:
    runs = seed(home)
    result = cli("runs", "prune", "--older-than", "12h", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "Would delete 2 runs and 7 spans" in result.stdout and "(dry run)" in result.stdout
    assert stored(home) == set(runs.values()) - {runs["orphan"]}


def test_the_default_comes_from_keep_days(cli: Run, home: Path) -> None:
    runs = seed(home)
    (home / "config.toml").write_text("[traces]\nkeep_days = 10\n")
    result = cli("runs", "prune")
    assert result.returncode == 0, result.stderr
    assert "Deleted 2 runs and 7 spans: runs older than 10 days ([traces] keep_days)" in (
        result.stdout
    )
    assert stored(home) == {runs["2h"]}


def test_keep_days_zero_keeps_everything_and_says_so(cli: Run, home: Path) -> None:
    runs = seed(home)
    (home / "config.toml").write_text("[traces]\nkeep_days = 0\n")
    result = cli("runs", "prune")
    assert result.returncode == 0, result.stderr
    assert "kept forever ([traces] keep_days = 0" in result.stdout
    assert "--older-than" in result.stdout
    assert len(stored(home)) == 3
    # an explicit duration still prunes
    assert cli("runs", "prune", "--older-than", "30d").returncode == 0
    assert runs["40d"] not in stored(home)


def test_a_bad_duration_names_the_flag_and_the_forms(cli: Run, home: Path) -> None:
    seed(home)
    for value in ("30x", "0d"):
        result = cli("runs", "prune", "--older-than", value)
        assert result.returncode == 2
        message = " ".join(result.stderr.replace("│", " ").split())
        assert f"Invalid value for '--older-than': '{value}'" in message
        assert "30d" in message
    assert len(stored(home)) == 3  # nothing deleted


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86_400), ("12h", 12 * 3600), ("90m", 90 * 60), ("1.5D", 1.5 * 86_400),
     (" 2h ", 7200)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["30", "30x", "d", "-3d", "1.d", "0d", "0.0h", "30 days", "", "36501d", "1" + "0" * 400 + "d"],
)
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="30d"):
        parse_duration(text)


def test_prune_on_a_fresh_data_directory_creates_nothing(cli: Run, home: Path) -> None:
    result = cli("runs", "prune", "--older-than", "1d")
    assert result.returncode == 0, result.stderr
    assert "No runs recorded yet" in result.stdout
    assert not (home / "pilothouse.db").exists()


def test_a_bad_keep_days_setting_is_a_clear_error(cli: Run, home: Path) -> None:
    (home / "config.toml").write_text("[traces]\nkeep_days = -1\n")
    result = cli("runs", "prune")
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "config.toml" in message and "traces.keep_days" in message
    assert "0 keeps traces forever" in message
