"""A protocol's readiness check is a plugin of its own (`pilothouse.readiness`), so that
`pilothouse models` and `/readyz` learn whether a model can answer without importing
its protocol's adapter; a protocol that declares none is asked through its adapter's
static `readiness`, else it gets the key check."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.models.readiness import READINESS, readiness
from tests.plugins.dist import make_distribution

PACKAGE = {
    "gauge_llm/__init__.py": """
        from pilothouse.models.providers import ProviderEntry

        ACME = ProviderEntry("acme", "acme", "http://127.0.0.1:9/v1", None, False, "none")
        BETA = ProviderEntry("beta", "beta", "http://127.0.0.1:9/v1", None, False, "none")
        GAMMA = ProviderEntry("gamma", "gamma", "http://127.0.0.1:9/v1", "GAMMA_API_KEY")
    """,
    # The acme adapter cannot be imported: readiness must not need it.
    "gauge_llm/adapter.py": "raise ImportError('the acme adapter was imported')\n",
    "gauge_llm/ready.py": """
        from pilothouse.models.readiness import Readiness

        def check(name, endpoint, settings):
            return Readiness(name == "up", f"acme {name} at {endpoint.base_url}")
    """,
    "gauge_llm/others.py": """
        from pilothouse.models.readiness import Readiness

        class BetaModel:
            def __init__(self, model_id, name, endpoint, settings):
                raise AssertionError("readiness made a model")

            @staticmethod
            def readiness(name, endpoint, settings):
                return Readiness(False, f"beta says {name} is asleep")

        class GammaModel(BetaModel):
            readiness = None
    """,
}


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_distribution(
        tmp_path / "site",
        "gauge-llm",
        entry_points={
            "pilothouse.protocols": {
                "acme": "gauge_llm.adapter:AcmeModel",
                "beta": "gauge_llm.others:BetaModel",
                "gamma": "gauge_llm.others:GammaModel",
            },
            "pilothouse.providers": {
                "acme": "gauge_llm:ACME",
                "beta": "gauge_llm:BETA",
                "gamma": "gauge_llm:GAMMA",
            },
            "pilothouse.readiness": {"acme": "gauge_llm.ready:check"},
        },
        modules=PACKAGE,
    )
    monkeypatch.syspath_prepend(str(root))


def settings(tmp_path: Path, environ: dict[str, str] | None = None) -> Settings:
    return Settings.from_sources(home=tmp_path, environ=environ or {})


@pytest.mark.usefixtures("acme")
def test_a_declared_check_answers_without_the_adapter(tmp_path: Path) -> None:
    up = readiness("acme:up", settings(tmp_path))
    down = readiness("acme:down", settings(tmp_path))
    assert (up.ready, up.detail) == (True, "acme up at http://127.0.0.1:9/v1")
    assert (down.ready, down.detail) == (False, "acme down at http://127.0.0.1:9/v1")
    assert "gauge_llm.adapter" not in sys.modules


@pytest.mark.usefixtures("acme")
def test_without_one_the_adapter_is_asked_else_the_key_is_checked(tmp_path: Path) -> None:
    beta = readiness("beta:m", settings(tmp_path))
    assert (beta.ready, beta.detail) == (False, "beta says m is asleep")
    gamma = readiness("gamma:m", settings(tmp_path))
    assert (gamma.ready, gamma.detail) == (False, "no key: set GAMMA_API_KEY")
    keyed = readiness("gamma:m", settings(tmp_path, {"GAMMA_API_KEY": "g-1"}))
    assert (keyed.ready, keyed.detail) == (True, "key present")


def test_every_builtin_protocol_declares_its_check() -> None:
    infos = {i.name: i for i in READINESS.infos()}
    assert set(infos) >= {"openai", "anthropic", "gemini", "local"}
    for name in ("openai", "anthropic", "gemini", "local"):
        assert infos[name].builtin and infos[name].error is None, infos[name]
