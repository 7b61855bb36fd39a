"""Latency of grounded answers on the embedded model: the helpdesk suite's questions
through the real copilot runtime, per question and per step, against raw xllamacpp on
the same prompts in the same process.

    python benchmarks/latency/run.py -m local:qwen2.5-coder-1.5b -m local:qwen2.5-coder-0.5b \
        --out /tmp/latency.json
    python benchmarks/latency/run.py --table /tmp/latency.json            # the tables again
    python benchmarks/latency/run.py --table before.json after.json       # side by side

For each model, in one process (the weights loaded once):

- warm: each question in a new conversation, the copilot already opened and used (its
  stable prompt prefix may be cached, as for a user's second question);
- cold: the same questions with the runtime's prompt cache bypassed (`cache_prompt`
  false on every request: every prompt token processed; an answer's second request,
  which carries the first one's reply start on, is sent cached: it reads only what the
  turn itself computed, copilot/answer_opening.py), each followed (or preceded,
  alternately) by the same requests sent straight to xllamacpp, also uncached: raw
  throughput against Pilothouse's on identical prompts;
- follow-up: a question, then its follow-up in the same conversation, once with the
  cache bypassed (cold) and once normally ("again", "followup"); "again" is the opening
  question asked a second time in a new conversation, but its first asking bypassed
  the cache, so it finds only what any new conversation finds; with `--think 0,5,15`
  the warm pair is asked once per think time, the follow-up that many seconds after
  the answer ended (modes followup, followup-5s, followup-15s: the user read the
  answer meanwhile, and the runtime read ahead, copilot/passages_ahead.py); the TTFT
  is from the question's arrival, and a read-ahead still running then is shown
  (`ahead`, its `late_s`). The cold pair reads nothing ahead;
- with `--passage-budget N`: each question also through a second copilot whose model
  profile cuts the passages to N tokens, on the same weights, alternately first
  (modes "plain" and "budget-N").

Before all of them a primer question that is not measured opens the copilot's cache.

Per question: prompt tokens, tokens reused from the cache, time to first answer token,
decode tokens/s, total, and the time of each step: retrieval, preparing the prompt
(memory, retrieval aside, rendering), prefill and decode (the server's own timings),
tools, and the rest (Pilothouse's own work while the model streams, recording).

The requests are observed by wrapping the runtime's `ChatServer` (the xllamacpp server
object): the benchmark gives the model a `RuntimeRegistry` whose factory wraps it.
Everything else is the product's code path. The data directory is `--home` (default
/tmp/pilothouse-latency; the knowledge index is kept between runs); the weights come
from each `--weights-dir` (default: the data directory's models folder).
State the machine's load with the figures: it is printed with every sample.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pilothouse.config import LocalSettings, default_home
from pilothouse.copilot.copilot import Copilot
from pilothouse.copilot.events import (
    ApprovalRequired,
    Retrieved,
    RunFailed,
    RunFinished,
    ToolCallFinished,
)
from pilothouse.copilot.tool_runner import Decision
from pilothouse.models.local.model import LocalModel
from pilothouse.models.local.runtime import RuntimeRegistry, load_xllamacpp
from pilothouse.models.registry import create_model
from pilothouse.pipeline.suite import Case, load_suite
from pilothouse.storage import load_settings
from pilothouse.types import Message, TextDelta

ROOT = Path(__file__).resolve().parents[2]
HELPDESK = ROOT / "examples" / "helpdesk"
# A representative subset (the whole suite with --cases all): handbook questions from
# each document type, a not-covered question, a question that sounds like a request,
# and ticket requests that become tool calls.
DEFAULT_CASES = (
    "vpn-client-and-server",
    "password-length",
    "printer-floor-4",
    "sla-p2-response",
    "outlook-search-known-issue",
    "developer-laptop",
    "lost-laptop-deadline",
    "first-day-laptop-pickup",
    "trap-locked-out",
    "not-covered-annual-leave",
    "ticket-status",
    "open-ticket-monitor",
)
DEFAULT_FOLLOWUPS = ("followup-vpn-idle", "followup-printer-floor-5")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def cpu_s() -> float:
    """CPU seconds of this process so far (all threads: llama.cpp's included)."""
    times = os.times()
    return times.user + times.system


# --- observing the runtime -----------------------------------------------------------


@dataclass
class Call:
    """One request the runtime sent to llama.cpp."""

    started: float
    ended: float = 0.0
    first: float | None = None
    """When the first content chunk came."""
    timings: dict[str, Any] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def prompt_tokens(self) -> int:
        return int(self.timings.get("prompt_n", 0)) + int(self.timings.get("cache_n", 0))

    @property
    def cached(self) -> int:
        return int(self.timings.get("cache_n", 0))

    def row(self) -> dict[str, Any]:
        return {
            "wall_s": self.ended - self.started,
            "first_s": None if self.first is None else self.first - self.started,
            "prompt_tokens": self.prompt_tokens,
            "cached": self.cached,
            "prefill_s": float(self.timings.get("prompt_ms", 0.0)) / 1000,
            "decode_s": float(self.timings.get("predicted_ms", 0.0)) / 1000,
            "output_tokens": int(self.timings.get("predicted_n", 0)),
        }


def continues(previous: dict[str, Any] | None, payload: dict[str, Any]) -> bool:
    """Whether `payload` carries `previous` on: the same messages but the final
    assistant message, which it extends (an answer's opening written after the sources
    the model chose, copilot/answer_opening.py). A cold turn sends it cached: it reads
    only what this turn itself computed."""
    if previous is None:
        return False
    before, now = previous.get("messages") or [], payload.get("messages") or []
    if not before or len(before) != len(now) or before[:-1] != now[:-1]:
        return False
    last, then = before[-1], now[-1]
    return last.get("role") == then.get("role") == "assistant" and str(
        then.get("content", "")
    ).startswith(str(last.get("content", "")))


def _has_content(chunk: dict[str, Any]) -> bool:
    return any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or ())


