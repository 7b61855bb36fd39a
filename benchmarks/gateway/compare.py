"""Side-by-side table of two harness runs (LiteLLM, Pilothouse) from their raw.csv
files, and optionally of an earlier Pilothouse measured in the same run (`--before`);
optionally written into benchmarks/README.md as the "Gateway" section."""

from __future__ import annotations

import argparse
import csv
import re
import statistics
from collections import defaultdict
from pathlib import Path

TARGET_RATIO = 20.0
TARGET_ADDED_MS = 2.0


def load(folder: Path) -> dict[tuple[str, int, str], list[dict[str, str]]]:
    groups: dict[tuple[str, int, str], list[dict[str, str]]] = defaultdict(list)
    with (folder / "raw.csv").open() as handle:
        for row in csv.DictReader(handle):
            groups[(row["mode"], int(row["conc"]), row["target"])].append(row)
    return groups


def rps(rows: list[dict[str, str]]) -> float:
    return statistics.median(int(r["requests"]) / (int(r["duration_us"]) / 1e6) for r in rows)


def p50(rows: list[dict[str, str]]) -> float:
    return statistics.median(float(r["p50_ms"]) for r in rows)


def cpu(rows: list[dict[str, str]]) -> float:
    return statistics.median(int(r["proxy_cpu_ms"]) / max(1, int(r["requests"])) for r in rows)


def errors(rows: list[dict[str, str]]) -> int:
    return sum(int(r["socket_errors"]) + int(r["non2xx"]) for r in rows)


def load1(rows: list[dict[str, str]]) -> float:
    return statistics.median(float(r["loadavg1"]) for r in rows)


def env(folder: Path) -> dict[str, str]:
    path = folder / "env.txt"
    if not path.exists():
        return {}
    pairs = {}
    for line in path.read_text().splitlines():
        for part in line.split(" ") if line.startswith("workers=") else [line]:
            key, _, value = part.partition("=")
            pairs[key] = value
    return pairs


def table(litellm: Path, pilothouse: Path) -> tuple[str, list[str]]:
    a, b = load(litellm), load(pilothouse)
    keys = sorted({(m, c) for m, c, _ in a} & {(m, c) for m, c, _ in b})
    lines = [
        "| mode | conc | LiteLLM req/s | Pilothouse req/s | ratio | LiteLLM added p50 ms "
        "| Pilothouse added p50 ms | LiteLLM CPU ms/req | Pilothouse CPU ms/req "
        "| errors L/P | load1 L/P |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    misses: list[str] = []
    for mode, conc in keys:
        la, ld = a[(mode, conc, "proxy")], a[(mode, conc, "direct")]
        pa, pd = b[(mode, conc, "proxy")], b[(mode, conc, "direct")]
        ratio = rps(pa) / rps(la)
        added_l, added_p = p50(la) - p50(ld), p50(pa) - p50(pd)
        if ratio < TARGET_RATIO:
            misses.append(f"{mode} at concurrency {conc}: {ratio:.1f}x")
        if errors(pa):
            misses.append(f"{mode} at concurrency {conc}: {errors(pa)} errors")
        if conc == 1 and added_p > TARGET_ADDED_MS:
            misses.append(f"{mode} at concurrency 1: added p50 {added_p:.2f} ms")
        lines.append(
            f"| {mode} | {conc} | {rps(la):.1f} | {rps(pa):.1f} | {ratio:.1f}x | {added_l:.2f} "
            f"| {added_p:.2f} | {cpu(la):.2f} | {cpu(pa):.3f} | {errors(la)}/{errors(pa)} "
            f"| {load1(la):.2f}/{load1(pa):.2f} |"
        )
    return "\n".join(lines), misses


def before_table(before: Path, pilothouse: Path, label: str) -> str:
    """The earlier Pilothouse against this one, row by row."""
    a, b = load(before), load(pilothouse)
    keys = sorted({(m, c) for m, c, _ in a} & {(m, c) for m, c, _ in b})
    lines = [
        f"| mode | conc | req/s {label} | req/s now | added p50 ms {label} | added p50 ms now "
        f"| CPU ms/req {label} | CPU ms/req now | CPU now/{label} | errors | load1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, conc in keys:
        oa, od = a[(mode, conc, "proxy")], a[(mode, conc, "direct")]
        na, nd = b[(mode, conc, "proxy")], b[(mode, conc, "direct")]
        lines.append(
            f"| {mode} | {conc} | {rps(oa):.1f} | {rps(na):.1f} | {p50(oa) - p50(od):.2f} "
            f"| {p50(na) - p50(nd):.2f} | {cpu(oa):.3f} | {cpu(na):.3f} "
            f"| {cpu(na) / cpu(oa):.2f} | {errors(oa)}/{errors(na)} "
            f"| {load1(oa):.2f}/{load1(na):.2f} |"
        )
    return "\n".join(lines)


def paired_table(before: Path, now: Path, label: str) -> str:
    """Per repetition, now against `label` measured back to back (ab.sh): the median
    ratio and its range, for throughput and for CPU per request."""
    a, b = load(before), load(now)
    lines = [
        f"| mode | conc | req/s now/{label}, median [min..max] of reps "
        f"| CPU ms/req now/{label}, median [min..max] of reps | reps |",
        "|---|---:|---:|---:|---:|",
    ]
    for mode, conc in sorted({(m, c) for m, c, _ in a} & {(m, c) for m, c, _ in b}):
        old = {r["rep"]: r for r in a[(mode, conc, "proxy")]}
        new = {r["rep"]: r for r in b[(mode, conc, "proxy")]}
        reps = sorted(old.keys() & new.keys())
        speed = [rps([new[r]]) / rps([old[r]]) for r in reps]
        cost = [cpu([new[r]]) / cpu([old[r]]) for r in reps]
        lines.append(f"| {mode} | {conc} | {_spread(speed)} | {_spread(cost)} | {len(reps)} |")
    return "\n".join(lines)


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}..{max(values):.2f}]"


