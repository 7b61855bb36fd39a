"""Which path each helpdesk suite case takes through a stepped turn, without a real
model: knowledge first (one request, the answer), or a decision step first (and what
it offered). A scripted model stands in for the embedded one (its profile: emulated
tools, constrained steps); it decides "answer" where that is offered and writes a
one-word answer, so only the first decision of a case is meaningful.

    python benchmarks/latency/paths.py [--home /tmp/paths-home]

Retrieval is the product's own (the copilot's knowledge, indexed in `--home`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from pathlib import Path

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.models import FunctionModel
from pilothouse.models.profiles import profile_for
from pilothouse.pipeline.execute import run_case
from pilothouse.pipeline.suite import load_suite
from pilothouse.types import ModelRequest

HELPDESK = Path(__file__).resolve().parents[2] / "examples" / "helpdesk"
MODEL = "local:qwen2.5-coder-1.5b"


def step_of(request: ModelRequest) -> str:
    return request.messages[-1].text.rsplit("\n", 1)[-1]


async def main(home: Path) -> None:
    steps: list[str] = []

    def reply(request: ModelRequest) -> str:
        step = step_of(request)
        steps.append(step)
        if step.startswith("Step: decide"):
            return json.dumps({"decision": "answer"})
        if step.startswith("Step: arguments"):
            return "{}"
        return '{"sources": [1], "answer": "Yes."}' if "sources" in step else '{"answer": "Yes."}'

    settings = Settings.from_sources(home=home, environ={})
    model = FunctionModel(reply, model_id=MODEL, profile=profile_for(MODEL))
    suite = load_suite(HELPDESK / "evals" / "basic.yaml")
    copilot = await Copilot.open(HELPDESK, settings=settings, models=[model])
    paths: Counter[tuple[str, str]] = Counter()
    try:
        for case in suite.cases:
            steps.clear()
            outcome = await run_case(copilot, case, approve=False)
            first = outcome.decisions[0] if outcome.decisions else None
            kind = "follow-up" if case.conversation else "first turn"
            if first is not None and first.forced == "knowledge_first":
                path = "knowledge first"
            else:
                decide = next((s for s in steps if s.startswith("Step: decide")), "")
                path = "decision: " + decide.partition("with one of: ")[2].rstrip(".")
            paths[(kind, path.split(":")[0])] += 1
            print(f"{case.id:34} {kind:10} {path}")
    finally:
        await copilot.aclose()
    print()
    for (kind, path), count in sorted(paths.items()):
        print(f"{kind:10} {path:16} {count}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=Path("/tmp/pilothouse-paths"))
    asyncio.run(main(parser.parse_args().home))