class Probe:
    """The runtime's server, observed: every chat completion is recorded (with the
    server's timings); `cold` makes every request bypass the prompt cache."""

    def __init__(self, server: Any):
        self.server = server
        self.cold = False
        self.calls: list[Call] = []
        self.ahead: list[Call] = []
        """Requests that read ahead (one token asked for: the stable prefix, the next
        turn's start while the user reads), kept apart from the turns' own."""
        self.last: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.server, name)

    def _call(self, payload: dict[str, Any], callback: Callable[[dict[str, Any]], bool]) -> Call:
        call = Call(time.perf_counter(), payload=json.loads(json.dumps(payload)))
        body = dict(payload)
        if self.cold and not continues(self.last, payload):
            body["cache_prompt"] = False
        self.last = payload

        def observe(chunk: dict[str, Any]) -> bool:
            if call.first is None and _has_content(chunk):
                call.first = time.perf_counter()
            if isinstance(chunk.get("timings"), dict):
                call.timings = chunk["timings"]
            return callback(chunk)

        try:
            self.server.handle_chat_completions(body, observe)
        finally:
            call.ended = time.perf_counter()
        return call

    def handle_chat_completions(
        self, payload: dict[str, Any], callback: Callable[[dict[str, Any]], bool]
    ) -> Any:
        if payload.get("max_tokens") == 1:  # a read-ahead: not a turn's request
            self.ahead.append(Call(time.perf_counter()))
            call = self.ahead[-1]
            saved = self.last
            try:
                done = self._call(payload, callback)
            finally:
                self.last = saved
            call.ended, call.first, call.timings = done.ended, done.first, done.timings
            return
        self.calls.append(self._call(payload, callback))

    def raw(self, payload: dict[str, Any], *, cold: bool) -> Call:
        """`payload` sent straight to xllamacpp (what Pilothouse adds: nothing)."""
        saved, self.cold = self.cold, cold
        try:
            return self._call(payload, lambda chunk: False)
        finally:
            self.cold = saved


# --- one question ----------------------------------------------------------------------


