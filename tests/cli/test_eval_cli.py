"""`pilothouse eval` as a user runs it, against a local fake of the OpenAI API: the
progress bar, the summary, gates and their exit codes, JUnit, compare with the HTML
report, --json, and a malformed suite."""

from __future__ import annotations

import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from pilothouse.testing.loopback import serve_app
from pilothouse.testing.wire import Call, Facts, Reply, Step
from tests.cli.conftest import Run
from tests.fakes.openai_api import FakeOpenAI
from tests.pipeline.conftest import make_copilot

GATES = """\
evals:
  suites: [evals/basic.yaml]
  gates:
    - metric: pass
      min: 0.9
"""


class AnsweringFake(FakeOpenAI):
    """gpt-4.1-mini answers the suite well, gpt-4.1 badly."""

    def next_step(self, facts: Facts) -> Step:
        payload = self.requests[-1]
        messages = payload["messages"]
        if messages[-1]["role"] == "tool":
            return Reply("Done.")
        question = str(messages[-1]["content"]).rsplit("Question:", 1)[-1]
        good = payload["model"] == "gpt-4.1-mini"
        if "VPN client" in question:
            return Reply("Use WireGuard [1]." if good else "Use OpenVPN.")
        if "printers" in question:
            return Reply("On floor 3 [1]." if good else "In the basement.")
        if "monitor" in question and good:
            return Reply(tool_calls=(Call("c1", "create_ticket", {"summary": "Monitor flickers"}),))
        if "HD-1001" in question:
            return Reply(tool_calls=(Call("c2", "ticket_status", {"ticket_id": "HD-1001"}),))
        if "annual leave" in question:
            return Reply("The knowledge base does not cover annual leave." if good else "25 days.")
        if "my ticket" in question:
            return Reply("Which ticket number do you mean?")
        if "JSON" in question:
            return Reply('{"port": 51820}')
        if "port" in question:
            return Reply("Port 51820 [1].")
        return Reply("I do not know.")


@pytest.fixture
def fake() -> Iterator[tuple[AnsweringFake, str]]:
    server = AnsweringFake()
    with serve_app(server.app) as url:
        yield server, url


def env_for(home: Path, url: str) -> dict[str, str]:
    (home / "config.toml").write_text(f'[providers.openai]\nbase_url = "{url}"\n')
    return {"OPENAI_API_KEY": "test-key"}


def test_eval_gates_junit_and_compare(cli: Run, home: Path, tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    _, url = fake
    folder = make_copilot(tmp_path)
    yaml = folder / "copilot.yaml"
    yaml.write_text(yaml.read_text().replace("evals:\n  suites: [evals/basic.yaml]\n", GATES))
    env = env_for(home, url)
    junit = tmp_path / "out" / "junit.xml"
    result = cli(
        "eval", str(folder), "-m", "openai:gpt-4.1-mini", "-m", "openai:gpt-4.1",
        "--gate", "--junit", str(junit), env=env,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr  # gpt-4.1 fails the gate
    assert "cases/s" in result.stderr and "ETA" in result.stderr  # the progress bar
    assert "8 passed" in result.stdout and "FAIL" in result.stdout
    run_id = re.search(r"eval run (ev-[0-9a-f]+)", result.stderr).group(1)  # type: ignore[union-attr]

    root = ET.parse(junit).getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    good = suites["basic [openai:gpt-4.1-mini]"]
    bad = suites["basic [openai:gpt-4.1]"]
    assert good.get("tests") == "8" and good.get("failures") == "0"
    assert int(bad.get("failures") or 0) >= 4
    failure = bad.find("testcase[@name='vpn-client']/failure")
    assert failure is not None and "answer_includes: missing: WireGuard" in failure.get(
        "message", ""
    )
    gates = suites["gates"]
    assert gates.get("tests") == "2" and gates.get("failures") == "1"

    report = tmp_path / "report.html"
    compared = cli("eval", "compare", run_id, "--html", str(report), env=env)
    assert compared.returncode == 0, compared.stderr
    assert "answer_includes" in compared.stdout and "worse" in compared.stdout
    assert "regressed" in compared.stdout
    # in an 80-column terminal the metric names stay whole (they were squeezed away)
    narrow = cli("eval", "compare", run_id, env={**env, "COLUMNS": "80"})
    names = [line.split("│")[1].strip() for line in narrow.stdout.splitlines() if "│" in line]
    assert "answer_includes" in names and "latency_s" in names, narrow.stdout
    page = report.read_text()
    assert (
        "Chart.js v4" in page
        and "<script src" not in page
        and "http" not in page.split("<script>")[0].lower().replace("https://www.chartjs.org", "")
    )
    assert "Use OpenVPN." in page and "Use WireGuard [1]." in page  # both answers side by side
    assert "pilothouse trace " in page

    as_json = cli("eval", "compare", f"{run_id}@1", f"{run_id}@2", "--json", env=env)
    data = json.loads(as_json.stdout)
    verdicts = {m["metric"]: m["verdict"] for m in data["metrics"]}
    assert verdicts["answer_includes"] in ("worse", "no detectable difference")
    assert data["a"]["label"] == "openai:gpt-4.1-mini"

    # An interrupted run (three cases of arm 2 never stored) resumes from the CLI.
    db = sqlite3.connect(home / "pilothouse.db")
    kept = db.execute("SELECT case_id, finished FROM eval_cases WHERE arm = 1").fetchall()
    db.execute(
        "DELETE FROM eval_cases WHERE arm = 2 "
        "AND case_id IN ('printer', 'follow-up', 'annual-leave')"
    )
    db.execute("UPDATE eval_runs SET status = 'running', finished = NULL")
    db.commit()
    resumed = cli("eval", "--resume", run_id[:8], env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming eval run {run_id}" in resumed.stderr
    assert db.execute("SELECT COUNT(*) FROM eval_cases").fetchone() == (16,)
    assert db.execute("SELECT case_id, finished FROM eval_cases WHERE arm = 1").fetchall() == kept
    assert db.execute("SELECT status FROM eval_runs").fetchone() == ("finished",)
    db.close()

    passing = cli("eval", str(folder), "-m", "openai:gpt-4.1-mini", "--gate", "--json", env=env)
    assert passing.returncode == 0, passing.stderr
    summary = json.loads(passing.stdout)
    assert summary["gates"][0]["passed"] is True
    assert summary["arms"][0]["cases"] == {"passed": 8, "failed": 0, "error": 0}


def test_a_malformed_suite_is_named_with_file_line_and_field(cli: Run, tmp_path: Path) -> None:
    folder = make_copilot(tmp_path)
    suite = folder / "evals/basic.yaml"
    suite.write_text(
        suite.read_text().replace("answer_includes: [WireGuard]", "answer_include: [WireGuard]")
    )
    result = cli("eval", str(folder), "-m", "openai:gpt-4.1-mini")
    assert result.returncode == 2
    assert (
        f"{suite}:7: cases.0.expect.answer_include (case vpn-client): unknown field"
        in result.stderr
    )
