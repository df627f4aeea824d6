"""PostgreSQL LISTEN: wake-ups from other server replicas (and this one) sharing the database.

Transactions that create host commands or change deployments send ``NOTIFY`` (``wakeups``); this task
listens on both channels with its own connection and passes each notification to the process's
``WakeBus``. If the connection drops it reconnects, and then wakes every waiting poll and the engine,
since notifications sent meanwhile are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from sqlalchemy.engine import make_url

from opendeploy.engine.wakeups import ENGINE_CHANNEL, HOST_CHANNEL, WakeBus

log = logging.getLogger(__name__)

RECONNECT_DELAY = 1.0


def libpq_url(sqlalchemy_url: str) -> str:
    """The libpq form of a SQLAlchemy PostgreSQL URL (without the ``+psycopg`` driver name)."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresListener:
    def __init__(self, url: str, bus: WakeBus) -> None:
        self.url = libpq_url(url)
        self.bus = bus
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="opendeploy-pg-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as connection:
                    await connection.execute(f"LISTEN {HOST_CHANNEL}")
                    await connection.execute(f"LISTEN {ENGINE_CHANNEL}")
                    self.connected.set()
                    if not first:  # notifications sent while disconnected are lost: re-check everything
                        log.info("database notification channel back")
                        self.bus.wake_all_hosts()
                        self.bus.wake_engine()
                    first = False
                    async for notification in connection.notifies():
                        if notification.channel == HOST_CHANNEL:
                            self.bus.wake_hosts([notification.payload])
                        else:
                            self.bus.wake_engine()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.connected.clear()
                log.warning("database notification channel lost (%s); reconnecting", error)
                await asyncio.sleep(RECONNECT_DELAY)
