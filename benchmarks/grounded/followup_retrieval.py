"""What follow-up retrieval finds, without a model: for every follow-up of
benchmarks/grounded/followups-fresh.yaml (after `run.py prepare --suite followups`),
the passages retrieval gives under several ways of building the query from the
conversation, and whether an expected source is among them (and first).

    python benchmarks/grounded/followup_retrieval.py /tmp/fu4/copilots
    python benchmarks/grounded/followup_retrieval.py --spans HOME [HOME ...]
    python benchmarks/grounded/followup_retrieval.py --recall FOLDER [FOLDER ...] [-v]

`--recall` (tenth round): over `run.py prepare`'s folders (any follow-up suites), for
each knowledge follow-up (a case with `answer_includes` and `sources`), whether the
answering passage (one whose text holds every expected fact) is among the passages the
runtime's own retrieval gives it (`Runtime._retrieve`: the follow-up query, the 1.5B's
passage budget, the strict floor), and still holds the fact after the budget's cut
("sent"); with its rank for the follow-up alone and with its earlier questions (40
searched). Earlier turns are fed as user messages.

Ways (each a list of queries; each passage keeps its best score over them, as
`grounding.retrieve` does with `context_query`):

- question: the follow-up alone (`retrieval.follow_up: off`);
- previous: the follow-up, and the previous user turn + the follow-up (the runtime's
  `follow_up: context`);
- all-turns: the follow-up, and every earlier user turn + the follow-up;
- joined-only: only the previous user turn + the follow-up.

Only user turns are used (they are the same whatever the model answered), so the
figures hold for any model. Each way's search time is the median over the cases of
the wall time of its searches (embedding the queries and searching), for the ratio
between ways; the machine is shared, so absolute times mean little.

`--spans` reads the retrieval spans of the eval runs stored in each data directory
(`run.py`'s homes) and gives the median retrieval time of turns searched with a
context query (follow-ups: two searches) and without (a conversation's first turn),
from the same runs: what the deterministic follow-up query costs for real.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))

Way = Callable[[str, Sequence[str]], list[str]]
WAYS: dict[str, Way] = {
    "question": lambda q, turns: [q],
    "previous": lambda q, turns: [q, f"{turns[-1]}\n{q}"],
    "all-turns": lambda q, turns: [q, "\n".join([*turns, q])],
    "joined-only": lambda q, turns: [f"{turns[-1]}\n{q}"],
}


async def measure(copilots: Path) -> None:
    from pilothouse.config import Settings
    from pilothouse.copilot import Copilot
    from pilothouse.copilot.grounding import search_options
    from pilothouse.models import FunctionModel
    from pilothouse.pipeline.metrics.checks import matching
    from pilothouse.pipeline.suite import load_suite

    home = Path(tempfile.mkdtemp(prefix="fu-retrieval-"))
    settings = Settings.from_sources(home=home, environ={})
    tally = {way: [0, 0, 0] for way in WAYS}  # hit, first, cases
    seconds: dict[str, list[float]] = {way: [] for way in WAYS}
    for name in ("helpdesk", "starter"):
        folder = copilots / name
        suite = load_suite(folder / "evals" / "heldout.yaml")
        model = FunctionModel(lambda r: "unused", model_id="test:none")
        copilot = await Copilot.open(folder, settings=settings, models=[model])
        try:
            knowledge = copilot.knowledge
            retrieval = copilot.definition.knowledge
            if knowledge is None or retrieval is None:
                raise SystemExit(f"{folder}: no knowledge")
            options = search_options(retrieval.retrieval)
            for case in suite.cases:
                expected = case.expect.sources
                if not expected or not case.conversation:
                    continue
                turns = [t.text for t in case.conversation if t.role == "user"]
                row = [case.id]
                for way, build in WAYS.items():
                    started = time.perf_counter()
                    best: dict[int, object] = {}
                    scores: dict[int, float] = {}
                    for query in build(case.question, turns):
                        for result in await knowledge.search(query, options):
                            if result.score > scores.get(result.chunk_id, -1.0):
                                scores[result.chunk_id] = result.score
                                best[result.chunk_id] = result
                    seconds[way].append(time.perf_counter() - started)
                    ranked = sorted(best, key=lambda c: (-scores[c], c))[: options.k]
                    from pilothouse.copilot.grounding import citations_from

                    citations = citations_from([best[c] for c in ranked], folder)  # type: ignore[misc]
                    hits = matching(citations, expected)
                    first = bool(citations) and bool(matching(citations[:1], expected))
                    tally[way][0] += int(bool(hits))
                    tally[way][1] += int(first)
                    tally[way][2] += 1
                    row.append(f"{way}:{'first' if first else 'hit' if hits else 'MISS'}")
                print("  ".join(row))
        finally:
            await copilot.aclose()
    print("\n| way | expected source retrieved | ranked first | median search ms |")
    print("|---|---|---|---|")
    for way, (hit, first, total) in tally.items():
        ms = statistics.median(seconds[way]) * 1000
        print(f"| {way} | {hit} of {total} | {first} of {total} | {ms:.0f} |")


def spans(homes: Sequence[Path]) -> None:
    import json
    import sqlite3

    print("| data directory | first turns: n, median ms | follow-ups: n, median ms |")
    print("|---|---|---|")
    for home in homes:
        db = sqlite3.connect(home / "pilothouse.db")
        rows = db.execute("SELECT duration_s, attributes FROM spans WHERE kind = 'retrieval'")
        alone: list[float] = []
        context: list[float] = []
        for duration, attributes in rows:
            query = json.loads(attributes).get("pilothouse.retrieval.context_query")
            (context if query else alone).append(duration * 1000)
        cells = [f"{len(v)}, {statistics.median(v):.0f}" if v else "0, -" for v in (alone, context)]
        print(f"| {home} | {cells[0]} | {cells[1]} |")


async def recall(folders: Sequence[Path], verbose: bool) -> None:
    from dataclasses import replace

    from pilothouse.config import Settings
    from pilothouse.copilot import Copilot
    from pilothouse.copilot.grounding import follow_up_query, search_options
    from pilothouse.models import FunctionModel
    from pilothouse.models.profiles import profile_for
    from pilothouse.pipeline.metrics.checks import normalise
    from pilothouse.pipeline.suite import Keyword, alternatives, load_suite
    from pilothouse.types import Message

    profile = profile_for("local:qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")

    def has(text: str, wanted: list[Keyword]) -> bool:
        said = normalise(text)
        return all(any(normalise(o) in said for o in alternatives(k)) for k in wanted)

    settings = Settings.from_sources(home=Path(tempfile.mkdtemp(prefix="recall-")), environ={})
    cases = given = sent = 0
    for folder in folders:
        for name in ("helpdesk", "starter"):
            suite = load_suite(folder / name / "evals" / "heldout.yaml")
            model = FunctionModel(lambda r: "unused", model_id="local:offline", profile=profile)
            copilot = await Copilot.open(folder / name, settings=settings, models=[model])
            runtime, knowledge = copilot.runtime, copilot.knowledge
            if knowledge is None or copilot.definition.knowledge is None:
                raise SystemExit(f"{folder / name}: no knowledge")
            options = replace(search_options(copilot.definition.knowledge.retrieval), k=40)
            try:
                for case in suite.cases:
                    wanted = case.expect.answer_includes
                    if not wanted or not case.expect.sources:
                        continue
                    window: list[Message] = []
                    for turn in [t.text for t in case.conversation if t.role == "user"]:
                        window += [Message.user(turn), Message.assistant("ok")]
                    found = await runtime._retrieve(case.question, window)
                    is_given = any(has(c.text or "", wanted) for c in found.citations)
                    is_sent = any(has(t, wanted) for t in found.texts)
                    ranks = []
                    for query in (case.question, follow_up_query(case.question, window)):
                        results = await knowledge.search(query, options) if query else []
                        rank = [i for i, r in enumerate(results, 1) if has(r.text, wanted)]
                        ranks.append(str(rank[0]) if rank else "-")
                    cases, given, sent = cases + 1, given + is_given, sent + is_sent
                    flag = "sent " if is_sent else "given" if is_given else "MISS "
                    print(f"{flag} {folder.name}/{case.id} alone={ranks[0]} with={ranks[1]}")
                    if verbose and not is_given:
                        for c in found.citations:
                            print(f"      [{c.number}] {c.score:.2f} {c.where}")
            finally:
                await copilot.aclose()
    print(f"\n{cases} follow-ups: the answering passage given {given}, sent {sent}")


if __name__ == "__main__":
    if sys.argv[1] == "--recall":
        names = [a for a in sys.argv[2:] if a != "-v"]
        asyncio.run(recall([Path(a) for a in names], "-v" in sys.argv))
    elif sys.argv[1] == "--spans":
        spans([Path(a) for a in sys.argv[2:]])
    else:
        asyncio.run(measure(Path(sys.argv[1])))