@dataclass
class Sample:
    model: str
    case: str
    mode: str
    question: str
    load: str
    total_s: float = 0.0
    ttft_s: float | None = None
    retrieval_s: float = 0.0
    tools_s: float = 0.0
    prepare_s: float = 0.0
    cpu_s: float = 0.0
    calls: list[dict[str, Any]] = field(default_factory=list)
    raw_calls: list[dict[str, Any]] = field(default_factory=list)
    passages: int = 0
    status: str = ""
    answer: str = ""
    tools: list[str] = field(default_factory=list)
    payloads: list[dict[str, Any]] = field(default_factory=list)
    """The requests as sent (kept for the warm samples: the cold ones replay them raw)."""
    think_s: float = 0.0
    """How long the user read before asking (follow-ups: after the answer's end)."""
    ahead: list[dict[str, Any]] = field(default_factory=list)
    """The read-ahead requests since the question before (their rows, and `late_s`: how
    far one ran past this question's arrival)."""

    def total(self, key: str) -> float:
        """`key` of the model calls' rows (`Call.row`), summed."""
        return float(sum(c[key] for c in self.calls))

    @property
    def decode_tps(self) -> float | None:
        decode = self.total("decode_s")
        return self.total("output_tokens") / decode if decode > 0 else None

    @property
    def other_s(self) -> float:
        """Pilothouse's own time while answering: total minus retrieval, prompt
        preparation, the model calls and the tools."""
        return (
            self.total_s - self.retrieval_s - self.prepare_s - self.total("wall_s") - self.tools_s
        )

    @property
    def raw_ratio(self) -> float | None:
        """Raw xllamacpp's time on the same requests / Pilothouse's time for them
        (everything but retrieval and tools): Pilothouse's share of raw throughput."""
        if not self.raw_calls:
            return None
        raw = sum(c["wall_s"] for c in self.raw_calls)
        ours = self.total_s - self.retrieval_s - self.tools_s
        return raw / ours if ours > 0 else None


class Timer:
    """Wraps the copilot's knowledge search to time retrieval."""

    def __init__(self, copilot: Copilot):
        self.spent = 0.0
        self.ended: float | None = None
        knowledge = copilot.knowledge
        if knowledge is None:
            return
        search = knowledge.search

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await search(*args, **kwargs)
            finally:
                self.ended = time.perf_counter()
                self.spent += self.ended - started

        knowledge.search = timed  # type: ignore[method-assign]

    def reset(self) -> None:
        self.spent, self.ended = 0.0, None


async def ask(
    copilot: Copilot,
    probe: Probe,
    timer: Timer,
    model: str,
    case: str,
    mode: str,
    question: str,
    conversation_id: str | None,
    since: float | None = None,
) -> tuple[Sample, str]:
    """Ask one question (tool calls needing approval are denied, as in evals). The
    read-ahead requests started from `since` (default: the question's arrival) to the
    answer's end are the sample's `ahead`."""
    sample = Sample(model, case, mode, question, loadavg())
    timer.reset()
    first_call = len(probe.calls)
    cpu_started = cpu_s()
    started = time.perf_counter()
    events = copilot.stream(question, conversation_id=conversation_id)
    conversation = conversation_id or ""
    for _ in range(5):
        pending: ApprovalRequired | None = None
        async for event in events:
            if isinstance(event, TextDelta) and event.text and sample.ttft_s is None:
                sample.ttft_s = time.perf_counter() - started
            elif isinstance(event, Retrieved):
                sample.passages = len(event.passages)
            elif isinstance(event, ToolCallFinished):
                sample.tools_s += event.outcome.duration_s
                sample.tools.append(event.outcome.call.name)
            elif isinstance(event, ApprovalRequired):
                pending = event
            elif isinstance(event, RunFinished | RunFailed):
                sample.status = event.answer.status
                sample.answer = event.answer.text
                conversation = event.answer.conversation_id
        if pending is None:
            break
        denied = {p.call.id: Decision(False, "denied by the benchmark") for p in pending.pending}
        events = copilot.resume(pending.pending[0].run_id, denied)
    sample.total_s = time.perf_counter() - started
    sample.cpu_s = cpu_s() - cpu_started
    sample.ahead = [
        {**c.row(), "late_s": max(0.0, c.ended - started)}
        for c in probe.ahead
        if (since if since is not None else started) <= c.started <= started + sample.total_s
    ]
    calls = probe.calls[first_call:]
    sample.calls = [c.row() for c in calls]
    sample.payloads = [c.payload for c in calls]
    sample.retrieval_s = timer.spent
    if calls:
        sample.prepare_s = max(0.0, calls[0].started - started - timer.spent)
    return sample, conversation


