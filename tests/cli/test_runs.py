"""`pilothouse runs` and `pilothouse trace` as a real process over a data directory
holding runs recorded with the tracer."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from pilothouse.storage.traces import TraceStore
from pilothouse.tracing import Span, Tracer
from tests.cli.conftest import Run
from tests.tracing.sample import ANSWER, QUESTION, record_sample_run


def record(home: Path, **options: object) -> Span:
    with TraceStore(home / "pilothouse.db") as store:
        return asyncio.run(record_sample_run(Tracer([store]), **options))  # type: ignore[arg-type]


def test_runs_on_a_fresh_data_directory(cli: Run, home: Path) -> None:
    result = cli("runs")
    assert result.returncode == 0, result.stderr
    assert "No runs recorded yet" in result.stdout
    assert not (home / "pilothouse.db").exists()  # listing creates nothing


def test_runs_lists_recent_runs(cli: Run, home: Path) -> None:
    first = record(home, copilot="helpdesk")
    second = record(home, copilot="hr", question="How many leave days do I have?", fail_tool=True)

    result = cli("runs")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "id", "time", "copilot", "model", "tokens", "cost", "duration", "status", "question"
    ]  # fmt: skip
    assert lines[1].startswith(second.trace_id[:12])  # newest first
    assert lines[2].startswith(first.trace_id[:12])
    assert "helpdesk" in lines[2] and "openai:gpt-4.1-mini" in lines[2]
    assert "710/57" in lines[2] and "$0.0020" in lines[2] and "completed" in lines[2]
    assert QUESTION in lines[2]

    only = cli("runs", "--copilot", "hr", "--limit", "5")
    assert only.returncode == 0
    assert second.trace_id[:12] in only.stdout and first.trace_id[:12] not in only.stdout

    as_json = cli("runs", "--json", "-n", "1")
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert len(rows) == 1
    assert rows[0]["run_id"] == second.trace_id
    assert rows[0]["copilot"] == "hr" and rows[0]["status"] == "completed"
    assert rows[0]["input_tokens"] == 710


def test_trace_shows_the_span_tree(cli: Run, home: Path) -> None:
    run = record(home, fail_tool=True)
    result = cli("trace", run.trace_id[:8])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"run {run.trace_id}" in out
    assert "copilot helpdesk" in out and "710 in / 57 out" in out
    assert f"question {QUESTION}" in out and ANSWER[:40] in out
    lines = out.splitlines()
    tree_start = next(i for i, line in enumerate(lines) if line.startswith("[run] helpdesk"))
    tree = lines[tree_start:]
    # the children of the run, in order, drawn as a tree
    children = [line for line in tree if line[:4] in ("├── ", "└── ") and "[" in line[4:5]]
    assert [c[4:].split("  ")[0] for c in children] == [
        "[retrieval] retrieve",
        "[model] chat",
        "[approval] open_ticket",
        "[tool] open_ticket",
        "[model] chat",
    ]
    text = "\n".join(tree)
    assert "handbook · 2 hits · top_k 4" in text
    assert "0.830 vpn-guide.pdf p.4 › Resetting" in text
    assert "asked openai:gpt-4.1-mini → answered by anthropic:claude-sonnet-4-5" in text
    assert "310 in / 22 out (100 cached)" in text
    assert "• fallback" in text and "rate limited" in text
    assert "approved" in text
    assert "error ConnectionError: ticket service unreachable" in text
    assert 'arguments {"title": "VPN token", "api_key": "[REDACTED]"}' in text
    # the first call sent system + question; the second also the tool call and result
    assert "2 messages sent (--full shows them)" in text
    assert "4 messages sent (--full shows them)" in text
    assert "sk-should-not-leak" not in out


def test_trace_full_shows_the_messages(cli: Run, home: Path) -> None:
    run = record(home)
    result = cli("trace", run.trace_id, "--full")
    assert result.returncode == 0, result.stderr
    assert "system: You are the IT helpdesk." in result.stdout
    assert f"user: {QUESTION}" in result.stdout
    assert "tool: ← open_ticket: T-7" in result.stdout
    assert f"reply assistant: {ANSWER}" in result.stdout


def test_trace_errors(cli: Run, home: Path) -> None:
    none_yet = cli("trace", "abc")
    assert none_yet.returncode == 1
    assert "no runs recorded yet" in none_yet.stderr

    runs = [record(home) for _ in range(17)]
    missing = cli("trace", "0" * 32)
    assert missing.returncode == 1 and "no run with id" in missing.stderr
    bad = cli("trace", "not-an-id")
    assert bad.returncode == 1 and "not a run id" in bad.stderr
    # 17 random ids share a first hex digit with another one
    first_digits = [r.trace_id[0] for r in runs]
    shared = next(d for d in first_digits if first_digits.count(d) > 1)
    ambiguous = cli("trace", shared)
    assert ambiguous.returncode == 1
    assert "matches several runs" in ambiguous.stderr and "Traceback" not in ambiguous.stderr
