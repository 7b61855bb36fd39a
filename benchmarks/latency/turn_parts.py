"""What a follow-up reads anew, by part: the helpdesk suite's follow-ups through the real
copilot runtime with a scripted model on an embedded model's profile (no weights), the
follow-up's new user turn split into its passages (at a new place; the rest of a
passage given above), the "given above" line, the question, the follow-up note and the
step, and the message read ahead before it (with `--read-ahead`,
copilot/passages_ahead.py). Tokens are `ApproximateCounter`'s (within a few percent
of llama.cpp's here).

    python benchmarks/latency/turn_parts.py --home /tmp/turn-parts [--dump turns.json] \
        [--read-ahead 240]

The knowledge index is built in `--home` on the first run (kept after).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from dataclasses import replace
from pathlib import Path

from pilothouse.config import Settings
from pilothouse.copilot import Copilot
from pilothouse.copilot.passages_ahead import HEADING, Reading
from pilothouse.knowledge.tokens import ApproximateCounter
from pilothouse.models import FunctionModel
from pilothouse.models.profiles import profile_for
from pilothouse.pipeline.suite import load_suite
from pilothouse.types import ModelRequest

ROOT = Path(__file__).resolve().parents[2]
COUNT = ApproximateCounter().count
BLOCK = re.compile(
    r"^\[(\d+)\] \((.*?)\)\n(.*?)(?=\n\n\[\d+\] \(|\n\nQuestion:|\n\nAlso |\Z)", re.M | re.S
)
COLUMNS = (
    "read ahead",
    "new turn",
    "passages at a new place",
    "rest of a passage above",
    '"given above" line',
    '"Passages from..."',
    "question",
    "note, fixed words",
    "note, quoted question",
    "step",
)


class Here(FunctionModel):
    """The scripted model, computing in this process as the embedded one does (so the
    runtime reads ahead after a turn: copilot/passages_ahead.py)."""

    def runs_here(self) -> bool:
        return True


def reply(request: ModelRequest) -> str:
    """A model that answers from passage [1] (and decides to answer)."""
    if request.max_output_tokens == 1:  # a read ahead
        return " "
    last = request.messages[-1]
    if last.role == "assistant":  # the answer opening's continuation
        return "1]" if last.text.endswith("[") else 'The answer is in the passage [1]."}'
    step = last.text.rsplit("\n", 1)[-1]
    if step.startswith("Step: decide"):
        return json.dumps({"decision": "answer"})
    if step.startswith("Step: arguments"):
        return "{}"
    return '{"sources": [1], "answer": "The answer is in the passage [1]."}'


def parts(turn: str, above: set[str], ahead: str) -> list[int]:
    fresh = rest = 0
    for match in BLOCK.finditer(turn):
        if match.group(2) in above:
            rest += COUNT(match.group(0))
        else:
            fresh += COUNT(match.group(0))
    given = sum(COUNT(x) for x in re.findall(r"(?:Also )?\[\d+\] \([^\n]*given above\.", turn))
    question = re.search(r"^Question: .*$", turn, re.M)
    note = re.search(r"^This follows the earlier .*$", turn, re.M)
    quoted = sum(COUNT(x) for x in re.findall(r'"[^"]*"', note.group(0))) if note else 0
    step = re.search(r"^Step: .*$", turn, re.M)
    return [
        COUNT(ahead),
        COUNT(turn),
        fresh,
        rest,
        given,
        COUNT("Passages from the knowledge base:") if turn.startswith("Passages from") else 0,
        COUNT(question.group(0)) if question else 0,
        (COUNT(note.group(0)) - quoted) if note else 0,
        quoted,
        COUNT(step.group(0)) if step else 0,
    ]


async def follow_ups(
    home: Path, model_id: str, read_ahead: int | None = None
) -> tuple[list[tuple[str, list[int]]], dict[str, str]]:
    """Each follow-up's parts, and its new user turn."""
    requests: list[ModelRequest] = []

    def scripted(request: ModelRequest) -> str:
        requests.append(request)
        return reply(request)

    settings = Settings.from_sources(home=home, environ={})
    profile = profile_for(model_id)
    if read_ahead is not None:
        profile = replace(profile, read_ahead=read_ahead)
    model = Here(scripted, model_id=model_id, profile=profile)
    Reading.DELAY = 0.0  # read at once: the follow-up waits for it (read_ahead_done)
    suite = load_suite(ROOT / "examples/helpdesk/evals/basic.yaml")
    copilot = await Copilot.open(ROOT / "examples/helpdesk", settings=settings, models=[model])
    rows: list[tuple[str, list[int]]] = []
    turns: dict[str, str] = {}
    try:
        for case in suite.cases:
            if not case.conversation:
                continue
            opening = next(t.text for t in case.conversation if t.role == "user")
            requests.clear()
            first = await copilot.ask(opening)
            await read_ahead_done(requests)
            requests[:] = [r for r in requests if r.max_output_tokens != 1]
            count = len(requests)
            await copilot.ask(case.question, conversation_id=first.conversation_id)
            above = {
                m.group(2)
                for message in requests[count - 1].messages
                if message.role == "user"
                for m in BLOCK.finditer(message.text)
            }
            users = [m.text for m in requests[count].messages if m.role == "user"]
            turn = users[-1]
            ahead = users[-2] if len(users) > 1 and users[-2].startswith(HEADING) else ""
            turns[case.id] = (ahead + "\n\n----\n\n" if ahead else "") + turn
            rows.append((case.id.removeprefix("followup-"), parts(turn, above, ahead)))
    finally:
        await copilot.aclose()
    return rows, turns


async def read_ahead_done(requests: list[ModelRequest]) -> None:
    """Wait until the turn's read ahead, if one starts, has been read (the follow-up is
    then asked as by a user who read the answer first: it holds the message)."""
    for _ in range(100):
        await asyncio.sleep(0.02)
        if any(r.max_output_tokens == 1 for r in requests):
            await asyncio.sleep(0.1)  # the scripted reply is instant; the read stores it
            return


def main(home: Path, model_id: str, dump: Path | None, read_ahead: int | None) -> None:
    rows, turns = asyncio.run(follow_ups(home, model_id, read_ahead))
    print("| follow-up | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name, counts in rows:
        print(f"| {name} | " + " | ".join(map(str, counts)) + " |")
    if dump is not None:
        dump.write_text(json.dumps(turns, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path("/tmp/pilothouse-turn-parts"))
    parser.add_argument("-m", "--model", default="local:qwen2.5-coder-1.5b")
    parser.add_argument("--dump", type=Path, default=None, help="the follow-ups' new turns")
    parser.add_argument("--read-ahead", type=int, default=None, help="the profile's read_ahead")
    args = parser.parse_args()
    main(args.home, args.model, args.dump, args.read_ahead)
