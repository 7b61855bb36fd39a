"""The upload unpacker on its own: which names are refused, and the top folder rule."""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath

import pytest

from pilothouse.server.management.uploads import (
    UnsafeUploadError,
    UploadLimits,
    UploadTooLargeError,
    safe_relative_path,
    strip_common_folder,
    unpack_zip,
    write_files,
)

from .conftest import zip_bytes


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/abs/file.md",
        "../up.md",
        "a/../../up.md",
        "a\\b.md",
        "C:/x.md",
        "bad\x00name.md",
        "tab\tname.md",
        "x" * 256 + ".md",
        "/".join(["d"] * 20) + "/f.md",
        "./..",
    ],
)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(UnsafeUploadError):
        safe_relative_path(name)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("copilot.yaml", "copilot.yaml"),
        ("prompts/a.prompty", "prompts/a.prompty"),
        ("./prompts//a.prompty", "prompts/a.prompty"),
        ("dir with spaces/ünïcode.md", "dir with spaces/ünïcode.md"),
    ],
)
def test_safe_names(name: str, expected: str) -> None:
    assert safe_relative_path(name) == PurePosixPath(expected)


def test_folders_above_copilot_yaml_are_dropped_when_everything_is_in_them() -> None:
    paths = [PurePosixPath(p) for p in ("desk/copilot.yaml", "desk/tools.py")]
    assert strip_common_folder(paths, "copilot.yaml") == 1
    flat = [PurePosixPath(p) for p in ("copilot.yaml", "desk/tools.py")]
    assert strip_common_folder(flat, "copilot.yaml") == 0
    two = [PurePosixPath(p) for p in ("a/copilot.yaml", "b/tools.py")]
    assert strip_common_folder(two, "copilot.yaml") == 0
    deep = [PurePosixPath(p) for p in ("ex/desk/copilot.yaml", "ex/desk/k/a.md")]
    assert strip_common_folder(deep, "copilot.yaml") == 2
    nested = [PurePosixPath(p) for p in ("desk/copilot.yaml", "desk/evals/copilot.yaml")]
    assert strip_common_folder(nested, "copilot.yaml") == 1
    none = [PurePosixPath(p) for p in ("desk/readme.md",)]
    assert strip_common_folder(none, "copilot.yaml") == 0


def test_case_insensitive_duplicates_are_refused(tmp_path: Path) -> None:
    files = [("Tools.py", io.BytesIO(b"a")), ("tools.py", io.BytesIO(b"b"))]
    with pytest.raises(UnsafeUploadError, match="twice"):
        write_files(files, tmp_path, UploadLimits(), "copilot.yaml")


def test_a_file_and_a_folder_of_the_same_name_are_refused(tmp_path: Path) -> None:
    files = [("a", io.BytesIO(b"file")), ("a/b.md", io.BytesIO(b"x"))]
    with pytest.raises(UnsafeUploadError):
        write_files(files, tmp_path, UploadLimits(), "copilot.yaml")


def test_zip_sizes_are_counted_while_unpacking(tmp_path: Path) -> None:
    archive = io.BytesIO(zip_bytes({"copilot.yaml": "name: x\n", "big.md": "a" * 10_000}))
    with pytest.raises(UploadTooLargeError):
        unpack_zip(archive, tmp_path, UploadLimits(max_file_bytes=5_000), "copilot.yaml")