async def seed(copilot: Copilot, case: Case) -> str | None:
    if not case.conversation:
        return None
    conversation = await copilot.conversations.create(copilot.name, {"benchmark": case.id})
    await copilot.conversations.append(
        conversation.id,
        [
            Message.user(t.text) if t.role == "user" else Message.assistant(t.text)
            for t in case.conversation
        ],
    )
    return conversation.id


# --- one model -------------------------------------------------------------------------


def report(sample: Sample) -> None:
    ttft = "-" if sample.ttft_s is None else f"{sample.ttft_s:6.1f}"
    ratio = "" if sample.raw_ratio is None else f" raw/ours {sample.raw_ratio:.2f}"
    print(
        f"  {sample.mode:9} {sample.case:32} prompt {sample.total('prompt_tokens'):5.0f} "
        f"cached {sample.total('cached'):5.0f} ttft {ttft} total {sample.total_s:6.1f} "
        f"[{sample.status}{' ' + ','.join(sample.tools) if sample.tools else ''}]"
        f"{ratio}  load {sample.load}",
        flush=True,
    )


async def bench_model(
    model_id: str,
    cases: list[Case],
    followups: list[Case],
    primer: Case,
    args: argparse.Namespace,
) -> dict[str, Any]:
    settings = load_settings(args.home)
    if args.threads is not None:
        settings = settings.model_copy(
            update={
                "local": LocalSettings(**{**settings.local.model_dump(), "threads": args.threads})
            }
        )
    probes: list[Probe] = []

    def factory(path: Path, local: LocalSettings) -> Any:
        probe = Probe(load_xllamacpp(path, local))
        probes.append(probe)
        return probe

    model = create_model(model_id, settings)
    if not isinstance(model, LocalModel):
        raise SystemExit(f"{model_id} is not an embedded model")
    model.runtimes = RuntimeRegistry(factory)
    if args.read_ahead is not None:  # the profile's read_ahead (copilot/passages_ahead.py)
        model.profile = replace(model.profile, read_ahead=args.read_ahead)
    started = time.perf_counter()
    copilot = await Copilot.open(HELPDESK, settings=settings, models=[model])
    open_s = time.perf_counter() - started
    started = time.perf_counter()
    runtime = await model.runtime()
    load_s = time.perf_counter() - started
    probe = probes[0]
    timer = Timer(copilot)
    samples: list[Sample] = []
    cut: tuple[Copilot, Timer] | None = None
    if args.passage_budget:  # the same weights behind a profile with a passage budget
        other = create_model(model_id, settings)
        assert isinstance(other, LocalModel)
        other.profile = replace(other.profile, passage_budget=args.passage_budget)
        other.runtimes = model.runtimes
        budgeted = await Copilot.open(HELPDESK, settings=settings, models=[other])
        cut = (budgeted, Timer(budgeted))

    def keep(sample: Sample) -> None:
        samples.append(sample)
        report(sample)
        if args.out:  # what is measured so far survives an interrupted run
            partial = args.out.with_suffix(".partial.json")
            partial.write_text(json.dumps([asdict(s) for s in samples], indent=1))

    print(
        f"{model_id}: threads {runtime.settings.threads}, open {open_s:.1f} s, "
        f"load {load_s:.1f} s, load average {loadavg()}",
        flush=True,
    )

    async def suite_case(case: Case, mode: str) -> Sample:
        conversation = await seed(copilot, case)
        sample, _ = await ask(
            copilot, probe, timer, model_id, case.id, mode, case.question, conversation
        )
        return sample

    try:
        # The copilot opened and used once (with a question that is not measured
        # again, so no measured prompt is cached whole): what later questions find.
        first, _ = await ask(
            copilot, probe, timer, model_id, primer.id, "first", primer.question, None
        )
        keep(first)
        payloads: dict[str, list[dict[str, Any]]] = {}
        if "warm" in args.modes:
            for case in cases:
                before = len(probe.calls)
                sample = await suite_case(case, "warm")
                payloads[case.id] = [c.payload for c in probe.calls[before:]]
                sample.payloads = payloads[case.id]
                keep(sample)
        if cut is not None:  # each case without and with the budget, alternately first
            label = f"budget-{args.passage_budget}"
            for index, case in enumerate(cases):
                pair = [(copilot, timer, "plain"), (*cut, label)]
                for asker, watch, mode in pair if index % 2 == 0 else pair[::-1]:
                    conversation = await seed(asker, case)
                    sample, _ = await ask(
                        asker, probe, watch, model_id, case.id, mode, case.question, conversation
                    )
                    keep(sample)
        if "cold" in args.modes:
            for index, case in enumerate(cases):
                raw_first = index % 2 == 1 and case.id in payloads
                raw: list[Call] = []
                if raw_first:
                    raw = [probe.raw(p, cold=True) for p in payloads[case.id]]
                probe.cold = True
                before = len(probe.calls)
                try:
                    sample = await suite_case(case, "cold")
                finally:
                    probe.cold = False
                if not raw_first:
                    raw = [probe.raw(c.payload, cold=True) for c in probe.calls[before:]]
                sample.raw_calls = [c.row() for c in raw]
                keep(sample)
        if "followup" in args.modes:
            for case in followups:
                opening = next(t.text for t in case.conversation if t.role == "user")
                # Cold once (nothing read ahead: the cache is bypassed), then warm after
                # each think time: the follow-up asked that long after the answer ended.
                for think in [None, *args.think]:
                    cold = think is None
                    probe.cold = cold
                    forget_vectors(copilot)
                    reading = set_read_ahead(copilot, not cold)
                    suffix = "" if cold or think == 0 else f"-{think:g}s"
                    opened = time.perf_counter()
                    try:
                        one, conversation = await ask(
                            copilot,
                            probe,
                            timer,
                            model_id,
                            case.id,
                            "first-cold" if cold else f"again{suffix}",
                            opening,
                            None,
                        )
                        await asyncio.sleep(think or 0)
                        two, _ = await ask(
                            copilot,
                            probe,
                            timer,
                            model_id,
                            case.id,
                            "follow-cold" if cold else f"followup{suffix}",
                            case.question,
                            conversation,
                            since=opened,
                        )
                        two.think_s = think or 0.0
                    finally:
                        probe.cold = False
                        set_read_ahead(copilot, reading)
                    keep(one)
                    keep(two)
    finally:
        await copilot.aclose()
        if cut is not None:
            await cut[0].aclose()
        model.runtimes.unload_all()
    return {
        "model": model_id,
        "threads": runtime.settings.threads,
        "open_s": open_s,
        "load_s": load_s,
        "samples": [{**asdict(s), "derived": derived(s)} for s in samples],
    }


