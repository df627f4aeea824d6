"""Running one engine step as one transaction, retried when the database asks for a retry.

Engine steps from different requests and replicas touch the same rows; PostgreSQL may then abort one
of them (deadlock, serialization failure) and SQLite may report the database as locked past its busy
timeout. Such a step did nothing (it was rolled back), so running it again is safe.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

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


# SQLite has one writer at a time, and a writer that finds the database locked sleeps in growing steps
# (up to 100 ms) before trying again: with many agents completing at once, most time goes to those
# sleeps. The engine's own write transactions therefore queue on a lock in the process instead.
_sqlite_writers = threading.Lock()


def in_transaction(database: Database, step: Callable[[Session], T], *, write: bool = True) -> T:
    """Run ``step`` in one transaction (committed when it returns), retrying transient aborts."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            if write and database.sqlite:
                with _sqlite_writers, database.transaction(write=True) as session:
                    return step(session)
            with database.transaction(write=write) as session:
                return step(session)
        except DBAPIError as error:
            if attempt == ATTEMPTS or not retryable(error):
                raise
            log.info("transaction aborted (%s); retrying (attempt %d)", error.orig, attempt + 1)
            time.sleep(random.uniform(0.005, 0.02) * attempt)
    raise AssertionError("unreachable")
