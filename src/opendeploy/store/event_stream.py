"""The event log behind ``GET /events``: deployment and instance state-change events, numbered in commit
order and kept for a retention time.

- :func:`append` adds events in the **caller's** transaction: they are kept in the session until just
  before it commits, then inserted together (one statement for a whole group commit). On PostgreSQL that
  insert first takes a transaction-level advisory lock, so transactions that write events number them
  one after another and commit in that order: a reader that sees id N committed has every lower id
  (without it, a transaction holding id 10 could commit after one holding 11 and a follower that had
  read 11 would never see 10). The lock is held only for the insert and the commit itself. SQLite has
  one writer at a time already. A rolled-back transaction's events are dropped with it.
- After such a commit the process's listener (:func:`on_commit`) is called, so followers on this server
  hear of the new rows at once; other replicas find them by polling :func:`read_after`.
- :func:`prune` deletes rows older than the retention, a batch at a time, oldest first.

Nothing here commits by itself except :func:`prune`'s batches, each in its own transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, event, func, insert, select, text
from sqlalchemy.orm import Session

from opendeploy.store.db import Database
from opendeploy.store.models.event_stream import StreamEvent
from opendeploy.store.prepared import Prepared

_PENDING = "opendeploy.event_stream.pending"
_WRITTEN = "opendeploy.event_stream.written"
# Serialises the numbering of events across PostgreSQL sessions ("opendeploy-events").
_PG_SEQUENCE_LOCK = 0x6F64657673747265
READ_LIMIT = 500  # rows one read returns at most
PRUNE_BATCH = 1000


@dataclass(frozen=True)
class NewEvent:
    """An event to append: its SSE name, what filters and authorization read, and its JSON text."""

    kind: str  # deployment | instance
    deployment_id: str
    application_name: str
    deployment_group_name: str
    body: str
    created_at: float


@dataclass(frozen=True)
class LoggedEvent:
    """An event as the log keeps it, with its sequence id."""

    id: int
    kind: str
    deployment_id: str
    application_name: str
    deployment_group_name: str
    body: str


def append(session: Session, events: Iterable[NewEvent]) -> None:
    """Add ``events`` to the log when the caller's transaction commits (in that transaction)."""
    rows = [
        {
            "created_at": e.created_at,
            "kind": e.kind,
            "deployment_id": e.deployment_id,
            "application_name": e.application_name,
            "deployment_group_name": e.deployment_group_name,
            "body": e.body,
        }
        for e in events
    ]
    if rows:
        session.info.setdefault(_PENDING, []).extend(rows)


_listener: dict[str, Callable[[], None]] = {}


def on_commit(listener: Callable[[], None] | None) -> None:
    """Call ``listener()`` (from the committing thread) after each commit that appended events; None
    removes it. One per process: the server's event stream."""
    _listener.clear()
    if listener is not None:
        _listener["listener"] = listener


@event.listens_for(Session, "before_commit")
def _insert_pending(session: Session) -> None:
    rows = session.info.pop(_PENDING, None)
    if not rows:
        return
    # Flush first, so no row lock is waited for while the numbering lock is held (no deadlock with a
    # transaction that holds the lock and is only committing).
    session.flush()
    connection = session.connection()
    insert_row = _INSERT_LOCKED if connection.dialect.name == "postgresql" else _INSERT
    for row in rows:  # one or two per commit as a rule: a prepared insert each beats building a statement
        insert_row.execute(connection, row)
    session.info[_WRITTEN] = True


@event.listens_for(Session, "after_commit")
def _tell_listener(session: Session) -> None:
    if session.info.pop(_WRITTEN, None):
        listener = _listener.get("listener")
        if listener is not None:
            listener()


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_WRITTEN, None)


_INSERT = Prepared(
    insert(StreamEvent).values(
        created_at=bindparam("created_at"),
        kind=bindparam("kind"),
        deployment_id=bindparam("deployment_id"),
        application_name=bindparam("application_name"),
        deployment_group_name=bindparam("deployment_group_name"),
        body=bindparam("body"),
    )
)
# PostgreSQL: the numbering lock is taken by the insert itself (one round trip), before the row and so
# its id exist; a transaction takes it again for each row at no cost.
_INSERT_LOCKED = Prepared(
    text(
        "INSERT INTO event_stream (created_at, kind, deployment_id, application_name, deployment_group_name, "
        "body) SELECT CAST(:created_at AS DOUBLE PRECISION), CAST(:kind AS VARCHAR), "
        "CAST(:deployment_id AS VARCHAR), CAST(:application_name AS VARCHAR), "
        "CAST(:deployment_group_name AS VARCHAR), CAST(:body AS TEXT) "
        f"FROM (SELECT pg_advisory_xact_lock({_PG_SEQUENCE_LOCK})) AS numbering"
    )
)
_COLUMNS = (
    StreamEvent.id,
    StreamEvent.kind,
    StreamEvent.deployment_id,
    StreamEvent.application_name,
    StreamEvent.deployment_group_name,
    StreamEvent.body,
)
_READ_AFTER = Prepared(
    select(*_COLUMNS)
    .where(StreamEvent.id > bindparam("after"), StreamEvent.id <= bindparam("up_to"))
    .order_by(StreamEvent.id)
    .limit(bindparam("limit"))
)
_LAST_ID = Prepared(select(func.max(StreamEvent.id).label("last")))


def read_after(
    session: Session, after: int, up_to: int | None = None, limit: int = READ_LIMIT
) -> list[LoggedEvent]:
    """Up to ``limit`` events with ``after < id <= up_to`` (no upper bound: None), oldest first."""
    rows = _READ_AFTER.all(
        session.connection(), {"after": after, "up_to": up_to if up_to is not None else 2**62, "limit": limit}
    )
    return [LoggedEvent(*row) for row in rows]


def last_id(session: Session) -> int:
    """The highest sequence id kept (0 when there is none)."""
    row = _LAST_ID.first(session.connection())
    return int(row.last) if row is not None and row.last is not None else 0


def _prune_batch(session: Session, before: float, limit: int) -> tuple[int, bool]:
    # The oldest rows by id (the primary key: no index on created_at to keep up on every insert);
    # ids grow with time, so once a row is young enough the rest are too.
    oldest = session.execute(
        select(StreamEvent.id, StreamEvent.created_at).order_by(StreamEvent.id).limit(limit)
    ).all()
    expired = [row.id for row in oldest if row.created_at < before]
    if expired:
        session.execute(delete(StreamEvent).where(StreamEvent.id.in_(expired)))
    return len(expired), len(expired) == limit


def prune(database: Database, before: float, batch: int = PRUNE_BATCH) -> int:
    """Delete the events created before ``before``, ``batch`` rows per transaction; how many."""
    total = 0
    more = True
    while more:
        with database.transaction() as session:
            deleted, more = _prune_batch(session, before, batch)
        total += deleted
    return total
