"""Issue 20's figures on the held-out suites, through `pilothouse eval`.

    python benchmarks/grounded/run.py prepare /tmp/gr/copilots
    # then, for each code under test (this checkout; an older one with PYTHONPATH=its src):
    PILOTHOUSE_HOME=/tmp/gr/home-after nice pilothouse eval /tmp/gr/copilots/starter \\
        -m local:/path/to/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf --no-judge --concurrency 1
    python benchmarks/grounded/run.py report /tmp/gr/home-before /tmp/gr/home-after

`prepare` writes the starter (as `pilothouse init` makes it) and a copy of the helpdesk
example, each with its held-out suite (benchmarks/grounded/*-heldout.yaml, or with
`--suite fresh`, `fresh2` or `fresh3` the *-fresh.yaml, *-fresh2.yaml or *-fresh3.yaml
ones, written later, or with `--suite followups`, `followups2` .. `followups7` its part of
followups-fresh.yaml or followups-fresh2/3/4/5/6/7.yaml, multi-turn
conversations whose earlier turns are asked)
as its only suite (stored as evals/heldout.yaml either way). `report` reads every
eval run stored in each data directory and prints the figures the issue asks for
(runs of one copilot on one model taken together: a suite may be run in pieces with
`--cases`), computed from what each case's run did (its tool calls, offered
approvals, citations, decisions, latency), so code without issue 20's metrics is
measured the same way:

- invented: tool calls that ran or were offered for approval with an identifier (3+
  digits or an @, in any argument, free text too: the runtime's rule,
  copilot/grounded_args.py `invented`) the user never wrote;
- needless: knowledge questions (the case expects sources or facts, no call) on which
  any tool was called or offered;
- id requests: cases that expect a call, made with the expected arguments;
- missing id: cases whose tool is forbidden (no id given): no call of it and a question
  back;
- model cited: knowledge questions whose answer has a [n] marker the model wrote (of
  all, and of those whose answer has any citation, the issue's "grounded answers");
- not covered: `no_answer` cases passed; in scope: knowledge questions passed;
- follow-ups: cases with earlier turns whose own checks passed (an asked earlier
  turn's expectations are counted apart), with no needless call;
- latency and decision seconds per case (means).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

sys.path.insert(0, str(ROOT / "src"))


_FOLLOWUPS = {
    "followups": "followups-fresh.yaml",
    "followups2": "followups-fresh2.yaml",
    "followups3": "followups-fresh3.yaml",
    "followups4": "followups-fresh4.yaml",
    "followups5": "followups-fresh5.yaml",
    "followups6": "followups-fresh6.yaml",
    "followups7": "followups-fresh7.yaml",
}


def prepare(out: Path, suite: str = "heldout") -> None:
    from pilothouse.copilot.templates import copy_template

    out.mkdir(parents=True, exist_ok=True)
    starter = out / "starter"
    if starter.exists():
        shutil.rmtree(starter)
    copy_template(starter, name="starter")
    helpdesk = out / "helpdesk"
    if helpdesk.exists():
        shutil.rmtree(helpdesk)
    shutil.copytree(ROOT / "examples" / "helpdesk", helpdesk)
    for folder, name in ((starter, "starter"), (helpdesk, "helpdesk")):
        if suite in _FOLLOWUPS:  # one file, a document per copilot
            import yaml

            both = yaml.safe_load((HERE / _FOLLOWUPS[suite]).read_text())
            text = yaml.safe_dump(both[name], sort_keys=False, allow_unicode=True)
            (folder / "evals" / "heldout.yaml").write_text(text)
        else:
            shutil.copy(HERE / f"{name}-{suite}.yaml", folder / "evals" / "heldout.yaml")
        yaml = folder / "copilot.yaml"
        text = yaml.read_text()
        start = text.index("\nevals:")
        yaml.write_text(text[: start + 1] + "evals:\n  - evals/heldout.yaml\n")
    print(f"prepared {starter} and {helpdesk}")


def _cases(folder: Path) -> dict[str, Any]:
    from pilothouse.pipeline.suite import load_suite

    return {c.id: c for c in load_suite(folder / "evals" / "heldout.yaml").cases}


def _invented(case: Any, calls: list[dict[str, Any]]) -> list[str]:
    """The runtime's own rule (copilot/grounded_args.py `invented`), in every argument
    (free text too), against what the user wrote (a run's stored details hold no tool
    results, so an id that a lookup returned and a later call used would count)."""
    from pilothouse.copilot.grounded_args import Evidence, invented

    said = Evidence([case.question, *(t.text for t in case.conversation if t.role == "user")])
    return [
        f"{call['name']}: {value}"
        for call in calls
        for value in invented(call["arguments"], said, numbers=True)
    ]


_CHECKS = (
    "answer_includes",
    "answer_matches",
    "answer_schema",
    "sources",
    "tool_calls",
    "tool_restraint",
    "no_answer",
)


def _scores(db: sqlite3.Connection, run: str, arm: int, case: str) -> dict[str, float | None]:
    rows = db.execute(
        "SELECT metric, value FROM eval_scores WHERE run_id=? AND arm=? AND case_id=? AND judge=''",
        (run, arm, case),
    )
    return {metric: value for metric, value in rows}


def report(homes: Sequence[Path], copilots: Path, table: bool = False) -> None:
    suites = {"starter": _cases(copilots / "starter"), "helpdesk": _cases(copilots / "helpdesk")}
    columns: dict[str, dict[str, dict[str, str]]] = {}  # copilot -> column -> row -> cell
    for home in homes:
        db = sqlite3.connect(home / "pilothouse.db")
        runs = db.execute(
            "SELECT r.run_id, r.copilot, a.arm, a.model FROM eval_runs r JOIN eval_arms a"
            " USING (run_id) ORDER BY r.created"
        ).fetchall()
        pieces: dict[tuple[str, str], list[tuple[str, int]]] = {}
        for run, copilot, arm, model in runs:
            pieces.setdefault((copilot, model), []).append((run, arm))
        for (copilot, model), arms in pieces.items():
            cases = suites["helpdesk" if copilot == "helpdesk" else "starter"]
            cells = _report_arm(db, home, arms, copilot, model, cases, quiet=table)
            column = f"{home.name} {model.rsplit('/', 1)[-1].split('-instruct')[0]}"
            columns.setdefault(copilot, {})[column] = cells
    if table:
        for copilot, by_column in columns.items():
            rows = list(dict.fromkeys(r for cells in by_column.values() for r in cells))
            print(f"\n{copilot}\n\n| | {' | '.join(by_column)} |")
            print(f"|---|{'---|' * len(by_column)}")
            for row in rows:
                print(f"| {row} | {' | '.join(c.get(row, '') for c in by_column.values())} |")


def _report_arm(
    db: sqlite3.Connection,
    home: Path,
    arms: list[tuple[str, int]],
    copilot: str,
    model: str,
    cases: dict[str, Any],
    *,
    quiet: bool = False,
) -> dict[str, str]:
    """Prints the figures of one copilot on one model (unless `quiet`) and returns
    them as table cells."""
    rows = [
        (run, arm, *row)
        for run, arm in arms
        for row in db.execute(
            "SELECT case_id, status, answer, details FROM eval_cases WHERE run_id=? AND arm=?",
            (run, arm),
        )
    ]
    tally: dict[str, list[int]] = {}
    notes: list[str] = []
    latency: list[float] = []
    decision: list[float] = []

    def count(what: str, good: bool, why: str = "") -> None:
        tally.setdefault(what, [0, 0])
        tally[what][0] += int(good)
        tally[what][1] += 1
        if not good and why:
            notes.append(f"{what}: {why}")

    for run, arm, case_id, status, answer, details_json in rows:
        case = cases.get(case_id)
        if case is None or status == "error":
            notes.append(f"{case_id}: {status}")
            continue
        details = json.loads(details_json)
        scores = _scores(db, run, arm, case_id)
        calls = details.get("tool_calls", []) + [
            {**b, "blocked": True} for b in details.get("blocked", [])
        ]
        reached = [c for c in calls if not c.get("blocked")]
        latency.append(float(details.get("latency_s", 0.0)))
        decision.append(sum(d["s"] for d in details.get("decisions", [])))
        invented = _invented(case, reached)
        count("invented (cases with none)", not invented, f"{case_id} {invented}")
        expect = case.expect
        knowledge = bool(expect.sources or expect.answer_includes) and not expect.tool_calls
        if knowledge:
            names = [c["name"] for c in reached]
            count("needless (knowledge cases without a call)", not names, f"{case_id} {names}")
            count("in scope (knowledge cases passed)", scores.get("pass") == 1.0, case_id)
            cited = [c for c in details.get("citations", []) if not c["inferred"]]
            count("model cited", bool(cited), case_id)
            if details.get("citations"):
                count("model cited (of answers with citations)", bool(cited), case_id)
        if expect.tool_calls:
            count("id requests: right call", scores.get("tool_calls") == 1.0, f"{case_id} {calls}")
        if expect.forbidden_tools and not expect.tool_calls:
            wrong = [c["name"] for c in reached if c["name"] in expect.forbidden_tools]
            asked = "?" in answer
            count(
                "missing id: asked, no call",
                not wrong and asked,
                f"{case_id} {wrong} {answer[:80]!r}",
            )
        if expect.no_answer:
            count("not covered", scores.get("no_answer") == 1.0, f"{case_id} {answer[:80]!r}")
        if case.conversation:
            # The follow-up itself: its own checks (an earlier turn's are apart).
            own = [v for m, v in scores.items() if m in _CHECKS]
            ok = all(v == 1.0 for v in own) and not (knowledge and reached)
            count("follow-ups passed without a needless call", ok, f"{case_id} {answer[:90]!r}")
            if "earlier_turns" in scores:
                count("earlier turns met their expectations", scores["earlier_turns"] == 1.0)
    cells = {what: f"{good} of {total}" for what, (good, total) in tally.items()}
    if latency:
        cells["mean latency per case (s)"] = f"{sum(latency) / len(latency):.1f}"
        cells["mean decision-step time per case (s)"] = f"{sum(decision) / len(decision):.1f}"
    if quiet:
        return cells
    runs = ", ".join(f"{run} arm {arm}" for run, arm in arms)
    print(f"\n{home.name}  {copilot}  {model.rsplit('/', 1)[-1]}  ({runs}): {len(rows)} cases")
    for what, (good, total) in tally.items():
        print(f"  {what:48s} {good:3d}/{total:<3d} {good / max(total, 1):6.1%}")
    if latency:
        print(f"  {'mean latency per case':48s} {sum(latency) / len(latency):8.1f} s")
        print(f"  {'mean decision-step time per case':48s} {sum(decision) / len(decision):8.1f} s")
    for note in notes:
        print(f"    - {note}")
    return cells


def _own_checks_passed(home: Path) -> dict[str, bool]:
    """Case id -> whether the case's own checks passed (an earlier turn's apart)."""
    db = sqlite3.connect(home / "pilothouse.db")
    passed: dict[str, bool] = {}
    for case_id, run, arm in db.execute("SELECT case_id, run_id, arm FROM eval_cases"):
        scores = _scores(db, run, arm, case_id)
        passed[case_id] = all(v == 1.0 for m, v in scores.items() if m in _CHECKS)
    return passed


def pair(first: Path, second: Path) -> None:
    """The cases both data directories ran, paired: passes of each, the cases that
    changed, and McNemar's exact test on them (docs/evals.md, "Statistics")."""
    from math import comb

    a, b = _own_checks_passed(first), _own_checks_passed(second)
    common = sorted(set(a) & set(b))
    only_a = [c for c in common if a[c] and not b[c]]
    only_b = [c for c in common if b[c] and not a[c]]
    n, k = len(only_a) + len(only_b), min(len(only_a), len(only_b))
    p = min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0
    print(f"{first.name}: {sum(a[c] for c in common)} of {len(common)} passed")
    print(f"{second.name}: {sum(b[c] for c in common)} of {len(common)} passed")
    print(f"only {first.name}: {', '.join(only_a) or '-'}")
    print(f"only {second.name}: {', '.join(only_b) or '-'}")
    print(f"McNemar exact p = {p:.3f}")


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    made = sub.add_parser("prepare")
    made.add_argument("out", type=Path)
    made.add_argument(
        "--suite",
        choices=(
            "heldout",
            "fresh",
            "fresh2",
            "fresh3",
            "followups",
            "followups2",
            "followups3",
            "followups4",
            "followups5",
            "followups6",
            "followups7",
        ),
        default="heldout",
        help="*-heldout.yaml (issue 20's first rounds), *-fresh.yaml (its third round), "
        "*-fresh2.yaml (its fourth: ids asked for), *-fresh3.yaml (its fifth: requests "
        "naming their id in varied words), followups-fresh.yaml (multi-turn, earlier turns "
        "asked; its fourth round), followups-fresh2.yaml (the fifth's), followups-fresh3.yaml "
        "(the sixth's), followups-fresh4.yaml (the seventh's), followups-fresh5.yaml "
        "(the eighth's), followups-fresh6.yaml (the ninth's) or followups-fresh7.yaml "
        "(the tenth's, held out)",
    )
    shown = sub.add_parser("report")
    shown.add_argument("homes", nargs="+", type=Path)
    shown.add_argument("--copilots", type=Path, default=Path("/tmp/gr/copilots"))
    shown.add_argument("--table", action="store_true", help="Markdown tables, a column a run")
    paired = sub.add_parser("pair", help="two data directories' cases side by side")
    paired.add_argument("first", type=Path)
    paired.add_argument("second", type=Path)
    args = parser.parse_args(argv)
    if args.what == "prepare":
        prepare(args.out, args.suite)
    elif args.what == "pair":
        pair(args.first, args.second)
    else:
        report(args.homes, args.copilots, args.table)


if __name__ == "__main__":
    main(sys.argv[1:])