def set_read_ahead(copilot: Copilot, on: bool) -> bool:
    """Switch the runtime's reading ahead after a turn (copilot/passages_ahead.py) on or
    off; what it was (code without it: False, nothing to switch)."""
    runtime = copilot.runtime
    was = bool(getattr(runtime, "reads_ahead", False))
    if hasattr(runtime, "reads_ahead"):
        runtime.reads_ahead = on
    return was


def forget_vectors(copilot: Copilot) -> None:
    """Empty the knowledge base's in-memory vectors (knowledge/recent_embeddings.py),
    so a conversation's follow-up finds only those of its own first turn, not the same
    follow-up's from the pass before (older code has none to empty)."""
    recent = getattr(copilot.knowledge, "recent", None)
    if recent is not None:
        recent.clear()


def derived(sample: Sample) -> dict[str, Any]:
    return {
        "prompt_tokens": int(sample.total("prompt_tokens")),
        "cached": int(sample.total("cached")),
        "prefill_s": sample.total("prefill_s"),
        "decode_s": sample.total("decode_s"),
        "model_s": sample.total("wall_s"),
        "decode_tps": sample.decode_tps,
        "other_s": sample.other_s,
        "raw_ratio": sample.raw_ratio,
    }


# --- tables ----------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def load_range(result: dict[str, Any]) -> str:
    """The 1-minute load averages seen while the samples ran: lowest-highest."""
    loads = [float(s["load"].split()[0]) for s in result["samples"] if s["load"] != "n/a"]
    return f"{min(loads):.1f}-{max(loads):.1f}" if loads else "n/a"


