"""The audit trail's storage: recording events durably, looking them up, expiring them, and the
JSON-lines files a SIEM reads.

The database is the source of truth. ``AuditTrail.record(events)`` returns once the events are
committed, so a request whose event is recorded before it is answered is on record even if the server
is killed the instant after. Recording is batched like the command service's group commit: requests
hand their events to one writer thread, which inserts everything waiting (up to ``max_batch`` events)
in one transaction and commits once, so under load many requests share one commit. ``submit`` hands
events over without waiting (a ``concurrent.futures.Future``), ``record_async`` waits from the event
loop. ``submit_reads`` hands over successful reads, which nobody waits for: the writer builds their
records itself, in batches, and they may linger a moment for company. A trail that is not started
(tests, tools) writes in the caller's thread. ``insert_events`` adds events to a transaction the caller holds
(a successful write's event committed with the write).

By default the trail's own commits do not wait for the disk (``synchronous_commits=False``; SQLite's
``synchronous=NORMAL`` in WAL mode, PostgreSQL's ``synchronous_commit=off``): a committed event survives
a crash of the server process (``kill -9``) at once, and a crash of the machine as soon as any synced
commit follows it, which under load is within milliseconds. That halves what recording costs a lone
request (a sync of the write-ahead log per request: about as much as a GetDeployment's own work);
``synchronous_commits=True`` syncs every audit commit like the server's other writes.

Events are exported from the database after they are recorded, in batches, by a background thread
(``start``): each event's lookup keys (what LookupEvents filters on, ``models.audit_events``) are
written, and with an audit directory its record is appended to ``<audit-dir>/audit-YYYY-MM-DD.jsonl``
(the UTC day of its ``eventTime``; one CloudTrail record per line; files 0600 in a 0700 directory),
each file fsynced, before the events are marked exported together with their keys. It runs a second
after a commit (one export covers many) and at start, so events committed just before a crash are
exported when the server starts again. An event may be appended twice if the server dies between the
fsync and the mark (a SIEM deduplicates by ``eventID``); none is ever missing. ``lookup`` finds events
not exported yet by their own columns, so it misses none either. On PostgreSQL each replica exports
the events it claims (``FOR UPDATE SKIP LOCKED``) into its own data directory's files.

The same thread expires events older than the retention period (``retention_days``; 0 keeps them
forever) once an hour, in short batches, and deletes the JSON-lines files of days wholly before it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import queue
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from opendeploy.domain.cloudtrail_events import ApiCall, TrailEvent, trail_event
from opendeploy.store.db import Database, create_db_engine
from opendeploy.store.models.audit_events import AuditEvent, AuditLookupKey, resources_json
from opendeploy.store.prepared import Prepared

log = logging.getLogger(__name__)

DAY = 86400.0
ATTEMPTS = 4
EXPIRE_INTERVAL = 3600.0
EXPORT_BATCH = 1000
FILE_PREFIX = "audit-"
FILE_SUFFIX = ".jsonl"
_RETRY_SQLSTATES = {"40001", "40P01", "55P03"}

# LookupEvents' attribute keys that match a column of the event as it is. The others: EventId (the
# events' unique index finds one, exported or not, so it has no lookup key), ReadOnly (a boolean column)
# and the resources' (a pair in the ``resources`` JSON).
LOOKUP_COLUMNS = {
    "EventName": AuditEvent.event_name,
    "Username": AuditEvent.username,
    "AccessKeyId": AuditEvent.access_key_id,
    "EventSource": AuditEvent.event_source,
}
RESOURCE_ATTRIBUTES = ("ResourceType", "ResourceName")  # the first and second of each resource pair


class AuditTrailUnavailable(Exception):
    """Events could not be recorded (the database refused them)."""


# --- writing -------------------------------------------------------------------------------------


def insert_events(session: Session | Connection, events: Sequence[TrailEvent]) -> None:
    """Insert ``events`` in the transaction of ``session`` (for a caller that already holds one: a
    successful write's event committed with the write itself costs no commit of its own)."""
    if not events:
        return
    connection = session.connection() if isinstance(session, Session) else session
    # Prepared, one driver call: every request records an event, and SQLAlchemy's own work for an
    # ORM-session insert cost a write several times what the database did.
    _INSERT_EVENT.execute_many(
        connection,
        [
            {
                "event_id": event.event_id,
                "event_time": event.event_time,
                "event_name": event.event_name,
                "event_source": event.event_source,
                "username": event.username,
                "access_key_id": event.access_key_id,
                "read_only": event.read_only,
                "event_category": event.category,
                "error_code": event.error_code,
                "record": event.json,
                "resources": resources_json((r.type, r.name) for r in event.resources),
            }
            for event in events
        ],
    )


_EVENT_COLUMNS = (
    "event_id",
    "event_time",
    "event_name",
    "event_source",
    "username",
    "access_key_id",
    "read_only",
    "event_category",
    "error_code",
    "record",
    "resources",
)
_INSERT_EVENT = Prepared(
    insert(AuditEvent).values(exported=False, **{column: bindparam(column) for column in _EVENT_COLUMNS})
)
_INSERT_KEY = Prepared(
    insert(AuditLookupKey).values(
        lookup_key=bindparam("lookup_key"), event_time=bindparam("event_time"), event_pk=bindparam("event_pk")
    )
)


_PENDING = (
    select(
        AuditEvent.id,
        AuditEvent.event_time,
        AuditEvent.record,
        AuditEvent.event_id,
        AuditEvent.event_name,
        AuditEvent.event_source,
        AuditEvent.username,
        AuditEvent.access_key_id,
        AuditEvent.read_only,
        AuditEvent.resources,
    )
    .where(text("NOT audit_events.exported"))  # as the partial index says it, so both use it
    .order_by(AuditEvent.id)
)


def _lookup_keys(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """The ``audit_lookup_keys`` rows of exported events ``rows`` (from ``_PENDING``)."""
    keys: dict[tuple[str, int], float] = {}  # a value an event has twice (a resource named twice): one key
    for row in rows:
        for attribute, column in LOOKUP_COLUMNS.items():
            value = getattr(row, column.key)
            if value is not None:
                keys[(f"{attribute}={value}", row.id)] = row.event_time
        keys[(f"ReadOnly={'true' if row.read_only else 'false'}", row.id)] = row.event_time
        for pair in orjson.loads(row.resources):
            for attribute, value in zip(RESOURCE_ATTRIBUTES, pair, strict=True):
                keys[(f"{attribute}={value}", row.id)] = row.event_time
    return [{"lookup_key": key, "event_time": at, "event_pk": pk} for (key, pk), at in keys.items()]


def _mark_exported(connection: Connection, rows: Sequence[Any], keys: list[dict[str, Any]]) -> None:
    """Insert ``keys`` (sorted in place: keys with the same value fill the same index pages one after
    another) and mark ``rows`` exported, in the transaction of ``connection``."""
    keys.sort(key=lambda k: (k["lookup_key"], k["event_time"], k["event_pk"]))
    _INSERT_KEY.execute_many(connection, keys)
    connection.execute(
        update(AuditEvent).where(AuditEvent.id.in_([row.id for row in rows])).values(exported=True)
    )


def _events_of(calls: Iterable[ApiCall]) -> list[TrailEvent]:
    """The events of ``calls``; one whose event cannot be built is logged and left out, not the rest."""
    events = []
    for call in calls:
        try:
            events.append(trail_event(call))
        except Exception:
            log.exception("the audit event of %s %s could not be built", call.service, call.operation)
    return events


def _retryable(error: DBAPIError) -> bool:
    if error.connection_invalidated:
        return True
    if getattr(error.orig, "sqlstate", None) in _RETRY_SQLSTATES:
        return True
    return "database is locked" in str(error.orig)


@dataclass(slots=True)
class _Submission:
    events: list[TrailEvent]
    future: concurrent.futures.Future[None] | None  # None: nobody waits; a failure is only logged
    calls: list[ApiCall] | None = None  # successful reads: the writer builds their events

    def __len__(self) -> int:
        return len(self.calls) if self.calls is not None else len(self.events)


class AuditTrail:
    """The server's audit trail: durable recording (batched), JSON-lines export and expiry."""

    def __init__(
        self,
        database: Database,
        audit_dir: Path | None = None,
        *,
        retention_days: float = 90.0,
        max_batch: int = 512,
        export_delay: float = 1.0,
        export_interval: float = 5.0,
        linger: float = 0.2,
        synchronous_commits: bool = False,
    ) -> None:
        self.database = database
        self.synchronous_commits = synchronous_commits
        self._own_engine: Engine | None = None
        self.audit_dir = audit_dir
        self.retention_days = retention_days
        self.max_batch = max_batch
        self.linger = linger  # how long events nobody waits for gather before the writer commits them
        self.export_delay = export_delay  # wait this long after a commit, so one export covers many
        self.export_interval = export_interval  # look for unexported events at least this often
        self._queue: queue.SimpleQueue[_Submission] = queue.SimpleQueue()
        self._leading = threading.Lock()  # held by the one thread writing queued events
        self._submitted = threading.Event()  # wakes the writer thread
        self._urgent = threading.Event()  # somebody waits for what was submitted: no lingering
        self._writer: threading.Thread | None = None
        self._background: threading.Thread | None = None
        self._stopping = threading.Event()
        self._committed = threading.Event()
        self._exporting = threading.Lock()  # SQLite: one export at a time (they read before they write)

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (for ``submit``) and the export and expiry thread."""
        if self._writer is not None:
            return
        self._stopping.clear()
        self._writer = threading.Thread(target=self._write_loop, name="opendeploy-audit-writer", daemon=True)
        self._writer.start()
        self._background = threading.Thread(
            target=self._background_loop, name="opendeploy-audit-export", daemon=True
        )
        self._background.start()

    def stop(self) -> None:
        """Record what is queued, export it, end the threads and close the trail's connections."""
        if self._writer is not None:
            self._stopping.set()
            self._urgent.set()
            self._submitted.set()
            self._writer.join()
            self._writer = None
            self._lead()  # anything submitted while the writer was stopping
            self._committed.set()
        if self._background is not None:
            self._background.join()
            self._background = None
        if self._own_engine is not None:
            self._own_engine.dispose()
            self._own_engine = None

    # --- recording ---------------------------------------------------------------------------------
    #
    # Group commit without a hand-off: a caller queues its events, then, if no other thread is writing,
    # writes everything queued itself (in batches, until the queue is empty); otherwise the thread that
    # is writing takes its events into its next batch. A lone request thus commits in its own thread,
    # with no wait for another thread, and concurrent ones share commits. The leader checks the queue
    # again after letting go, and a caller tries to lead after queuing, so no event is left unwritten.

    def submit(self, events: Iterable[TrailEvent]) -> concurrent.futures.Future[None]:
        """Queue ``events`` for the writer thread without waiting; the future is done once they are
        committed (or failed with ``AuditTrailUnavailable``). Without a started trail, writes now."""
        future = self._enqueue(events)
        if self._writer is None:
            self._lead()
        else:
            self._urgent.set()
            self._submitted.set()
        return future

    def submit_reads(self, calls: Iterable[ApiCall]) -> None:
        """Queue successful reads for the record; nobody waits for them, and one that cannot be recorded
        is logged. The writer thread builds their events (``trail_event``) with its batch's others:
        built one at a time on the event loop, they took ~4 % of a GetDeployment's time holding the
        interpreter lock, built in a batch under 1 % (py-spy --gil, 8 clients). It may hold them up to
        ``linger`` seconds for company: a stream of lone reads then shares one commit every ``linger``
        seconds instead of taking one each (a commit cost a single client's GetDeployment about 5 % of
        its throughput). A ``kill -9`` within that moment loses them, as it loses any event not yet
        committed. Without a started trail, writes now."""
        self._queue.put(_Submission([], None, list(calls)))
        if self._writer is None:
            self._lead()
        elif not self._submitted.is_set():
            self._submitted.set()

    def record(self, events: Iterable[TrailEvent], timeout: float | None = None) -> None:
        """Record ``events``; return once they are committed (from a worker thread, never the loop)."""
        future = self._enqueue(events)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not future.done():
            self._lead()
            if deadline is not None and time.monotonic() > deadline:
                break
            # The thread writing now takes these events into its next batch; the timeout is a safety net.
            concurrent.futures.wait([future], timeout=0.05)
        future.result(0)

    async def record_async(self, events: Iterable[TrailEvent]) -> None:
        """``record`` for the event loop: waits without holding a thread."""
        await asyncio.wrap_future(self.submit(events))

    def _enqueue(self, events: Iterable[TrailEvent]) -> concurrent.futures.Future[None]:
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._queue.put(_Submission(list(events), future))
        return future

    def _lead(self, *, lingering: bool = False) -> None:
        """Write what is queued unless another thread is writing (which then writes it).

        ``lingering`` (the writer thread): stop after a batch that is not full. What was submitted
        while it was being written then waits for the writer's next round, with company, instead of
        taking a commit of its own (which it did for one batch in three under a steady stream)."""
        while self._leading.acquire(blocking=False):
            try:
                while True:
                    batch: list[_Submission] = []
                    count = 0
                    while count < self.max_batch:
                        try:
                            item = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        batch.append(item)
                        count += len(item)
                    if not batch:
                        break
                    self._write(batch)
                    self._committed.set()
                    if lingering and count < self.max_batch:
                        return  # its submitters set ``_submitted``: the writer's next round
            finally:
                self._leading.release()
            if self._queue.empty():
                return

    def _write_loop(self) -> None:
        while not self._stopping.is_set():
            self._submitted.wait()
            if not self._urgent.is_set():
                self._urgent.wait(self.linger)
            self._urgent.clear()
            self._submitted.clear()
            self._lead(lingering=True)

    def _write(self, batch: list[_Submission]) -> None:
        for submission in batch:
            if submission.calls is not None:
                submission.events = _events_of(submission.calls)
        try:
            self.write_events([event for submission in batch for event in submission.events])
            outcomes: list[BaseException | None] = [None] * len(batch)
        except Exception as error:
            if len(batch) == 1:
                outcomes = [error]
            else:  # one bad submission must not fail the others: each again on its own
                outcomes = []
                for submission in batch:
                    try:
                        self.write_events(submission.events)
                        outcomes.append(None)
                    except Exception as alone:
                        outcomes.append(alone)
        for submission, outcome in zip(batch, outcomes, strict=True):
            if outcome is not None:
                log.error("audit events could not be recorded: %s", outcome)
            if submission.future is None:
                continue
            if outcome is None:
                submission.future.set_result(None)
            else:
                submission.future.set_exception(AuditTrailUnavailable(str(outcome)))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A write transaction for recording, on the trail's own connections: unless
        ``synchronous_commits``, their commits do not wait for the disk (see the module docstring).
        On PostgreSQL they skip the main pool's liveness ping too: a connection found dead is an
        error ``write_events`` retries on a new one."""
        if self.database.sqlite:
            with self.database.writer_lock, self._engine().begin() as connection:
                yield connection
        else:
            with self._engine().begin() as connection:
                yield connection

    def _engine(self) -> Engine:
        if self._own_engine is not None:
            return self._own_engine
        if self.database.sqlite:
            engine = create_db_engine(self.database.url)
            if not self.synchronous_commits:

                @sqlalchemy_event.listens_for(engine, "connect")
                def unsynced(dbapi_connection: Any, _record: Any) -> None:
                    dbapi_connection.execute("PRAGMA synchronous=NORMAL")

            self._own_engine = engine.execution_options(sqlite_immediate=True)
        else:
            options = {} if self.synchronous_commits else {"options": "-c synchronous_commit=off"}
            self._own_engine = create_engine(
                self.database.url, pool_size=4, max_overflow=8, connect_args=options
            )
        return self._own_engine

    def write_events(self, events: Sequence[TrailEvent]) -> None:
        """Insert ``events`` in one transaction of their own, retrying what the database asks to retry.
        A retry leaves out events already there (a commit whose answer was lost did happen)."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self._transaction() as connection:
                    pending = list(events)
                    if attempt > 1:
                        ids = [e.event_id for e in events]
                        present = set(
                            connection.scalars(
                                select(AuditEvent.event_id).where(AuditEvent.event_id.in_(ids))
                            )
                        )
                        pending = [e for e in events if e.event_id not in present]
                    insert_events(connection, pending)
                return
            except DBAPIError as error:
                if attempt == ATTEMPTS or not _retryable(error):
                    raise
                log.info("recording audit events: %s; retrying (attempt %d)", error.orig, attempt + 1)
                time.sleep(random.uniform(0.005, 0.02) * attempt)

    # --- export and expiry -------------------------------------------------------------------------

    def _background_loop(self) -> None:
        next_expiry = time.monotonic()
        while True:
            stopping = self._stopping.is_set()
            if not stopping and time.monotonic() >= next_expiry:
                self._guarded(self.expire_now)
                next_expiry = time.monotonic() + EXPIRE_INTERVAL
            self._guarded(self.export_all)
            if stopping:
                return
            self._committed.wait(self.export_interval)
            self._committed.clear()
            self._stopping.wait(self.export_delay)

    def _guarded(self, work: Any) -> None:
        try:
            work()
        except Exception:  # keep the thread alive: the next round tries again
            log.exception("audit trail background work failed")

    def export_all(self) -> int:
        """Append every event not yet exported to its day's file; how many were written."""
        total = 0
        while True:
            written = self.export_pending()
            total += written
            if written < EXPORT_BATCH:
                return total

    def export_pending(self, limit: int = EXPORT_BATCH) -> int:
        """Export up to ``limit`` events (their lookup keys; with an audit directory their records,
        appended to their days' files and fsynced first), marking them exported; how many."""
        writer = JsonLinesWriter(self.audit_dir) if self.audit_dir is not None else None
        if self.database.sqlite:
            # One process exports: read, append and fsync outside the write lock, then keys and mark.
            with self._exporting:
                with self.database.transaction(write=False) as session:
                    rows = session.execute(_PENDING.limit(limit)).all()
                keys = _lookup_keys(rows)
                if rows:
                    if writer is not None:
                        writer.append((row.event_time, row.record) for row in rows)
                    # On the trail's own connections: a mark lost in a crash only exports them again.
                    with self._transaction() as connection:
                        _mark_exported(connection, rows, keys)
            return len(rows)
        # PostgreSQL: replicas share the table; each claims its rows until its files are written.
        with self.database.transaction() as session:
            rows = session.execute(_PENDING.limit(limit).with_for_update(skip_locked=True)).all()
            if rows:
                keys = _lookup_keys(rows)
                if writer is not None:
                    writer.append((row.event_time, row.record) for row in rows)
                _mark_exported(session.connection(), rows, keys)
        return len(rows)

    def expire_now(self) -> int:
        """Expire what the retention period no longer keeps (nothing when it is 0)."""
        if self.retention_days <= 0:
            return 0
        return self.expire(time.time() - self.retention_days * DAY)

    def expire(self, older_than: float, batch: int = 1000) -> int:
        """Delete events whose time is before ``older_than`` (epoch seconds), in short transactions, and
        the JSON-lines files of days wholly before it; how many events were deleted."""
        deleted = 0
        while True:
            with self.database.transaction() as session:
                ids = list(
                    session.scalars(
                        select(AuditEvent.id).where(AuditEvent.event_time < older_than).limit(batch)
                    )
                )
                if ids:
                    session.execute(delete(AuditLookupKey).where(AuditLookupKey.event_pk.in_(ids)))
                    session.execute(delete(AuditEvent).where(AuditEvent.id.in_(ids)))
            deleted += len(ids)
            if len(ids) < batch:
                break
        if self.audit_dir is not None:
            JsonLinesWriter(self.audit_dir).remove_before(older_than)
        if deleted:
            log.info("audit trail: expired %d event(s) older than the retention period", deleted)
        return deleted


# --- JSON lines ----------------------------------------------------------------------------------


def day_of(epoch: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


class JsonLinesWriter:
    """Appends CloudTrail records, one a line, to ``<directory>/audit-YYYY-MM-DD.jsonl`` (UTC days)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, day: str) -> Path:
        return self.directory / f"{FILE_PREFIX}{day}{FILE_SUFFIX}"

    def append(self, records: Iterable[tuple[float, str]]) -> None:
        """Append each (event time, record JSON) to its day's file; every file touched is fsynced."""
        by_day: dict[str, list[str]] = defaultdict(list)
        for event_time, line in records:
            by_day[day_of(event_time)].append(line)
        if not by_day:
            return
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for day, lines in by_day.items():
            path = self.path_for(day)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                data = ("\n".join(lines) + "\n").encode()
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        with contextlib.suppress(OSError):  # the new files' names are durable too
            directory_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(directory_fd)
            finally:
                os.close(directory_fd)

    def remove_before(self, epoch: float) -> list[Path]:
        """Delete the files of days that ended before ``epoch``."""
        if not self.directory.is_dir():
            return []
        cutoff = day_of(epoch)
        removed = []
        for path in self.directory.glob(f"{FILE_PREFIX}*{FILE_SUFFIX}"):
            day = path.name[len(FILE_PREFIX) : -len(FILE_SUFFIX)]
            if day < cutoff:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed


# --- looking up ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredEvent:
    """An event as LookupEvents returns it."""

    event_id: str
    event_time: float
    event_name: str
    event_source: str
    read_only: bool
    username: str | None
    access_key_id: str | None
    resources: list[tuple[str, str]]  # (type, name)
    record: str


@dataclass(frozen=True)
class EventPage:
    events: list[StoredEvent]
    next_position: tuple[float, int] | None  # where the next page starts (exclusive), if there is one


def _newest(
    stmt: Any, at: Any, pk: Any, start: float | None, until: float | None, after: Any, limit: int
) -> Any:
    """``stmt`` limited to a time range and to what comes after ``after``, newest first, ``limit`` rows."""
    if start is not None:
        stmt = stmt.where(at >= start)
    if until is not None:
        stmt = stmt.where(at < until)
    if after is not None:
        stmt = stmt.where(tuple_(at, pk) < tuple_(*after))
    return stmt.order_by(at.desc(), pk.desc()).limit(limit)


def _pending_matching(attribute: tuple[str, str]) -> Any:
    """Events not exported yet (so without lookup keys) that match ``attribute``, by their columns."""
    key, value = attribute
    # Materialized, from the partial index: else a planner may walk every event in time order.
    unexported = select(AuditEvent.id).where(text("NOT audit_events.exported")).cte("unexported")
    ids = select(unexported.prefix_with("MATERIALIZED").c.id)
    pending = select(AuditEvent).where(AuditEvent.id.in_(ids))
    if key in RESOURCE_ATTRIBUTES:
        # The column's compact JSON of [type, name] pairs: a type follows "[" and a name precedes "]",
        # and a quote inside a value is escaped, so the fragment matches that value there and nothing else.
        quoted = orjson.dumps(value).decode()
        fragment = f"[{quoted}," if key == "ResourceType" else f",{quoted}]"
        return pending.where(AuditEvent.resources.contains(fragment, autoescape=True))
    if key == "ReadOnly":
        return pending.where(AuditEvent.read_only.is_(value == "true"))
    return pending.where(LOOKUP_COLUMNS[key] == value)


def lookup(
    session: Session,
    *,
    attribute: tuple[str, str] | None = None,
    start: float | None = None,
    until: float | None = None,
    limit: int = 50,
    after: tuple[float, int] | None = None,
) -> EventPage:
    """One page of events, most recent first: those matching ``attribute`` (a LookupEvents key and
    value; ``ReadOnly`` takes ``"true"``/``"false"``) whose time is at or after ``start`` and before
    ``until``, continuing after ``after`` (a page's ``next_position``)."""
    by_time = (AuditEvent.event_time, AuditEvent.id, start, until, after, limit + 1)
    if attribute is None:
        rows = list(session.scalars(_newest(select(AuditEvent), *by_time)))
    elif attribute[0] == "EventId":
        rows = list(
            session.scalars(_newest(select(AuditEvent).where(AuditEvent.event_id == attribute[1]), *by_time))
        )
    else:
        # Those not exported first: one exported between the two reads is then found by both, not
        # by neither.
        found = {row.id: row for row in session.scalars(_newest(_pending_matching(attribute), *by_time))}
        keys = AuditLookupKey
        keyed = select(AuditEvent).join(keys, keys.event_pk == AuditEvent.id)
        keyed = keyed.where(keys.lookup_key == f"{attribute[0]}={attribute[1]}")
        for row in session.scalars(
            _newest(keyed, keys.event_time, keys.event_pk, start, until, after, limit + 1)
        ):
            found[row.id] = row
        rows = sorted(found.values(), key=lambda row: (row.event_time, row.id), reverse=True)[: limit + 1]
    more = len(rows) > limit
    rows = rows[:limit]
    events = [
        StoredEvent(
            event_id=row.event_id,
            event_time=row.event_time,
            event_name=row.event_name,
            event_source=row.event_source,
            read_only=row.read_only,
            username=row.username,
            access_key_id=row.access_key_id,
            resources=[(kind, name) for kind, name in orjson.loads(row.resources)],
            record=row.record,
        )
        for row in rows
    ]
    last = rows[-1] if rows else None
    return EventPage(events, (last.event_time, last.id) if more and last is not None else None)
