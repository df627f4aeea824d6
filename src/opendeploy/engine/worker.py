"""The engine worker: an asyncio task in the server process that runs the reconciler whenever there is
work — at once when woken (a deployment created, an instance finished), when the next timer is due, and
at least every ``sweep_interval`` as a safety net. The database work runs in a worker thread, so the
event loop keeps serving requests and long polls meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import anyio.to_thread

from opendeploy.engine.reconciler import Reconciler
from opendeploy.engine.wakeups import WakeBus
from opendeploy.settings import Settings
from opendeploy.store.db import Database

log = logging.getLogger(__name__)

MINIMUM_PAUSE = 0.05


class EngineWorker:
    def __init__(self, database: Database, settings: Settings, bus: WakeBus) -> None:
        self.reconciler = Reconciler(database, settings)
        self.settings = settings
        self.bus = bus
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="opendeploy-engine")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        sweep = self.settings.engine.sweep_interval
        while True:
            try:
                delay = await anyio.to_thread.run_sync(self._cycle)
            except Exception:
                log.exception("engine cycle failed; trying again in %gs", sweep)
                delay = sweep
            await self.bus.wait_for_engine_work(delay)

    def _cycle(self) -> float:
        """Run everything due; seconds until the next scheduled work (at most the sweep interval)."""
        self.reconciler.run_once()
        sweep = self.settings.engine.sweep_interval
        due = self.reconciler.next_due()
        if due is None:
            return sweep
        # Work still due after a run is held by another replica or step: look again shortly, not at once.
        return min(max(due - time.time(), MINIMUM_PAUSE), sweep)