def mode_table(result: dict[str, Any]) -> str:
    """Medians per mode, and the share of each step in the summed time."""
    lines = [
        f"**{result['model']}** (threads {result['threads']}, weights loaded in "
        f"{result['load_s']:.1f} s, machine load {load_range(result)})",
        "",
        "| mode | n | prompt tok | cached | new tok | TTFT s | decode tok/s | total s | "
        "retrieval | prepare | prefill | decode | tools | other | raw/ours |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    modes: dict[str, list[dict[str, Any]]] = {}
    for s in result["samples"]:
        modes.setdefault(s["mode"], []).append(s)
    for mode, rows in modes.items():
        d = [r["derived"] for r in rows]
        total = sum(r["total_s"] for r in rows) or 1.0

        def share(values: list[float], total: float = total) -> str:
            return f"{100 * sum(values) / total:.0f}%"

        lines.append(
            f"| {mode} | {len(rows)} | {_fmt(_median([x['prompt_tokens'] for x in d]), '.0f')} "
            f"| {_fmt(_median([x['cached'] for x in d]), '.0f')} "
            f"| {_fmt(_median([x['prompt_tokens'] - x['cached'] for x in d]), '.0f')} "
            f"| {_fmt(_median([r['ttft_s'] for r in rows]))} "
            f"| {_fmt(_median([x['decode_tps'] for x in d]))} "
            f"| {_fmt(_median([r['total_s'] for r in rows]))} "
            f"| {share([r['retrieval_s'] for r in rows])} "
            f"| {share([r['prepare_s'] for r in rows])} "
            f"| {share([x['prefill_s'] for x in d])} "
            f"| {share([x['decode_s'] for x in d])} "
            f"| {share([r['tools_s'] for r in rows])} "
            f"| {share([x['other_s'] for x in d])} "
            f"| {_fmt(_median([x['raw_ratio'] for x in d]), '.2f')} |"
        )
    ratios = follow_ratios(result)
    if ratios:
        lines += [
            "",
            "TTFT ratios to cold (medians): "
            + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()),
        ]
    return "\n".join(lines)


def follow_ratios(result: dict[str, Any]) -> dict[str, float]:
    by: dict[tuple[str, str], float] = {}
    for s in result["samples"]:
        if s["ttft_s"] is not None:
            by[(s["mode"], s["case"])] = s["ttft_s"]
    out: dict[str, float] = {}
    pairs = {
        "follow-up": ("followup", "follow-cold"),
        **{
            f"follow-up after {mode.removeprefix('followup-')}": (mode, "follow-cold")
            for mode in dict.fromkeys(m for m, _ in by)
            if mode.startswith("followup-")
        },
        "same question again": ("again", "first-cold"),
        "new conversation": ("warm", "cold"),
    }
    for name, (mode, cold) in pairs.items():
        values = [
            by[(mode, case)] / by[(cold, case)]
            for (m, case) in by
            if m == mode and (cold, case) in by and by[(cold, case)] > 0
        ]
        if values:
            out[name] = statistics.median(values)
    return out


