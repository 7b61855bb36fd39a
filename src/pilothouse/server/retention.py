"""Trace retention in a running server: old runs and spans are pruned at start-up and
then every hour, when `[traces] keep_days` is above 0.

Each pass opens the trace store, prunes and closes it on a worker thread, so the event
loop never waits on SQLite. A failed pass is logged and the next one runs on time; it
never takes the server down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from pilothouse.config import Settings
from pilothouse.storage.retention import PruneReport, cutoff
from pilothouse.storage.traces import TraceStore

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 3600.0


class TracePruner:
    """Prunes the data directory's traces now and every `interval_s` seconds.

    `start()` on the event loop (a no-op when keep_days is 0), `aclose()` on shutdown.
    """

    def __init__(self, settings: Settings, *, interval_s: float = PRUNE_INTERVAL_S) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self.passes = 0  # passes finished, failed ones included
        self.last_report: PruneReport | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.traces.keep_days > 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.enabled:
            log.info("trace retention off ([traces] keep_days = 0): runs are kept forever")
            return
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="pilothouse-trace-retention")

    async def aclose(self) -> None:
        """Stop the periodic task. A pass already running on its thread finishes its
        transaction (it cannot be cut short half-way) but is no longer waited for."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def prune_once(self) -> PruneReport | None:
        """One pass; None when retention is off or the pass failed (logged)."""
        keep_days = self.settings.traces.keep_days
        limit = cutoff(keep_days, time.time())
        if limit is None:
            return None
        try:
            report = await asyncio.to_thread(self._prune, limit)
        except Exception as exc:
            log.warning(
                "trace retention: pruning %s failed (%s: %s); next try in %gs",
                self.settings.database_path,
                type(exc).__name__,
                exc,
                self.interval_s,
            )
            return None
        finally:
            self.passes += 1
        log.info(
            "trace retention: deleted %d runs and %d spans older than %g days",
            report.runs,
            report.spans,
            keep_days,
        )
        self.last_report = report
        return report

    def _prune(self, older_than: float) -> PruneReport:
        with TraceStore.for_settings(self.settings) as store:
            return store.prune(older_than)

    async def _loop(self) -> None:
        while True:
            await self.prune_once()
            await asyncio.sleep(self.interval_s)
