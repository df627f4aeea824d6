"""The engine of one server process, assembled in one place (the composition root).

``EngineRuntime`` owns what runs for the server's lifetime besides the request handlers: the wake bus
(agents' long polls and the engine woken in process), the group commit the command service's steps share,
the PostgreSQL notification listener (replicas waking one another), the engine worker that runs the
reconciler, and the delivery of the notifications outbox (``engine.notifying`` writes it).
``api.app.create_app`` builds one and runs its ``lifespan``; the protocol adapters only use its parts (the
command service: the bus and the group commit). On SIGTERM/SIGINT the lifespan first releases every
waiting long poll, so the server stops promptly instead of waiting out the poll hold time.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio.to_thread

from opendeploy.engine import notifying
from opendeploy.engine.pg_listener import PostgresListener
from opendeploy.engine.transactions import GroupCommit
from opendeploy.engine.wakeups import WakeBus, install_bus
from opendeploy.engine.worker import EngineWorker
from opendeploy.integrations.outbox_delivery import OutboxDelivery
from opendeploy.settings import Settings
from opendeploy.store.db import Database


class EngineRuntime:
    """The wake bus, group commit, notification listener and engine worker of one server process."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.bus = WakeBus()
        # Requests' steps share transactions (group commit). SQLite has one writer; on PostgreSQL a few
        # groups in flight overlap their round trips to the database.
        self.group_commit = GroupCommit(database, threads=1 if database.sqlite else 4)
        self._worker: EngineWorker | None = None
        self._listener: PostgresListener | None = None
        self._delivery: OutboxDelivery | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Run the engine for as long as the server serves."""
        loop = asyncio.get_running_loop()
        self.bus.attach(loop)
        install_bus(self.bus)
        self.group_commit.start(loop)
        restore = self._release_polls_on_signals()
        if not self.database.sqlite:
            self._listener = PostgresListener(self.database.url, self.bus)
            self._listener.start()
        self._worker = EngineWorker(self.database, self.settings, self.bus)
        self._worker.start()
        self._delivery = OutboxDelivery(self.database, self.settings.notifications).start()
        notifying.install(self.settings, self._delivery.wake)
        try:
            yield
        finally:
            self.bus.stop()
            await self._worker.stop()
            notifying.install(None)
            await anyio.to_thread.run_sync(self._delivery.stop)
            if self._listener is not None:
                await self._listener.stop()
            await anyio.to_thread.run_sync(self.group_commit.stop)
            restore()
            install_bus(None)

    def _release_polls_on_signals(self) -> Callable[[], None]:
        """On SIGTERM/SIGINT, answer waiting long polls at once (then let the server's own handler stop
        it), so shutting down does not wait out the poll hold time."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous: dict[int, Any] = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            handler = signal.getsignal(sig)
            if not callable(handler):
                continue
            previous[sig] = handler

            def release(signum: int, frame: Any, handler: Callable[..., Any] = handler) -> None:
                self.bus.stop()
                handler(signum, frame)

            signal.signal(sig, release)

        def restore() -> None:
            for sig, handler in previous.items():
                with contextlib.suppress(ValueError):
                    signal.signal(sig, handler)

        return restore
