"""What a quoted answer would say, without a model: for every knowledge follow-up (a
case with `answer_includes` and `sources`) of the prepared follow-up suites, the
runtime's own retrieval (`Runtime._retrieve`: the follow-up query, the model profile's
passage budget, the strict floor) and the quote `copilot/quoted_answer.py` gives when
the model names every passage. The earlier turns are asked the same way, each answer
being its quote, so a follow-up sees the previous quote as its previous answer.

    python benchmarks/grounded/run.py prepare /tmp/q/f1 --suite followups
    python benchmarks/grounded/quote_offline.py /tmp/q/f1 [/tmp/q/f2 ...] [--model 0.5b] [-v]

Counts: the expected source among the turn's passages, the expected fact in the quote
and in the best unit, words and units per quote. What a real model names changes the
real figure; this isolates the ranking and the choice of units (docs/local-model.md,
"Follow-ups (ninth round)").
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))


async def measure(folders: list[Path], model_name: str, verbose: bool) -> None:
    from pilothouse.config import Settings
    from pilothouse.copilot import Copilot, quoted_answer
    from pilothouse.copilot.follow_ups import earlier_questions
    from pilothouse.models import FunctionModel
    from pilothouse.models.profiles import profile_for
    from pilothouse.pipeline.metrics.checks import matching, normalise
    from pilothouse.pipeline.suite import Keyword, alternatives, load_suite
    from pilothouse.types import Message

    profile = profile_for(f"local:qwen2.5-coder-{model_name}-instruct-q4_k_m.gguf")
    profile = replace(profile, quoted_answers=True)

    def has(text: str, wanted: list[Keyword]) -> bool:
        said = normalise(text)
        return all(any(normalise(o) in said for o in alternatives(k)) for k in wanted)

    async def quote(runtime: Any, question: str, window: list[Message], previous: str) -> Any:
        found = await runtime._retrieve(question, window)
        quotes = await quoted_answer.for_turn(
            question,
            found.citations,
            runtime.parts.models,
            runtime.parts.knowledge.recent,
            earlier=earlier_questions(window),
            previous=previous,
        )
        named = [c.number for c in found.citations]
        return found, quotes, quoted_answer.best(quotes, named) or ""

    settings = Settings.from_sources(home=Path(tempfile.mkdtemp(prefix="quotes-")), environ={})
    cases = source = fact = first = words = units = 0
    for folder in folders:
        for name in ("helpdesk", "starter"):
            suite = load_suite(folder / name / "evals" / "heldout.yaml")
            model = FunctionModel(lambda r: "unused", model_id="local:offline", profile=profile)
            copilot = await Copilot.open(folder / name, settings=settings, models=[model])
            runtime = copilot.runtime

            try:
                for case in suite.cases:
                    expect = case.expect
                    if not expect.answer_includes or not expect.sources:
                        continue
                    window: list[Message] = []
                    previous = ""
                    for turn in [t.text for t in case.conversation if t.role == "user"]:
                        *_, previous = await quote(runtime, turn, window, previous)
                        window += [Message.user(turn), Message.assistant(previous)]
                    found, quotes, answer = await quote(runtime, case.question, window, previous)
                    found_source = bool(matching(found.citations, expect.sources))
                    in_quote = has(answer, expect.answer_includes)
                    in_first = bool(quotes) and has(quotes[0].text, expect.answer_includes)
                    cases += 1
                    source += found_source
                    fact += in_quote
                    first += in_first
                    words += len(answer.split())
                    units += len(re.findall(r"\[\d+\]", answer))
                    flag = "ok  " if in_quote else "unit" if found_source else "miss"
                    print(f"{flag} {case.id} first={int(in_first)} | {case.question}")
                    if verbose or not in_first:
                        print(f"     previous: {previous[:200]}")
                        print(f"     answer: {answer[:500]}")
            finally:
                await copilot.aclose()
    if not cases:
        raise SystemExit("no knowledge follow-ups in these folders")
    print(
        f"\n{cases} follow-ups: expected source retrieved {source}, fact in the quote {fact}, "
        f"in the best unit {first}; words per quote {words / cases:.1f}, "
        f"units {units / cases:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="run.py prepare's folders")
    parser.add_argument("--model", default="1.5b", help="whose profile (passage budget)")
    parser.add_argument("-v", action="store_true", help="print every quote")
    args = parser.parse_args()
    asyncio.run(measure(args.folders, args.model, args.v))
