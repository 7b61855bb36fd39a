"""Whether an embedded model can answer now: the runtime installed, the weights
verified or their parts installed (or a GGUF file at the path given): the readiness
check of the `local` protocol (`pilothouse.readiness`). It only looks: the runtime
(xllamacpp) is not imported, nor the weights read."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pilothouse.config import Settings
from pilothouse.errors import ModelNotAvailableError
from pilothouse.models.local.catalog import CATALOG, is_path_name, weights_path
from pilothouse.models.local.weights import check_gguf, is_verified, locate_parts
from pilothouse.models.providers import Endpoint
from pilothouse.models.readiness import Readiness


def weights_readiness(name: str, endpoint: Endpoint, settings: Settings) -> Readiness:
    """Whether `local:<name>` can answer now, or what to run first."""
    del endpoint  # the embedded runtime has no host
    if importlib.util.find_spec("xllamacpp") is None:
        return Readiness(
            False, "the local runtime is not installed: pip install 'pilothouse[local]'"
        )
    if is_path_name(name):
        try:
            path = check_gguf(Path(name))
        except ModelNotAvailableError as exc:
            return Readiness(False, exc.detail)
        return Readiness(True, f"GGUF file {path}")
    spec = CATALOG.get(name)
    if spec is None:
        known = ", ".join(f"local:{n}" for n in CATALOG)
        return Readiness(False, f"unknown embedded model; known: {known}")
    if is_verified(spec, settings.models_dir):
        return Readiness(True, f"weights verified at {weights_path(spec, settings.models_dir)}")
    try:
        locate_parts(spec)
    except ModelNotAvailableError:
        return Readiness(False, f"weights not installed: {spec.install_hint}")
    return Readiness(
        True,
        f"weights installed, assembled on first use (or now: pilothouse models pull local:{name})",
    )