def before_part(before: Path | None, pilothouse: Path, label: str) -> str:
    if before is None:
        return ""
    return f"""
The same run also measured an earlier Pilothouse ({label}, from its source tree:
`BEFORE_SRC=DIR/src BEFORE_LABEL={label} bash benchmarks/gateway/run.sh`), one after the
other on the same harness, to show what the changes since cost the gateway:

{before_table(before, pilothouse, label)}
"""


def section(litellm: Path, pilothouse: Path, before: Path | None = None, label: str = "") -> str:
    body, misses = table(litellm, pilothouse)
    e_l, e_p = env(litellm), env(pilothouse)
    verdict = (
        f"Targets (at least {TARGET_RATIO:g}x LiteLLM's throughput in every row, added median "
        f"latency at concurrency 1 at most {TARGET_ADDED_MS:g} ms, no errors): "
        + ("**met in every row**." if not misses else "met except " + "; ".join(misses) + ".")
    )
    return f"""## Gateway

Pilothouse's gateway mode against the LiteLLM proxy on the shared harness
(`../shared/bench/gateway`: nginx+Lua mock upstream, wrk, one worker per gateway, the
same CPU pinning), both measured in one run of `benchmarks/gateway/run.sh`:

```bash
apt-get install -y wrk nginx-light libnginx-mod-http-lua
bash benchmarks/gateway/run.sh                 # harness defaults; DUR=5s REPS=1 for a quick look
```

LiteLLM ({e_l.get("gateway", "?")}) is installed by the harness into a throwaway venv;
Pilothouse runs `pilothouse serve --routes benchmarks/gateway/routes.yaml` (uvicorn,
uvloop, httptools, access log on, key checked on every request). "Added p50" is the
gateway's median latency minus the mock upstream's when called directly in the same
run; CPU ms/req is the gateway process's CPU time per request (the figure least
affected by other load on the machine). Medians over {e_p.get("reps", "?")} repetitions of
{e_p.get("dur", "?")} each.

{body}

{verdict}
{before_part(before, pilothouse, label)}
At concurrency 1 throughput is one over the mean round trip, so that row measures
latency: wrk, the gateway and the mock upstream wake each other across CPUs shared with
other work, and the mean round trip sits well above the median. CPU per request is the
gateway's own cost and varies least.

Run: {e_p.get("date_utc", "?")}, {e_p.get("nproc", "?")} CPUs ({e_p.get("kernel", "?")}),
upstream and wrk pinned to CPU {e_p.get("pin_upstream_and_wrk", "?")}, gateways to CPU
{e_p.get("pin_proxy", "?")}; {e_p.get("wrk", "?")}; {e_p.get("nginx", "?")}. The machine was
shared with other work during the run (load1 column): absolute throughput varies with it,
CPU per request much less.
"""


def write_readme(readme: Path, text: str) -> None:
    current = readme.read_text() if readme.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## Gateway\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text + "\n", current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    readme.write_text(updated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("litellm", type=Path, help="the LiteLLM run's results folder")
    parser.add_argument("pilothouse", type=Path, help="the Pilothouse run's results folder")
    parser.add_argument("--readme", type=Path, help="write the section into this README")
    parser.add_argument("--before", type=Path, help="an earlier Pilothouse's results folder")
    parser.add_argument("--before-label", default="before", help="what the earlier one was")
    args = parser.parse_args()
    text = section(args.litellm, args.pilothouse, args.before, args.before_label)
    print(text)
    if args.readme:
        write_readme(args.readme, text)


if __name__ == "__main__":
    main()
