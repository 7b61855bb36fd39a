"""Quiet output: a library's warning is one clear line, an expected tool error has no
traceback (--verbose shows it), and a copilot's first indexing says so."""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path

from pilothouse.cli.log_output import OneLineHandler
from pilothouse.testing.wire import Reply
from tests.cli.conftest import Run


def test_a_damaged_pdf_gives_one_warning_line_and_the_failure(
    cli_process: Run, tmp_path: Path
) -> None:
    """A real process: a library's warning reaches stderr as one line, as a user sees it."""
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n")
    result = cli_process("knowledge", "add", str(pdf))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "warning: pypdf: EOF marker not found" in lines
    assert not any(line.strip() == "EOF marker not found" for line in lines)  # never raw
    assert any(line.startswith("failed ") and "scan.pdf" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_one_line_per_distinct_record_and_no_traceback_unless_verbose() -> None:
    stream = io.StringIO()
    handler = OneLineHandler(stream)
    logger = logging.getLogger("somelib.sub")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("first\nsecond line")
        logger.warning("first\nsecond line")  # shown once
        try:
            raise ValueError("bad value")
        except ValueError:
            logger.error("it broke", exc_info=True)
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            message = warnings.formatwarning("old API", DeprecationWarning, "/x/y.py", 3)
        logger.warning("%s", message)
        handler.verbose = True
        try:
            raise KeyError("k")
        except KeyError:
            logger.error("again", exc_info=True)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    lines = stream.getvalue().splitlines()
    assert lines[0] == "warning: somelib: first second line"
    assert lines[1] == "error: somelib: it broke (ValueError: bad value)"
    assert lines[2].startswith("warning: somelib: /x/y.py:3: DeprecationWarning: old API")
    assert lines[3] == "error: somelib: again"
    assert lines[4] == "Traceback (most recent call last):"
    assert stream.getvalue().count("Traceback") == 1


def test_a_failing_tool_without_a_traceback(cli: Run, tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    assert cli("init", "shop", "--folder", str(folder)).returncode == 0
    (folder / "tools" / "lookup.py").write_text(
        "from pilothouse.tools import tool\n\n\n"
        "@tool(read_only=True)\n"
        "def find_order(order_id: str) -> str:\n"
        '    """Look up an order."""\n'
        '    raise LookupError(f"no order {order_id}")\n'
    )
    text = (folder / "copilot.yaml").read_text()
    entry = "  - python: tools/lookup.py\n    functions: [find_order]\n"
    (folder / "copilot.yaml").write_text(text.replace("tools:\n", "tools:\n" + entry))
    result = cli("tools", "call", str(folder), "find_order", "--args", '{"order_id": "X1"}')
    assert result.returncode == 1
    assert "find_order failed: LookupError: no order X1" in result.stdout
    assert "Traceback" not in result.stderr and "warning" not in result.stderr

    verbose = cli("tools", "call", str(folder), "find_order", "--args", '{"order_id": "X1"}', "-v")
    assert verbose.returncode == 1
    assert "Traceback" in verbose.stderr and "lookup.py" in verbose.stderr


def test_the_first_ask_of_a_copilot_says_it_indexes(  # type: ignore[no-untyped-def]
    cli: Run, home: Path, tmp_path: Path, openai_fake
) -> None:
    fake, url = openai_fake
    folder = tmp_path / "shop"
    assert cli("init", "shop", "--folder", str(folder)).returncode == 0
    (home / "config.toml").write_text(f'[providers.openai]\nbase_url = "{url}"\n')
    env = {"OPENAI_API_KEY": "test-key"}
    args = ("ask", str(folder), "Is it 5 GHz?", "-m", "openai:gpt-4.1-mini")
    fake.push(Reply("No [1]."), Reply("No [1]."))
    first = cli(*args, env=env)
    assert first.returncode == 0, first.stderr
    assert "indexing shop's knowledge (2 files" in first.stderr
    again = cli(*args, env=env)
    assert again.returncode == 0
    assert "indexing" not in again.stderr  # nothing changed, nothing said
