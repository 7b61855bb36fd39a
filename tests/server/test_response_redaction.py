"""Every HTTP answer of the server, and its log, has the secrets the settings know
masked, whatever produced them: here a model (not a protocol adapter, so nothing
masked it at the source) whose errors repeat a provider key from the environment."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from pilothouse.config import Settings
from pilothouse.errors import UnavailableError
from pilothouse.models import FunctionModel
from pilothouse.models.testing import BreakAfter
from pilothouse.server.app import create_app
from pilothouse.server.keys import KeyStore
from tests.server.conftest import make_key, running

SECRET = "sk-proj-echoed-by-a-proxy-0123456789"


def echoing_model(request: object) -> object:
    raise UnavailableError(f"proxy said: bad key {SECRET}", model="test:leaky")


def breaking_model(request: object) -> object:
    return BreakAfter("Partial answer", UnavailableError(f"dropped; key {SECRET}"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_sources(home=tmp_path / "home", environ={"VENDOR_API_KEY": SECRET})


def test_answers_and_logs_never_carry_a_known_secret(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings.home.mkdir()
    store = KeyStore(settings.database_path)
    key = make_key(store, "models")
    app = create_app(
        settings,
        keys=store,
        models={"leaky": FunctionModel(echoing_model), "breaking": FunctionModel(breaking_model)},
    )
    bodies: list[bytes] = []
    with running(app) as (base, _), httpx.Client(base_url=base, timeout=30) as client:
        headers = {"Authorization": f"Bearer {key}"}
        for model in ("leaky", "breaking"):
            for stream in (False, True):
                body = {
                    "model": model,
                    "stream": stream,
                    "messages": [{"role": "user", "content": "hi"}],
                }
                response = client.post("/v1/chat/completions", json=body, headers=headers)
                bodies.append(response.content)
                if not stream:
                    assert int(response.headers["content-length"]) == len(response.content)
                    json.loads(response.content)  # still valid JSON
    store.close()
    everything = b"\n".join(bodies)
    assert SECRET.encode() not in everything
    assert b"[REDACTED]" in everything  # the secret was there, and was masked
    assert SECRET not in caplog.text
