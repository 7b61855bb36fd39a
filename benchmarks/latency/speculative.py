"""Speculative decoding on the embedded 1.5B: the same grounded requests on servers
loaded without it, with an n-gram draft (no second model), and with the 0.5B as the
draft model, in one process, alternately (issue 21 item 5).

    python benchmarks/latency/run.py -m local:qwen2.5-coder-1.5b --modes warm \\
        --followups "" --out /tmp/latency.json        # the requests (warm payloads)
    python benchmarks/latency/speculative.py --payloads /tmp/latency.json \\
        --weights ~/.local/share/pilothouse/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf \\
        --draft /path/to/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf

Per request and server: the first asking with the prompt cache bypassed (time to the
first content chunk: what a draft model's own prefill adds), then the same request
again with the cache (one new token: decode speed alone), and whether the answer is
the same text (greedy decoding: speculation must not change it). The servers are the
runtime's own (`load_xllamacpp`), the speculative ones with `params.speculative` set.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from pilothouse.config import LocalSettings
from pilothouse.models.local.runtime import load_xllamacpp


def load(weights: Path, kind: str, draft: Path | None) -> Any:
    """A server for `weights`: kind "none", "ngram" or "draft"."""
    import xllamacpp

    original = xllamacpp.Server
    types = xllamacpp.common_speculative_type

    def server(params: Any) -> Any:
        if kind == "ngram":
            params.speculative.types = [types.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE]
        elif kind == "draft":
            assert draft is not None
            params.speculative.types = [types.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE]
            params.speculative.draft.mparams.path = str(draft)
        return original(params)

    xllamacpp.Server = server
    try:
        return load_xllamacpp(weights, LocalSettings(parallel=1))
    finally:
        xllamacpp.Server = original


def ask(server: Any, payload: dict[str, Any], cached: bool) -> dict[str, Any]:
    body = {**payload, "cache_prompt": cached}
    started = time.perf_counter()
    out: dict[str, Any] = {"first_s": None, "text": "", "timings": {}}

    def observe(chunk: dict[str, Any]) -> bool:
        for choice in chunk.get("choices") or ():
            text = (choice.get("delta") or {}).get("content")
            if text:
                if out["first_s"] is None:
                    out["first_s"] = time.perf_counter() - started
                out["text"] += text
        if isinstance(chunk.get("timings"), dict):
            out["timings"] = chunk["timings"]
        return False

    server.handle_chat_completions(body, observe)
    out["total_s"] = time.perf_counter() - started
    t = out["timings"]
    predicted_ms = float(t.get("predicted_ms", 0.0))
    tokens = int(t.get("predicted_n", 0))
    out["decode_tps"] = tokens / (predicted_ms / 1000) if predicted_ms else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payloads", type=Path, required=True)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--draft", type=Path, default=None)
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    data = json.loads(args.payloads.read_text())
    samples = data["results"][0]["samples"]
    payloads = [
        (s["case"], s["payloads"][0])
        for s in samples
        if s["mode"] == "warm" and len(s.get("payloads") or []) == 1 and not s["tools"]
    ][: args.cases]
    kinds = ["none", "ngram"] + (["draft"] if args.draft else [])
    servers = {kind: load(args.weights, kind, args.draft) for kind in kinds}
    rows: list[dict[str, Any]] = []
    for index, (case, payload) in enumerate(payloads):
        order = kinds[index % len(kinds) :] + kinds[: index % len(kinds)]
        for kind in order:
            cold = ask(servers[kind], payload, cached=False)
            warm = ask(servers[kind], payload, cached=True)
            row = {
                "case": case,
                "kind": kind,
                "cold_first_s": cold["first_s"],
                "cold_total_s": cold["total_s"],
                "warm_first_s": warm["first_s"],
                "warm_total_s": warm["total_s"],
                "decode_tps": warm["decode_tps"],
                "tokens": warm["timings"].get("predicted_n"),
                "text": warm["text"],
                "load": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
            }
            rows.append(row)
            print(
                f"{case:28} {kind:6} cold first {row['cold_first_s'] or 0:5.1f} s "
                f"warm total {row['warm_total_s']:5.1f} s decode {row['decode_tps'] or 0:5.1f} "
                f"tok/s  load {row['load']}",
                flush=True,
            )
    print()
    plain = {r["case"]: r["text"] for r in rows if r["kind"] == "none"}
    for kind in kinds:
        mine = [r for r in rows if r["kind"] == kind]
        first = statistics.median(r["cold_first_s"] or 0.0 for r in mine)
        answer = statistics.median(r["warm_total_s"] for r in mine)
        decode = statistics.median(r["decode_tps"] or 0.0 for r in mine)
        same = sum(r["text"] == plain[r["case"]] for r in mine)
        print(
            f"{kind:6} n {len(mine)}: cold first token {first:.2f} s, warm answer "
            f"{answer:.2f} s, decode {decode:.1f} tok/s, same text as none {same} of {len(mine)}"
        )
    if args.out:
        args.out.write_text(json.dumps({"pid": os.getpid(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
