"""Running one engine step as one transaction, retried when the database asks for a retry.

Engine steps from different requests and replicas touch the same rows; PostgreSQL may then abort one
of them (deadlock, serialization failure) and SQLite may report the database as locked past its busy
timeout. Such a step did nothing (it was rolled back), so running it again is safe. So did a step whose
database connection was lost (a PostgreSQL restart) before it asked for the commit; a connection lost
during the commit leaves its outcome unknown, so that one is not run again.

The command service runs its requests' steps through ``GroupCommit``: many steps, one transaction, one
commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from opendeploy.store.db import Database

log = logging.getLogger(__name__)

T = TypeVar("T")
ATTEMPTS = 5
_RETRY_SQLSTATES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available


def retryable(error: DBAPIError) -> bool:
    """Whether the database rolled the transaction back for a reason that a retry can cure."""
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate in _RETRY_SQLSTATES:
        return True
    return "database is locked" in str(error.orig)


def in_transaction(database: Database, step: Callable[[Session], T], *, write: bool = True) -> T:
    """Run ``step`` in one transaction (committed when it returns), retrying transient aborts."""
    for attempt in range(1, ATTEMPTS + 1):
        committing = False
        try:
            with database.transaction(write=write) as session:
                result = step(session)
                committing = True
            return result
        except DBAPIError as error:
            lost_before_commit = error.connection_invalidated and not committing
            if attempt == ATTEMPTS or not (retryable(error) or lost_before_commit):
                raise
            log.info("transaction aborted (%s); retrying (attempt %d)", error.orig, attempt + 1)
            time.sleep(random.uniform(0.005, 0.02) * attempt)
    raise AssertionError("unreachable")


class GroupCommit:
    """Group commit: steps from many requests run one after another in one transaction.

    Each commit costs a sync of the write-ahead log and, through SQLAlchemy (and psycopg), far more CPU
    than a short step's statements. Request handlers therefore hand their steps to a thread, which takes
    every step waiting (up to ``max_steps``), runs them in one transaction and commits once. SQLite has
    one writer, so one thread; on PostgreSQL a few (``threads``) overlap their round trips to the
    database, and a deadlock between their groups aborts one, which then runs as a failed group below.

    Each handler is answered only after its group's commit, so an acknowledged step survives a crash
    exactly as if it had committed alone. Steps of a group see each other's writes in order (a second
    completion of a command sees the first). If a step raises, the whole transaction is rolled back and
    every step of it runs again on its own (in its own transaction), so a refused request fails alone and
    the others are unaffected; steps are database work only, so running one again is safe.
    """

    def __init__(self, database: Database, *, max_steps: int = 128, threads: int = 1) -> None:
        self.database = database
        self.max_steps = max_steps
        self.threads = threads
        self._queue: queue.SimpleQueue[tuple[Callable[[Session], Any], asyncio.Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: list[threading.Thread] = []

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for index in range(self.threads):
            name = f"opendeploy-group-commit-{index}"
            thread = threading.Thread(target=self._serve, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Finish the steps already queued, then end the threads."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []

    async def run(self, step: Callable[[Session], T]) -> T:
        """Run ``step`` in a group transaction; its result once that transaction has committed."""
        if self._loop is None:
            raise RuntimeError("the group commit thread is not started")
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put((step, future))
        return await future

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stopping = False
            while len(batch) < self.max_steps:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            outcomes = self._execute([step for step, _ in batch])
            assert self._loop is not None
            futures = [future for _, future in batch]
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits for the answers
                self._loop.call_soon_threadsafe(_settle, futures, outcomes)
            if stopping:
                return

    def _execute(self, steps: list[Callable[[Session], Any]]) -> list[tuple[bool, Any]]:
        try:
            results = in_transaction(self.database, lambda session: [step(session) for step in steps])
            return [(True, result) for result in results]
        except Exception as error:
            if len(steps) == 1:
                return [(False, error)]
        return [self._alone(step) for step in steps]

    def _alone(self, step: Callable[[Session], Any]) -> tuple[bool, Any]:
        try:
            return True, in_transaction(self.database, step)
        except Exception as error:
            return False, error


def _settle(futures: list[asyncio.Future[Any]], outcomes: list[tuple[bool, Any]]) -> None:
    for future, (ok, value) in zip(futures, outcomes, strict=True):
        if future.done():  # the request was cancelled (its client went away)
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
