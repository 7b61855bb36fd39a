"""Calibrate strict grounding's relevance floor: the best passage's fused score for
questions the knowledge answers against questions it does not.

    nice python benchmarks/grounded/calibrate.py copilots examples/helpdesk \\
        src/pilothouse/copilot/templates/starter --heldout benchmarks/grounded
    nice python benchmarks/grounded/calibrate.py corpus --db /tmp/pilothouse-bench/kb.sqlite3 \\
        --other examples/helpdesk/evals/basic.yaml benchmarks/grounded/helpdesk-heldout.yaml

`copilots`: each copilot's own suites (and its held-out suite, which is reported but
never used to choose): in scope are the cases that expect an answer from the
knowledge (sources or facts), out of scope the `no_answer` ones; requests for tool
calls are left out. Follow-ups are searched as the runtime does (with the previous
turn). `corpus`: the retrieval benchmark's corpus (benchmarks/retrieval): its FAQ
questions are in scope, and questions about another domain (the helpdesk's) are out.

For each floor it prints how many out-of-scope questions fall below it (said "not
covered": wanted) and how many in-scope ones do (refused: lost answers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.copilot.definition_sections import RetrievalSettings
from pilothouse.copilot.grounding import search_options
from pilothouse.knowledge.base import KnowledgeBase
from pilothouse.models import ScriptedModel
from pilothouse.pipeline.suite import Case, load_suite

FLOORS = [round(0.1 + 0.025 * i, 3) for i in range(17)]


@dataclass(frozen=True)
class Scored:
    corpus: str
    case: str
    in_scope: bool
    best: float
    held_out: bool = False


def kind(case: Case) -> bool | None:
    """True: in scope; False: out of scope; None: a tool request (left out)."""
    expect = case.expect
    if expect.no_answer:
        return False
    if expect.sources or expect.answer_includes:
        return True
    return None


async def best_score(knowledge: KnowledgeBase, settings: RetrievalSettings, case: Case) -> float:
    options = search_options(settings)
    queries = [case.question]
    users = [t.text for t in case.conversation if t.role == "user"]
    if users:
        queries.append(f"{users[-1]}\n{case.question}")
    scores = [r.score for q in queries for r in await knowledge.search(q, options)]
    return max(scores, default=0.0)


async def score_copilot(folder: Path, heldout: Path | None) -> list[Scored]:
    with tempfile.TemporaryDirectory() as home:
        work = Path(home) / folder.name
        shutil.copytree(folder, work)
        copilot_yaml = work / "copilot.yaml"
        text = copilot_yaml.read_text().replace('"{{name}}"', "calibration")
        copilot_yaml.write_text(text)
        settings = Settings.from_sources(home=Path(home) / "home", environ={})
        copilot = await Copilot.open(work, settings=settings, models=[ScriptedModel([])])
        try:
            assert copilot.knowledge is not None and copilot.definition.knowledge is not None
            retrieval = copilot.definition.knowledge.retrieval
            suites = [(work / s, False) for s in copilot.definition.evals.suites]
            if heldout is not None:
                suites += [(p, True) for p in _heldout_suites(heldout, folder)]
            found = []
            for path, held in suites:
                for case in load_suite(path).cases:
                    in_scope = kind(case)
                    if in_scope is None:
                        continue
                    best = await best_score(copilot.knowledge, retrieval, case)
                    found.append(Scored(folder.name, case.id, in_scope, best, held))
            return found
        finally:
            await copilot.aclose()


def _stem(folder: Path) -> str:
    return "helpdesk" if folder.name == "helpdesk" else "starter"


def _heldout_suites(heldout: Path, folder: Path) -> list[Path]:
    return sorted(heldout.glob(f"{_stem(folder)}-heldout.yaml"))


QUESTIONS = Path(__file__).resolve().parents[1] / "retrieval" / "questions.jsonl"


async def score_corpus(db: Path, others: Sequence[Path]) -> list[Scored]:
    questions = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    knowledge = KnowledgeBase.open_local(db)
    options = search_options(RetrievalSettings(top_k=3))
    found: list[Scored] = []
    try:
        for item in questions:
            scores = [r.score for r in await knowledge.search(item["question"], options)]
            found.append(Scored("python-docs", str(item["id"]), True, max(scores, default=0.0)))
        for path in others:
            for case in load_suite(path).cases:
                scores = [r.score for r in await knowledge.search(case.question, options)]
                found.append(Scored("python-docs", case.id, False, max(scores, default=0.0)))
    finally:
        knowledge.close()
    return found


def report(scored: Sequence[Scored]) -> None:
    for corpus in dict.fromkeys(s.corpus for s in scored):
        rows = [s for s in scored if s.corpus == corpus]
        for label, chosen in (
            ("tuning", [r for r in rows if not r.held_out]),
            ("held-out", [r for r in rows if r.held_out]),
        ):
            if not chosen:
                continue
            inside = sorted(r.best for r in chosen if r.in_scope)
            outside = sorted(r.best for r in chosen if not r.in_scope)
            print(f"\n{corpus} ({label}): {len(inside)} in scope, {len(outside)} out of scope")
            if inside:
                p05, median = inside[len(inside) // 20], inside[len(inside) // 2]
                print(f"  in scope:  min {inside[0]:.3f}  p05 {p05:.3f}  median {median:.3f}")
            if outside:
                print(
                    f"  out:       max {outside[-1]:.3f}  median {outside[len(outside) // 2]:.3f}"
                )
            print("  floor  out-of-scope below (not covered)  in-scope below (lost)")
            for floor in FLOORS:
                out_below = sum(1 for v in outside if v < floor)
                in_below = sum(1 for v in inside if v < floor)
                out_share = out_below / max(len(outside), 1)
                in_share = in_below / max(len(inside), 1)
                print(
                    f"  {floor:5.3f}  {out_below:3d}/{len(outside):<3d} {out_share:6.1%}"
                    f"            {in_below:3d}/{len(inside):<3d} {in_share:6.1%}"
                )
            low_in = [r for r in chosen if r.in_scope and r.best < 0.35]
            high_out = [r for r in chosen if not r.in_scope and r.best >= 0.2]
            if low_in or high_out:
                print(
                    "  near the line:",
                    ", ".join(
                        f"{r.case} {r.best:.3f}{'' if r.in_scope else ' (out)'}"
                        for r in sorted(low_in + high_out, key=lambda r: r.best)
                    ),
                )


async def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    copilots = sub.add_parser("copilots")
    copilots.add_argument("folders", nargs="+", type=Path)
    copilots.add_argument("--heldout", type=Path)
    corpus = sub.add_parser("corpus")
    corpus.add_argument("--db", type=Path, required=True)
    corpus.add_argument("--other", nargs="+", type=Path, required=True)
    args = parser.parse_args(argv)
    scored: list[Scored] = []
    if args.what == "copilots":
        for folder in args.folders:
            scored += await score_copilot(folder, args.heldout)
    else:
        scored = await score_corpus(args.db, args.other)
    report(scored)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
