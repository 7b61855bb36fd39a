"""The real embedded model for the `real_model` tests (see tests/real_model.py)."""

from __future__ import annotations

import pytest

from pilothouse.config import Settings
from pilothouse.models.local import LocalModel
from pilothouse.models.providers import resolve_endpoint
from tests.real_model import REAL_MODEL, real_weights


@pytest.fixture(scope="session")
def real_model() -> LocalModel:
    """A LocalModel on the real 0.5B weights, loaded once for the whole session."""
    gguf = real_weights()
    home = gguf.parent.parent
    settings = Settings.from_sources(
        home=home, environ={}, file_data={"local": {"context_size": 2048, "parallel": 2}}
    )
    model = LocalModel(
        f"local:{REAL_MODEL}", REAL_MODEL, resolve_endpoint("local", settings), settings
    )
    # Load now (blocking) so no test pays for it and every test shares it.
    model.runtimes.get(gguf, settings.local)
    return model
