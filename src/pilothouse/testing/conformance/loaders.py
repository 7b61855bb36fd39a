"""The document-loader suite: a loader reads a sample of its format into structured
blocks, and every kind of bad input becomes a clear `LoadError` naming the file,
never another exception, never silence.

    subject = LoaderSubject(LOADER, sample=b"...", expect_text="first paragraph")
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import get_args

from pilothouse.knowledge.documents import BlockKind, Document
from pilothouse.knowledge.errors import LoadError
from pilothouse.knowledge.loaders import Loader, load_file, loader_for, parse_bytes
from pilothouse.testing.conformance.suite import Suite, expect

LOADERS: Suite[LoaderSubject] = Suite(
    "document loaders", "a sample read into blocks; bad bytes refused with a clear error"
)

INSTALLED = "installed"  # the loader is registered (its package installed): suffixes route to it
BINARY = "binary"  # the format is binary: text-like junk must be refused too
_BLOCK_KINDS = frozenset(get_args(BlockKind))


@dataclass
class LoaderSubject:
    """A loader with a valid `sample` of its format (and text the sample holds)."""

    loader: Loader
    sample: bytes
    expect_text: str = ""
    capabilities: frozenset[str] = field(default_factory=lambda: frozenset({INSTALLED}))

    @property
    def suffix(self) -> str:
        return self.loader.suffixes[0]

    def load(self, data: bytes, name: str = "sample") -> Document:
        """`data` written to a file named `name` + the loader's suffix, then loaded the
        way ingestion loads it (`load_file`)."""
        with TemporaryDirectory() as folder:
            path = Path(folder) / f"{name}{self.suffix}"
            path.write_bytes(data)
            if INSTALLED in self.capabilities:
                return load_file(path, source=path.name)
            title, blocks = parse_bytes(data, self.loader, source=path.name)
            return Document(
                path.name, title or name, self.loader.kind, 0.0, len(data), "", tuple(blocks)
            )

    def refuse(self, data: bytes, why: str) -> None:
        """`data` must give a `LoadError` that names the file and says something."""
        with expect(LoadError) as caught:
            self.load(data, name="bad")
        error = caught.value
        assert error is not None
        assert f"bad{self.suffix}" in str(error), f"{why}: the error does not name the file"
        assert len(error.reason.strip()) >= 8, f"{why}: the reason says nothing: {error.reason!r}"


@LOADERS.check()
async def check_reads_its_sample_into_blocks(subject: LoaderSubject) -> None:
    """The sample becomes a document of the loader's kind with non-empty blocks of
    known kinds (headings with a level, pages counted from 1)."""
    document = subject.load(subject.sample)
    assert document.kind == subject.loader.kind
    assert document.blocks, "no blocks"
    for block in document.blocks:
        assert block.kind in _BLOCK_KINDS, f"unknown block kind {block.kind!r}"
        assert block.text.strip(), "an empty block"
        if block.kind == "heading":
            assert block.level >= 1, "a heading without a level"
        if block.page is not None:
            assert block.page >= 1, "pages count from 1"
    if subject.expect_text:
        assert subject.expect_text in document.text, f"{subject.expect_text!r} was not read"


@LOADERS.check()
async def check_reads_the_same_bytes_the_same_way(subject: LoaderSubject) -> None:
    """Loading twice gives the same title and blocks (indexes stay stable)."""
    first, second = subject.load(subject.sample), subject.load(subject.sample)
    assert (first.title, first.blocks) == (second.title, second.blocks)


@LOADERS.check()
async def check_binary_junk_is_refused_with_a_clear_error(subject: LoaderSubject) -> None:
    """Random bytes (with NULs and control bytes) are a `LoadError` naming the file."""
    junk = random.Random(7).randbytes(4096)
    subject.refuse(b"\x00\x01\xff\xfe" + junk, "random bytes")


@LOADERS.check()
async def check_damaged_samples_are_read_or_refused_cleanly(subject: LoaderSubject) -> None:
    """A truncated or corrupted sample is either read or refused with a `LoadError`:
    never another exception."""
    sample = subject.sample
    rng = random.Random(11)
    corrupted = bytearray(sample)
    for _ in range(max(1, len(sample) // 50)):
        corrupted[rng.randrange(len(corrupted))] = rng.randrange(256)
    for name, data in (
        ("truncated", sample[: len(sample) // 2]),
        ("corrupted", bytes(corrupted)),
        ("no bytes", b""),
    ):
        try:
            subject.load(data)
        except LoadError as error:
            assert error.reason.strip(), f"{name}: an empty reason"


@LOADERS.check(BINARY)
async def check_text_is_refused_by_a_binary_format(subject: LoaderSubject) -> None:
    """Plain text given to a binary format is refused, not read as garbage."""
    subject.refuse(b"just some plain text, not this format at all\n" * 20, "plain text")


@LOADERS.check(INSTALLED)
async def check_its_suffixes_route_to_it(subject: LoaderSubject) -> None:
    """Every suffix the loader declares picks it (upper case too)."""
    for suffix in subject.loader.suffixes:
        for name in (f"report{suffix}", f"REPORT{suffix.upper()}"):
            found = loader_for(Path(name))
            assert found is not None and found.kind == subject.loader.kind, name
