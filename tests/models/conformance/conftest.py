from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pilothouse.testing.conformance import HarnessSpec, VendorSubject

# Each module exposes harness_specs() -> list[HarnessSpec].
FAKE_MODULES = ("tests.fakes.openai_api", "tests.fakes.anthropic_api", "tests.fakes.gemini_api")


def _specs() -> list[HarnessSpec]:
    specs: list[HarnessSpec] = []
    for name in FAKE_MODULES:
        specs.extend(importlib.import_module(name).harness_specs())
    return specs


SPECS = {spec.provider: spec for spec in _specs()}


@pytest.fixture
async def vendor(provider: str, tmp_path: Path) -> AsyncIterator[VendorSubject]:
    async with VendorSubject.serve(SPECS[provider], tmp_path) as subject:
        yield subject
