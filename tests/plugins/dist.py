"""Build a small third-party package in a test: its modules and a dist-info folder
whose entry points Pilothouse finds once the folder is on `sys.path` (or PYTHONPATH
for a `pilothouse` process)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path


def make_distribution(
    root: Path,
    name: str,
    *,
    version: str = "1.0.0",
    entry_points: Mapping[str, Mapping[str, str]],
    modules: Mapping[str, str] | None = None,
) -> Path:
    """Write package `name` under `root`: `modules` (relative path -> source, dedented)
    and `<name>-<version>.dist-info` with METADATA and entry_points.txt. Returns root."""
    root.mkdir(parents=True, exist_ok=True)
    for relative, source in (modules or {}).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    lines: list[str] = []
    for group, names in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{key} = {target}" for key, target in names.items())
        lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    return root
