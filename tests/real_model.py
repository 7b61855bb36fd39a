"""Where the `real_model` tests find the embedded model's weights.

`make test` assembles the Qwen2.5-Coder-0.5B GGUF into the data directory named by
PILOTHOUSE_TEST_HOME. Without it the tests are skipped, or fail when
PILOTHOUSE_REQUIRE_REAL_MODEL=1 (as in CI), so they can never pass unseen.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pilothouse.models.local.catalog import CATALOG, weights_path
from pilothouse.models.local.weights import is_verified

REAL_MODEL = "qwen2.5-coder-0.5b"


def real_weights() -> Path:
    """The verified 0.5B GGUF, or skip (fail in CI) with what to run."""
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
    return weights_path(spec, Path(home_env) / "models")  # type: ignore[arg-type]
