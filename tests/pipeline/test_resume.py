"""An eval run killed with SIGKILL in the middle resumes where it stopped: no stored
case is run again, none is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pilothouse.config import Settings
from pilothouse.pipeline.runner import EvalRunner
from pilothouse.storage.evals import EvalStore
from tests.pipeline.conftest import factory, good_answer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import asyncio, sys
from pathlib import Path
from pilothouse.config import Settings
from pilothouse.models import FunctionModel
from pilothouse.pipeline.runner import EvalPlan, EvalRunner
from pilothouse.storage.evals import EvalStore
from tests.pipeline.conftest import good_answer

home, folder, run_id = sys.argv[1:4]

async def slow(request):
    await asyncio.sleep(0.4)
    return good_answer(request)

async def main():
    settings = Settings.from_sources(home=Path(home), environ={})
    store = EvalStore.for_settings(settings)
    runner = EvalRunner(settings, store, model_factory=lambda m: [FunctionModel(slow, model_id=m)])
    plan = EvalPlan(folder=folder, models=("test:slow",), repeat=6, concurrency=2)
    await runner.start(plan, run_id=run_id)

asyncio.run(main())
"""


def test_a_run_killed_with_sigkill_resumes_without_redoing_or_losing_a_case(
    copilot_dir: Path, settings: Settings, tmp_path: Path
) -> None:
    run_id = "ev-killedrun01"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(settings.home), str(copilot_dir), run_id],
        cwd=ROOT,
        env=env,
    )
    store = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if settings.database_path.exists():
                store = store or EvalStore.for_settings(settings)
                try:
                    if len(store.done(run_id)) >= 6:
                        break
                except Exception:  # the run row may not exist yet
                    pass
            assert process.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert store is not None
    before = {(r.case_id, r.rep): r for r in store.cases(run_id)}
    stamps = dict(
        store._conn.execute(
            "SELECT case_id || '/' || rep, finished FROM eval_cases WHERE run_id = ?", (run_id,)
        ).fetchall()
    )
    assert 6 <= len(before) < 48
    assert store.get_run(run_id).status == "running"

    runner = EvalRunner(settings, store, model_factory=factory(**{"test:slow": good_answer}))
    import asyncio

    asyncio.run(runner.resume(run_id))
    after = store.cases(run_id)
    assert len(after) == 48  # 8 cases x 6 repeats, each once
    assert {(r.case_id, r.rep) for r in after} == {
        (c, n) for c in {r.case_id for r in after} for n in range(1, 7)
    }
    again = dict(
        store._conn.execute(
            "SELECT case_id || '/' || rep, finished FROM eval_cases WHERE run_id = ?", (run_id,)
        ).fetchall()
    )
    assert all(again[key] == stamp for key, stamp in stamps.items())  # none redone
    assert store.get_run(run_id).status == "finished"
    assert store.counts(run_id, 1) == {"passed": 48, "failed": 0, "error": 0}
    store.close()
