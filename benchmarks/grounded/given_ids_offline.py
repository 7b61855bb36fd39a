"""What the runtime decides, without any model, for every message of the grounded
suites that gives an identifier (issue 20, fifth round; copilot/given_ids.py).

    python benchmarks/grounded/given_ids_offline.py [--suites fresh3 fresh2 ...]

For each case whose question (or an earlier user turn of a follow-up case) holds an id
of the starter's or the helpdesk's tools: how it reads (copilot/user_intent.py), the
tools the message asks for (`wanted`: empty when it asks how things work), the tool
chosen (`choose`, with the shared local embedder, the copilot's own) and why, and the
similarity of the message to each tool; then, per suite, the cases whose expected
call is the one chosen, and the knowledge questions left to the model. The tools are
the example's own (the starter template's tools/sample.py, the helpdesk's
tools/tickets.py); the decision does not depend on a model, so this holds for any.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "src"))

from pilothouse.copilot import given_ids  # noqa: E402
from pilothouse.copilot.user_intent import named_tools, read  # noqa: E402
from pilothouse.knowledge.local_embedder import shared_minilm  # noqa: E402
from pilothouse.tools.base import Tool  # noqa: E402

_ID = re.compile(r"\b[A-Za-z]{2}-\d{4}\b")
TOOL_FILES = {
    "starter": ROOT / "src/pilothouse/copilot/templates/starter/tools/sample.py",
    "helpdesk": ROOT / "examples/helpdesk/tools/tickets.py",
}


def _tools(name: str) -> list[Tool]:
    spec = importlib.util.spec_from_file_location(f"_{name}_tools", TOOL_FILES[name])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [v for v in vars(module).values() if isinstance(v, Tool)]


def _messages(suite: str) -> list[tuple[str, str, str, str]]:
    """(copilot, case id, message, expected tool or 'knowledge') for each message
    with an id; an earlier turn's expectation when the suite gives one."""
    found: list[tuple[str, str, str, str]] = []
    if suite.startswith("followups"):
        path = HERE / f"{suite.replace('followups', 'followups-fresh')}.yaml"
        both = yaml.safe_load(path.read_text())
        docs = [(name, doc["cases"]) for name, doc in both.items()]
    else:
        docs = [
            (name, yaml.safe_load((HERE / f"{name}-{suite}.yaml").read_text())["cases"])
            for name in ("starter", "helpdesk")
        ]
    for name, cases in docs:
        for case in cases:
            turns = [t for t in case.get("conversation", []) if "user" in t]
            for turn in turns[:1] if not case.get("conversation") else turns:
                if _ID.search(turn["user"]):
                    wanted = [c["name"] for c in turn.get("expect", {}).get("tool_calls", [])]
                    earlier = (name, case["id"] + "/earlier", turn["user"], (wanted or ["?"])[0])
                    found.append(earlier)
            if case.get("conversation") or not _ID.search(case["question"]):
                continue
            calls = [c["name"] for c in case["expect"].get("tool_calls", [])]
            found.append((name, case["id"], case["question"], calls[0] if calls else "knowledge"))
    return found


async def run(suites: list[str]) -> None:
    embedder = shared_minilm()
    tools = {name: _tools(name) for name in TOOL_FILES}
    for suite in suites:
        right = total = 0
        print(f"\n{suite}")
        for copilot, case, message, expected in _messages(suite):
            offered = tools[copilot]
            reading = read(message, [], offered)
            named = named_tools(message, offered) if reading == "request" else set()
            wanted = given_ids.wanted(message, reading, offered, named)
            chosen: Any = None
            why, near = "model decides (asks how it works)", {}
            if wanted:
                choice = await given_ids.choose(message, wanted, embedder)
                chosen, why, near = choice.tool, choice.why, choice.similarities
            got = chosen.name if chosen is not None else "knowledge"
            ok = got == expected or expected == "?"
            right += ok
            total += 1
            shown = " ".join(f"{k}={v:.2f}" for k, v in near.items())
            mark = "ok " if ok else "NO "
            print(f"  {mark} {case:38s} {expected:15s} -> {got:15s} {why:8s} {shown}")
        print(f"  {right} of {total} as expected")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--suites", nargs="+", default=["fresh3", "fresh2", "fresh", "heldout", "followups"]
    )
    asyncio.run(run(parser.parse_args().suites))


if __name__ == "__main__":
    main()