def case_table(result: dict[str, Any]) -> str:
    lines = [
        "| case | mode | prompt | cached | TTFT s | tok/s | total s | retr | prep | prefill "
        "| decode | tools | other | raw/ours | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result["samples"]:
        d = s["derived"]
        lines.append(
            f"| {s['case']} | {s['mode']} | {d['prompt_tokens']} | {d['cached']} "
            f"| {_fmt(s['ttft_s'])} | {_fmt(d['decode_tps'])} | {s['total_s']:.1f} "
            f"| {s['retrieval_s']:.2f} | {s['prepare_s']:.2f} | {d['prefill_s']:.1f} "
            f"| {d['decode_s']:.1f} | {s['tools_s']:.2f} | {d['other_s']:.2f} "
            f"| {_fmt(d['raw_ratio'], '.2f')} | {s['load']} |"
        )
    return "\n".join(lines)


def followup_table(result: dict[str, Any]) -> str:
    """Per follow-up and think time: new tokens, TTFT, its ratio to the cold follow-up,
    and what was read ahead before it (new tokens; how long past the question's arrival
    a read-ahead still ran)."""
    cold = {s["case"]: s for s in result["samples"] if s["mode"] == "follow-cold"}
    lines = [
        "| follow-up | mode | think s | new tok | TTFT s | cold TTFT s | ratio "
        "| read ahead: new tok | ran past the question s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result["samples"]:
        if not s["mode"].startswith("followup") or s["case"] not in cold:
            continue
        d, c = s["derived"], cold[s["case"]]
        ratio = s["ttft_s"] / c["ttft_s"] if s["ttft_s"] and c["ttft_s"] else None
        ahead = s.get("ahead", [])
        lines.append(
            f"| {s['case'].removeprefix('followup-')} | {s['mode']} | {s.get('think_s', 0):g} "
            f"| {d['prompt_tokens'] - d['cached']} | {_fmt(s['ttft_s'])} "
            f"| {_fmt(c['ttft_s'])} | {_fmt(ratio, '.2f')} "
            f"| {sum(a['prompt_tokens'] - a['cached'] for a in ahead)} "
            f"| {_fmt(max((a['late_s'] for a in ahead), default=0.0))} |"
        )
    return "\n".join(lines)


def tables(paths: list[Path], per_case: bool) -> None:
    for path in paths:
        data = json.loads(path.read_text())
        print(f"## {path.name} ({data.get('commit', '?')}, {data.get('date', '')})\n")
        for result in data["results"]:
            print(mode_table(result) + "\n")
            if per_case:
                print(case_table(result) + "\n")
            if any(s["mode"] == "follow-cold" for s in result["samples"]):
                print(followup_table(result) + "\n")


# --- main ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-m", "--model", action="append", default=[])
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES), help="ids, or 'all'")
    parser.add_argument("--followups", default=",".join(DEFAULT_FOLLOWUPS))
    parser.add_argument("--modes", default="warm,cold,followup")
    parser.add_argument("--threads", type=int, default=None, help="override [local] threads")
    parser.add_argument(
        "--think",
        default="0",
        help="follow-ups: seconds the user reads before asking (comma-separated: each "
        "a warm pair of its own, modes followup, followup-5s, ...)",
    )
    parser.add_argument(
        "--read-ahead",
        type=int,
        default=None,
        help="the model profile's read_ahead (tokens of the rest of a turn's passages "
        "kept for the next turn and read while the user reads); default: the profile's",
    )
    parser.add_argument(
        "--passage-budget",
        type=int,
        default=None,
        help="also ask each case through a copilot whose model profile has this passage "
        "budget (tokens), alternately first, on the same loaded weights",
    )
    parser.add_argument("--home", type=Path, default=Path("/tmp/pilothouse-latency"))
    parser.add_argument("--weights-dir", type=Path, action="append", default=[])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--table", type=Path, nargs="+", help="print the tables of result files")
    parser.add_argument("--per-case", action="store_true")
    args = parser.parse_args()
    if args.table:
        tables(args.table, args.per_case)
        return
    args.modes = set(args.modes.split(","))
    args.think = [float(t) for t in args.think.split(",") if t.strip()]
    suite = {c.id: c for c in load_suite(HELPDESK / "evals" / "basic.yaml").cases}
    wanted = list(suite) if args.cases == "all" else args.cases.split(",")
    cases = [suite[c] for c in wanted if c and not suite[c].conversation]
    followups = [suite[c] for c in args.followups.split(",") if c]
    used = {c.id for c in cases} | {c.id for c in followups}
    primer = next(c for c in suite.values() if c.id not in used and not c.conversation)
    models_dir = args.home / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    for weights in args.weights_dir or [default_home(os.environ) / "models"]:
        for file in weights.glob("*.gguf*"):
            link = models_dir / file.name
            if not link.exists():
                link.symlink_to(file.resolve())
    commit = os.popen(f"git -C {ROOT} rev-parse --short HEAD").read().strip()
    results = [
        asyncio.run(bench_model(m, cases, followups, primer, args))
        for m in (args.model or ["local:qwen2.5-coder-1.5b"])
    ]
    data = {"commit": commit, "date": time.strftime("%Y-%m-%d %H:%M"), "results": results}
    if args.out:
        args.out.write_text(json.dumps(data, indent=1))
    for result in results:
        print("\n" + mode_table(result))
        if any(s["mode"] == "follow-cold" for s in result["samples"]):
            print("\n" + followup_table(result))


if __name__ == "__main__":
    main()
