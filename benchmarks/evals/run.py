"""The eval runner at scale: a generated suite of N cases on a scripted model, through
the real copilot runtime (conversations, traces, scoring, SQLite results), measuring
cases/s and peak RSS, and RSS as the run goes (flat memory means results stream).

    python benchmarks/evals/run.py --cases 10000 [--knowledge] [--concurrency 8]

Writes everything under a temporary data directory (or --home), removed afterwards
unless --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from pilothouse.config import Settings
from pilothouse.models import FunctionModel
from pilothouse.pipeline.runner import EvalPlan, EvalRunner
from pilothouse.pipeline.summary import summarize
from pilothouse.storage.evals import CaseRow, EvalStore
from pilothouse.types import ModelRequest

DEFINITION = """\
name: benchdesk
instructions: You are a test assistant. Answer in one sentence.
{knowledge}
memory: {{window: 6, summarize: false}}
evals: [evals/big.yaml]
"""
KNOWLEDGE = "knowledge:\n  sources: [knowledge]\n  retrieval: {mode: hybrid, top_k: 3}\n"


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def make_copilot(folder: Path, cases: int, knowledge: bool) -> None:
    (folder / "evals").mkdir(parents=True)
    (folder / "copilot.yaml").write_text(
        DEFINITION.format(knowledge=KNOWLEDGE if knowledge else "")
    )
    if knowledge:
        (folder / "knowledge").mkdir()
        for n in range(20):
            (folder / "knowledge" / f"doc{n}.md").write_text(
                f"# Document {n}\n\n## Facts\n\nThe code of item {n} is CODE-{n:04d}. "
                f"It is stored in warehouse {n % 4}.\n"
            )
    with open(folder / "evals" / "big.yaml", "w", encoding="utf-8") as out:
        out.write("suite: big\ncases:\n")
        for n in range(cases):
            out.write(
                f"  - id: case-{n}\n    question: What is the code of item {n % 20}, case {n}?\n"
                f"    expect:\n      answer_includes: [CODE-{n % 20:04d}]\n"
            )


def answer(request: ModelRequest) -> str:
    last = next(m.text for m in reversed(request.messages) if m.role == "user")
    question = last.rsplit("Question:", 1)[-1]  # after the passages, when retrieval is on
    item = int(question.split("item ", 1)[1].split(",", 1)[0])
    # One case in ten is answered wrongly, so failures are stored too.
    case = int(question.rsplit("case ", 1)[1].rstrip("?"))
    return f"The code is CODE-{item:04d}." if case % 10 else "I do not know."


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--knowledge", action="store_true", help="retrieval on (MiniLM)")
    parser.add_argument("--home", type=Path)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    root = args.home or Path(tempfile.mkdtemp(prefix="pilothouse-bench-evals-"))
    folder = root / "benchdesk"
    make_copilot(folder, args.cases, args.knowledge)
    settings = Settings.from_sources(home=root / "home", environ={})
    store = EvalStore.for_settings(settings)
    samples: list[tuple[int, float]] = []
    every = max(1, args.cases // 10)

    def progress(done: int, total: int, row: CaseRow | None) -> None:
        if row is not None and done % every == 0:
            samples.append((done, round(rss_mb(), 1)))
            print(f"{done}/{total} cases, RSS {samples[-1][1]} MB", file=sys.stderr)

    runner = EvalRunner(
        settings,
        store,
        model_factory=lambda m: [FunctionModel(answer, model_id=m)],
        progress=progress,
    )
    plan = EvalPlan(folder=str(folder), models=("test:scripted",), concurrency=args.concurrency)
    started = time.perf_counter()
    run_id = await runner.start(plan)
    seconds = time.perf_counter() - started
    summary_started = time.perf_counter()
    summary = summarize(store, run_id)
    summary_s = time.perf_counter() - summary_started
    counts = summary.arms[0].counts
    store.close()
    db_mb = sum(p.stat().st_size for p in (root / "home").glob("pilothouse.db*")) / 2**20
    print(
        json.dumps(
            {
                "cases": args.cases,
                "knowledge": args.knowledge,
                "concurrency": args.concurrency,
                "seconds": round(seconds, 1),
                "cases_per_s": round(args.cases / seconds, 1),
                "summary_s": round(summary_s, 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "rss_mb_during_run": samples,
                "results": counts,
                "database_mb": round(db_mb, 1),
                "loadavg": os.getloadavg(),
            },
            indent=2,
        )
    )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
