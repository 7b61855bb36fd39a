"""The real embedded model for the `real_model` tests: the Qwen2.5-Coder-0.5B GGUF
that `pilothouse models pull local:qwen2.5-coder-0.5b` assembled in the data directory
named by PILOTHOUSE_TEST_HOME (`make test` does both). Without it the tests are
skipped, or fail when PILOTHOUSE_REQUIRE_REAL_MODEL=1 (as in CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.models.local import LocalModel
from pilothouse.models.local.weights import CATALOG, is_verified, weights_path
from pilothouse.models.providers import resolve_endpoint

REAL_MODEL = "qwen2.5-coder-0.5b"


@pytest.fixture(scope="session")
def real_model() -> LocalModel:
    """A LocalModel on the real 0.5B weights, loaded once for the whole session."""
    home_env = os.environ.get("PILOTHOUSE_TEST_HOME")
    required = os.environ.get("PILOTHOUSE_REQUIRE_REAL_MODEL") == "1"
    spec = CATALOG[REAL_MODEL]
    problem = None
    if not home_env:
        problem = "PILOTHOUSE_TEST_HOME is not set"
    elif not is_verified(spec, Path(home_env) / "models"):
        problem = f"no verified {spec.filename} in {Path(home_env) / 'models'}"
    if problem is not None:
        message = (
            f"real-model tests need the assembled 0.5B weights ({problem}); run "
            f"`make test`, or PILOTHOUSE_HOME=DIR pilothouse models pull local:{REAL_MODEL} "
            "and set PILOTHOUSE_TEST_HOME=DIR"
        )
        if required:
            pytest.fail(message)
        pytest.skip(message)
    home = Path(home_env)  # type: ignore[arg-type]
    settings = Settings.from_sources(
        home=home, environ={}, file_data={"local": {"context_size": 2048, "parallel": 2}}
    )
    model = LocalModel(
        f"local:{REAL_MODEL}", REAL_MODEL, resolve_endpoint("local", settings), settings
    )
    # Load now (blocking) so no test pays for it and every test shares it.
    model.runtimes.get(weights_path(spec, settings.models_dir), settings.local)
    return model
