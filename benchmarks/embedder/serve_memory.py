"""The memory of a `pilothouse serve` with several copilots that each have knowledge,
for two source trees side by side (e.g. before and after a change).

    python benchmarks/embedder/serve_memory.py --src before=/tmp/before/src --src after=src
    python benchmarks/embedder/serve_memory.py --copilots 1,4,8 --rounds 3 --json out.json

For each source tree, count of copilots and round (the trees alternate within a
round): N copilot folders with the same three short documents are made in a fresh
data directory, `python -m pilothouse serve --no-auth` is started on them with that
tree first on PYTHONPATH, and once `/readyz` says it has started (every copilot open,
its knowledge indexed, so its embedding model loaded) the server's resident memory
is read from /proc: VmRSS after a second's rest and VmHWM (the peak). The copilots'
model is an OpenAI id with a made-up key: nothing is asked, no model is loaded.
Reported: the median of the rounds per tree and count. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

DOCS = {
    "vpn.md": "# Remote access\n\n## VPN\n\nThe VPN client is WireGuard. Connect to "
    "vpn.example.com on port 51820. Ask the service desk for a profile.\n",
    "printing.md": "# Printing\n\nPrinters are on floor 3 next to the kitchen. The model "
    "is a Xerox C8155. Jams: open door A, then door B.\n",
    "leave.md": "# Leave\n\nEveryone has 25 days of paid leave a year. Book it in the HR "
    "portal at least two weeks ahead; your manager approves it.\n",
}


def make_copilots(root: Path, count: int) -> list[Path]:
    folders = []
    for n in range(count):
        folder = root / f"desk{n}"
        (folder / "knowledge").mkdir(parents=True)
        for name, text in DOCS.items():
            (folder / "knowledge" / name).write_text(text)
        (folder / "copilot.yaml").write_text(
            f"name: desk{n}\ninstructions: Answer from the passages.\n"
            "model: {primary: openai:gpt-4o-mini}\nknowledge: {sources: [knowledge]}\n"
        )
        folders.append(folder)
    return folders


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def measure(src: Path, count: int, timeout: float) -> dict[str, int]:
    with tempfile.TemporaryDirectory(prefix="serve-memory-") as tmp:
        root = Path(tmp)
        folders = make_copilots(root / "copilots", count)
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(src.resolve()),
            "PILOTHOUSE_HOME": str(root / "home"),
            "OPENAI_API_KEY": "sk-bench-not-used",
        }
        command = [sys.executable, "-m", "pilothouse", "serve", "--no-auth", "--port", str(port)]
        server = subprocess.Popen(
            [*command, *map(str, folders)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"the server exited: {server.stderr.read()[-2000:]}")  # type: ignore[union-attr]
                if time.monotonic() > deadline:
                    raise RuntimeError(f"not started within {timeout} s")
                try:
                    body = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json()
                except httpx.HTTPError:
                    body = {}
                if body.get("status") not in (None, "starting") and len(body["copilots"]) == count:
                    break
                time.sleep(0.2)
            time.sleep(1.0)
            return memory_kib(server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--copilots", default="1,4,8", help="counts of copilots, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    trees = dict(s.split("=", 1) for s in args.src) or {"this": "src"}
    counts = [int(c) for c in args.copilots.split(",")]
    results: dict[str, dict[int, list[dict[str, int]]]] = {
        t: {c: [] for c in counts} for t in trees
    }
    for round_ in range(args.rounds):
        for count in counts:
            for name, path in trees.items():
                figures = measure(Path(path), count, args.timeout)
                results[name][count].append(figures)
                print(f"round {round_ + 1} {name} copilots={count}: {figures}", flush=True)
    print("\n| tree | copilots | VmRSS MiB (median) | VmHWM MiB (median) |")
    print("|---|---:|---:|---:|")
    for name in trees:
        for count in counts:
            rss = statistics.median(f["VmRSS"] for f in results[name][count]) / 1024
            hwm = statistics.median(f["VmHWM"] for f in results[name][count]) / 1024
            print(f"| {name} | {count} | {rss:.0f} | {hwm:.0f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
