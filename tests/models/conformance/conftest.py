from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest

from tests.fakes.server import serve_app
from tests.models.conformance.harness import Harness, HarnessSpec

# Each module exposes harness_specs() -> list[HarnessSpec].
FAKE_MODULES = ("tests.fakes.openai_api", "tests.fakes.anthropic_api", "tests.fakes.gemini_api")


def _specs() -> list[HarnessSpec]:
    specs: list[HarnessSpec] = []
    for name in FAKE_MODULES:
        specs.extend(importlib.import_module(name).harness_specs())
    return specs


@pytest.fixture(params=_specs(), ids=lambda spec: spec.provider)
def harness(request: pytest.FixtureRequest, tmp_path) -> Iterator[Harness]:  # type: ignore[no-untyped-def]
    spec: HarnessSpec = request.param
    fake = spec.make_fake()
    with serve_app(fake.app) as url:
        yield Harness(spec, fake, url, tmp_path)
