"""Shared by every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pilothouse.models.breaker import process_board


@pytest.fixture(autouse=True)
def _fresh_process_breakers() -> Iterator[None]:
    """Each test starts with no breaker state: the process-wide board would otherwise
    carry one test's failures into the next."""
    process_board().clear()
    yield
    process_board().clear()
