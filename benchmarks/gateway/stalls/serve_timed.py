"""`pilothouse serve` with every garbage collection timed by gc.callbacks (for run.sh).

DIAG_GC=unfreeze: the collector as on main; on: start-up frozen at SIGUSR2 (after the
warm-up, when the counts are reset); off: no collector. SIGUSR1 writes DIAG_OUT (JSON).
"""

import atexit
import gc
import json
import os
import signal
import sys
import time
from typing import Any

from pilothouse.cli import main

MODE = os.environ.get("DIAG_GC", "on")
OUT = os.environ["DIAG_OUT"]
stats = {g: [0, 0.0, 0.0] for g in (0, 1, 2)}  # collections, total ms, longest ms
started = [0.0]


def timed(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        started[0] = time.perf_counter()
        return
    ms = (time.perf_counter() - started[0]) * 1000
    s = stats[info["generation"]]
    s[0] += 1
    s[1] += ms
    s[2] = max(s[2], ms)


def dump(*_: object) -> None:
    with open(OUT, "w") as f:
        gens = {
            g: {"n": s[0], "total_ms": round(s[1], 2), "max_ms": round(s[2], 3)}
            for g, s in stats.items()
        }
        json.dump(
            {
                "mode": MODE,
                "tracked": len(gc.get_objects()),
                "frozen_now": gc.get_freeze_count(),
                "gens": gens,
            },
            f,
        )


def reset(*_: object) -> None:
    if MODE == "unfreeze":
        gc.unfreeze()
    if MODE == "on":
        gc.collect()
        gc.freeze()
    for s in stats.values():
        s[:] = [0, 0.0, 0.0]


gc.callbacks.append(timed)
if MODE == "off":
    gc.disable()
atexit.register(dump)
signal.signal(signal.SIGUSR1, dump)
signal.signal(signal.SIGUSR2, reset)
sys.argv = ["pilothouse", *sys.argv[1:]]
main()
