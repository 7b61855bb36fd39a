"""The suite format's model: every problem named with file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.pipeline.suite import SuiteError, load_suite, parse_suite

GOOD = """\
suite: demo
defaults:
  approve: false
cases:
  - id: one
    question: What is it?
    expect:
      answer_includes: [a, [b, c]]
"""


def test_a_good_suite_loads_and_approval_defaults_apply() -> None:
    suite = parse_suite(GOOD, Path("demo.yaml"))
    [case] = suite.cases
    assert case.expect.answer_includes == ["a", ["b", "c"]]
    assert suite.approves(case) is False


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            GOOD.replace("      answer_includes", "      answer_include"),
            ":8: cases.0.expect.answer_include (case one): unknown field",
        ),
        (
            GOOD.replace("id: one", "id: One Two"),
            ":5: cases.0.id (case One Two): String should match",
        ),
        (
            GOOD.replace("question: What is it?", "question: 42"),
            ":6: cases.0.question (case one): Input should be a valid string",
        ),
        (
            GOOD + "      answer_matches: ['(unclosed']\n",
            ":9: cases.0.expect.answer_matches (case one): '(unclosed' is not a regular expression",
        ),
        (
            GOOD + "      answer_schema: {type: nonsense}\n",
            ":9: cases.0.expect.answer_schema (case one): not a valid JSON Schema",
        ),
        (
            GOOD + "      no_answer: true\n",
            ":7: cases.0.expect (case one): no_answer cases expect no facts",
        ),
        (
            GOOD + "  - id: one\n    question: Again?\n    reference: r\n",
            ":1: (top level): duplicate case ids: one",
        ),
        (
            GOOD + "  - id: two\n    question: Nothing expected?\n",
            ":9: cases.1 (case two): a case must expect something",
        ),
        (
            GOOD
            + "  - id: two\n    question: Turns?\n    reference: r\n"
            + "    conversation:\n      - {user: a, assistant: b}\n",
            ":13: cases.1.conversation.0 (case two): a turn is either",
        ),
        ("suite: x\ncases: [\n", ":3: not valid YAML"),
        ("- just\n- a list\n", ":1: expected a mapping"),
    ],
)
def test_a_malformed_suite_names_file_line_and_field(text: str, where: str) -> None:
    with pytest.raises(SuiteError) as caught:
        parse_suite(text, Path("evals/bad.yaml"))
    assert f"evals/bad.yaml{where}" in str(caught.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        GOOD.replace("id: one", "id: One").replace("question: What is it?", "question: x")
    )
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{path}:") for line in lines)
