"""Small hostile inputs for the bounded-parsing tests (no Pilothouse imports, so a test
that uses them can also run against code from before the limits)."""

from __future__ import annotations


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The "billion laughs" of YAML: each level repeats the one before `width` times
    (9 levels of 9: 387 million values in about 400 bytes)."""
    lines = ["a: &a [" + ", ".join(['"lol"'] * width) + "]"]
    previous = "a"
    for number in range(1, levels):
        name = chr(ord("a") + number) if number < 26 else f"z{number}"
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * width) + "]")
        previous = name
    return "\n".join(lines) + "\n"


def docx_bomb(expanded_bytes: int) -> bytes:
    """A valid DOCX whose word/document.xml is one paragraph of `expanded_bytes` of
    "lol " (deflate packs it about 1,000 times: 1 GiB in under 1.1 MB)."""
    import io
    import zipfile

    import docx

    base = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("hello")
    document.save(base)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(base.getvalue())) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb,
    ):
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename != "word/document.xml":
                bomb.writestr(info, content)
                continue
            head, rest = content.decode("utf-8").split("<w:body>", 1)
            with bomb.open("word/document.xml", "w", force_zip64=True) as member:
                member.write(f"{head}<w:body><w:p><w:r><w:t>".encode())
                chunk = b"lol " * (2**20 // 4)
                for _ in range(max(1, expanded_bytes // len(chunk))):
                    member.write(chunk)
                member.write(f"</w:t></w:r></w:p>{rest}".encode())
    return out.getvalue()


def run_capped(code: str, argument: str, memory_cap: int) -> str:
    """Runs `code` (dedented; `sys` is imported) in a child Python whose address space
    is capped at `memory_cap` bytes, with `argument` as sys.argv[1]; asserts it exits
    0 and returns what it printed."""
    import subprocess
    import sys
    import textwrap

    script = (
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({memory_cap}, {memory_cap}))\n"
        + textwrap.dedent(code)
    )
    done = subprocess.run(
        [sys.executable, "-c", script, argument],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
