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


# --- under pytest-xdist ---------------------------------------------------------------
# The runtime is loaded once per process (models/local/runtime.py: RUNTIMES), with one
# thread per physical core by default. Serially that is what a user gets; in workers,
# two workers prefilling at once on every core each would oversubscribe the CPU. Two
# ways out, measured side by side in benchmarks/README.md ("Test suite wall time"):
# `--dist loadgroup` runs every real-model test on one worker (the `xdist_group` below);
# otherwise each worker loads the runtime with one thread (`one_thread_per_worker`).
GROUP = "real_model"


def workers(config: pytest.Config) -> int:
    """How many pytest-xdist workers run the suite (0: none, a serial run)."""
    del config
    return int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))


def one_thread_per_worker(config: pytest.Config) -> None:
    """Load this worker's shared runtime with one thread before its first real-model
    test (every real-model test shares it: same file, one load per process)."""
    if workers(config) < 2 or getattr(config.option, "dist", "no") == "loadgroup":
        return
    from pilothouse.config import LocalSettings
    from pilothouse.models.local import RUNTIMES

    RUNTIMES.get(real_weights(), LocalSettings(threads=1))
