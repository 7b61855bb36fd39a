"""Which Prompty generation (A, B or C, see generations.py) a front matter is written in.

Detection follows the spec: `model.configuration` means A, `model.connection.type`
means B, `model.connection.kind` or `model.provider` means C. Files that say none of
these are told apart by their other keys (see `detect_generation`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .definition import Generation


def detect_generation(front_matter: Mapping[str, Any], fence: str | None) -> Generation:
    """Which generation a front matter is written in.

    The spec's rules first (`model.configuration` -> A, `model.connection.type` -> B,
    `model.connection.kind` or `model.provider` -> C); then, for files that say none of
    those: a bare-string model, a `+++` fence or no front matter, `kind` on a property,
    or `inputSchema`/`outputSchema`/`displayName` mean C; `$schema`, `id`, a string
    `template.format`, or `model.api` with a top-level `tools` or `metadata` mean B;
    `model.parameters`, `model.api`, `sample`, or properties with `type` mean A; anything
    else is read as C (the current draft, which ignores unknown keys).
    """
    model = front_matter.get("model")
    if isinstance(model, Mapping):
        if "configuration" in model:
            return "A"
        connection = model.get("connection")
        if isinstance(connection, Mapping):
            if "type" in connection:
                return "B"
            if "kind" in connection:
                return "C"
        if "provider" in model:
            return "C"
    if isinstance(model, str) or fence == "+++" or fence is None:
        return "C"
    if any(key in front_matter for key in ("inputSchema", "outputSchema", "displayName")):
        return "C"
    if _properties_use(front_matter, "kind"):
        return "C"
    template = front_matter.get("template")
    if (
        "$schema" in front_matter
        or "id" in front_matter
        or (isinstance(template, Mapping) and isinstance(template.get("format"), str))
    ):
        return "B"
    if (
        isinstance(model, Mapping)
        and "api" in model
        and ("tools" in front_matter or "metadata" in front_matter)
    ):
        return "B"  # `api` (C writes apiType), and A has no top-level tools or metadata
    if isinstance(model, Mapping) and ("parameters" in model or "api" in model):
        return "A"
    if "sample" in front_matter or _properties_use(front_matter, "type"):
        return "A"
    return "C"


def _properties_use(front_matter: Mapping[str, Any], key: str) -> bool:
    for section in ("inputs", "outputs"):
        props = front_matter.get(section)
        values: list[Any] = []
        if isinstance(props, Mapping):
            values = list(props.values())
        elif isinstance(props, list):
            values = props
        if any(isinstance(v, Mapping) and key in v for v in values):
            return True
    return False
