"""CPU time to start the `pilothouse` command line, beside `python -c pass`.

Each command runs as a fresh process, in turns (one round runs every command once),
with its own empty data directory and no API keys in its environment; the CPU time
(user + system, from the kernel's accounting of the child) is what is compared: on a
loaded machine the wall time measures the neighbours. Prints the median and the
spread for each command, and the modules each one imports beyond `python -c pass`.

    nice python benchmarks/cli/startup.py --rounds 15
    nice python benchmarks/cli/startup.py --rounds 15 --before /work/main/src

`--before SRC` also runs each `pilothouse` command from another source tree (put first
on PYTHONPATH, e.g. main's before a change), in the same rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# What `pilothouse` runs is the console script beside this interpreter; `python -m`
# would import the same modules.
COMMANDS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "pilothouse --version": [sys.executable, "-m", "pilothouse", "--version"],
    "pilothouse --help": [sys.executable, "-m", "pilothouse", "--help"],
    "pilothouse models": [sys.executable, "-m", "pilothouse", "models"],
    "pilothouse ask --help": [sys.executable, "-m", "pilothouse", "ask", "--help"],
}

COUNT_MODULES = "import sys, runpy; sys.argv = ['pilothouse', *{args!r}]\n" + (
    "try:\n    runpy.run_module('pilothouse', run_name='__main__')\n"
    "except SystemExit:\n    pass\n"
    "print(len(sys.modules), file=sys.__stderr__)\n"
)


def environment(home: Path, src: str | None = None) -> dict[str, str]:
    """No keys and no Pilothouse settings; bytecode written (to a cache folder under
    `home`, so no source tree gets a __pycache__) and read, as an installed package has
    it: where PYTHONDONTWRITEBYTECODE is set (these machines set it), every run
    compiled Pilothouse's sources again, and that was measured."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("_API_KEY")
        and not k.startswith("PILOTHOUSE_")
        and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["PILOTHOUSE_HOME"] = str(home)
    env["PYTHONPYCACHEPREFIX"] = str(home / "pycache")
    if src is not None:
        env["PYTHONPATH"] = src
    return env


def cpu_of(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one run of `argv` as a child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.stderr is not None:
        proc.stderr.close()
    return usage.ru_utime + usage.ru_stime, wall


def modules_of(args: list[str], env: dict[str, str]) -> int:
    code = COUNT_MODULES.format(args=args)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    return int(done.stderr.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--before", metavar="SRC", help="also run the commands from SRC")
    options = parser.parse_args()
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    with tempfile.TemporaryDirectory() as tmp:
        env = environment(Path(tmp))
        rows = [(name, argv, env) for name, argv in COMMANDS.items()]
        if options.before:
            before = environment(Path(tmp), options.before)
            rows += [
                (f"{name} (before)", argv, before)
                for name, argv in COMMANDS.items()
                if argv[1] == "-m"
            ]
        for _, argv, run_env in rows:  # warm the file cache and the bytecode
            cpu_of(argv, run_env)
        cpu: dict[str, list[float]] = {name: [] for name, _, _ in rows}
        wall: dict[str, list[float]] = {name: [] for name, _, _ in rows}
        for _ in range(options.rounds):
            for name, argv, run_env in rows:
                c, w = cpu_of(argv, run_env)
                cpu[name].append(c)
                wall[name].append(w)
        modules = {name: modules_of(argv[3:], e) for name, argv, e in rows if argv[1] == "-m"}
    with open("/proc/loadavg") as f:
        after = f.read().split()[:3]
    print(
        f"load average before: {' '.join(load)}, after: {' '.join(after)}; "
        f"{options.rounds} rounds; Python {sys.version.split()[0]}"
    )
    print(
        f"{'command':<33} {'CPU median':>11} {'CPU min-max':>13} {'wall median':>12} {'modules':>8}"
    )
    for name, _, _ in rows:
        c, w = cpu[name], wall[name]
        shown = f"{min(c):.3f}-{max(c):.3f}"
        count = str(modules.get(name, ""))
        print(
            f"{name:<33} {statistics.median(c):>10.3f}s {shown:>13} "
            f"{statistics.median(w):>11.3f}s {count:>8}"
        )


if __name__ == "__main__":
    main()
