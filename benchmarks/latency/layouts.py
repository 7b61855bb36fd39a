"""Prefill and decode speed of quantisation layouts of the same weights, side by side
in one process: each GGUF loaded with the runtime's own settings (`[local]` defaults:
2 threads), the same grounded prompts (helpdesk handbook pages as passages, a
question) sent to each in turn with the prompt cache bypassed, alternating which goes
first; llama.cpp's own timings give prompt and decode tokens/s.

    python benchmarks/latency/requant.py SHIPPED.gguf /tmp/q4_0.gguf --type Q4_0
    python benchmarks/latency/layouts.py SHIPPED.gguf /tmp/q4_0.gguf --rounds 3
    python benchmarks/latency/layouts.py SHIPPED.gguf SHIPPED.gguf@threads=1 \
        SHIPPED.gguf@ubatch=256 SHIPPED.gguf@repack=1

A `@key=value,...` suffix loads the same file with other llama.cpp settings, for
measuring them side by side: threads, batch (n_batch), ubatch (n_ubatch), repack
(1: llama.cpp's run-time weight repacking, its default; 0: the weights as stored,
the runtime's default: `[local] repack`), flash (flash
attention: -1 auto, 0 off, 1 on), poll (the thread pool's busy-wait level, 0-100),
plain (a regular expression: the tensors it matches are left as stored, not repacked;
the others are repacked as usual).

State the machine's load with the figures (printed with every sample).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from pilothouse.config import LocalSettings
from pilothouse.models.local.runtime import load_xllamacpp, openmp_environment

HANDBOOK = Path(__file__).resolve().parents[2] / "examples" / "helpdesk" / "knowledge"
QUESTIONS = (
    "How do I connect to the VPN from home?",
    "Where is the printer on floor 4?",
    "How long must my password be?",
)


def prompts(chars: int) -> list[dict[str, Any]]:
    pages = sorted(HANDBOOK.glob("*.md"))
    bodies = []
    for number, question in enumerate(QUESTIONS):
        page = pages[number % len(pages)]
        passages = page.read_text()[:chars]
        bodies.append(
            {
                "messages": [
                    {
                        "role": "system",
                        "content": "You are the IT helpdesk assistant. Answer only from the "
                        "passages, in one to three sentences, and cite them like [1].",
                    },
                    {
                        "role": "user",
                        "content": f"Passages:\n\n[1] ({page.name})\n{passages}\n\n"
                        f"Question: {question}",
                    },
                ],
                "temperature": 0.0,
                "max_tokens": 48,
                "cache_prompt": False,
                "stream": True,
            }
        )
    return bodies


def run(server: Any, body: dict[str, Any]) -> dict[str, float]:
    timings: dict[str, Any] = {}

    def observe(chunk: dict[str, Any]) -> bool:
        if isinstance(chunk.get("timings"), dict):
            timings.update(chunk["timings"])
        return False

    server.handle_chat_completions(dict(body), observe)
    return {
        "prompt_n": float(timings.get("prompt_n", 0)),
        "prompt_tps": float(timings.get("prompt_per_second", 0.0)),
        "decode_n": float(timings.get("predicted_n", 0)),
        "decode_tps": float(timings.get("predicted_per_second", 0.0)),
    }


SETTINGS = ("threads", "batch", "ubatch", "repack", "flash", "poll", "plain")


def variant(spec: str) -> tuple[Path, dict[str, Any]]:
    """`PATH` or `PATH@key=value,...` (keys in SETTINGS)."""
    path, _, rest = spec.partition("@")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key not in SETTINGS:
            raise SystemExit(f"{spec}: unknown setting {key!r} (known: {', '.join(SETTINGS)})")
        options[key] = value if key == "plain" else int(value)
    return Path(path), options


def load_variant(path: Path, options: dict[str, Any]) -> Any:
    """The runtime's own loader, with `options` set on llama.cpp's parameters."""
    import xllamacpp

    stock = xllamacpp.CommonParams

    def tuned() -> Any:
        params = stock()
        if "batch" in options:
            params.n_batch = options["batch"]
        if "ubatch" in options:
            params.n_ubatch = options["ubatch"]
        if "flash" in options:
            params.flash_attn_type = options["flash"]
        if "poll" in options:
            params.cpuparams.poll = options["poll"]
            params.cpuparams_batch.poll = options["poll"]
        if "plain" in options:
            params.tensor_buft_overrides = f"{options['plain']}=CPU"
        return params

    settings = LocalSettings(threads=options.get("threads", 0))
    if "repack" in options:
        settings = settings.model_copy(update={"repack": bool(options["repack"])})
    xllamacpp.CommonParams = tuned
    try:
        return load_xllamacpp(path, settings)
    finally:
        xllamacpp.CommonParams = stock


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("gguf", nargs="+", help="PATH or PATH@key=value,...")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--chars", type=int, default=3500, help="handbook characters a prompt")
    args = parser.parse_args()
    import os

    openmp_environment(os.environ)
    servers = {}
    for spec in args.gguf:
        path, options = variant(spec)
        name = path.name + "".join(f" {k}={v}" for k, v in options.items())
        started = time.monotonic()
        servers[name] = load_variant(path, options)
        print(f"loaded {name} in {time.monotonic() - started:.1f} s", flush=True)
    names = list(servers)
    seen: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for round_ in range(args.rounds):
        for number, body in enumerate(prompts(args.chars)):
            order = names if (round_ + number) % 2 == 0 else names[::-1]
            for name in order:
                sample = run(servers[name], body)
                seen[name].append(sample)
                print(
                    f"round {round_} prompt {number} {name}: {sample['prompt_n']:.0f} tok "
                    f"{sample['prompt_tps']:.1f} prompt tok/s, {sample['decode_n']:.0f} tok "
                    f"{sample['decode_tps']:.1f} decode tok/s (load {load()})",
                    flush=True,
                )
    base = names[0]
    print(
        "\n| layout | prompt tok/s (median) | decode tok/s (median) | prompt ratio | decode ratio |"
    )
    print("|---|---|---|---|---|")
    for name in names:
        pairs = list(zip(seen[name], seen[base], strict=True))
        prompt_ratio = statistics.median(a["prompt_tps"] / b["prompt_tps"] for a, b in pairs)
        decode_ratio = statistics.median(a["decode_tps"] / b["decode_tps"] for a, b in pairs)
        print(
            f"| {name} | {statistics.median(s['prompt_tps'] for s in seen[name]):.1f} | "
            f"{statistics.median(s['decode_tps'] for s in seen[name]):.1f} | "
            f"{prompt_ratio:.2f} | {decode_ratio:.2f} |"
        )


if __name__ == "__main__":
    main()
