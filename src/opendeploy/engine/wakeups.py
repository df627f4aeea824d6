"""Wake-ups: telling waiting agents and the engine worker, right after a commit, that there is work.

Two kinds of waiter live in a server process's event loop: agents holding a PollHostCommand long poll
(keyed by their host identifier) and the engine worker. A transaction that creates a host command or
changes a deployment calls ``wake_host_on_commit`` / ``wake_engine_on_commit``; once it commits, the
process's ``WakeBus`` wakes the local waiters, and on PostgreSQL a ``NOTIFY`` (sent inside the
transaction, so delivered exactly when it commits) reaches every other server replica, whose listener
(``pg_listener``) wakes theirs. The hosts' NOTIFYs are sent together just before the commit: a group
commit (``transactions.GroupCommit``) issues the next events of many hosts in one transaction.
Nothing depends on a wake-up arriving: the engine sweeps the database periodically and long polls
re-check when they wake, so a lost wake-up only costs latency.

The bus is process-wide (``install_bus``) because request handlers and the engine reach it from worker
threads, where only the session is at hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, case, event, select, text, update
from sqlalchemy.orm import Session

from opendeploy.store.models import Deployment

log = logging.getLogger(__name__)

HOST_CHANNEL = "opendeploy_host_commands"
ENGINE_CHANNEL = "opendeploy_engine"
_INFO_KEY = "opendeploy.wakeups"
_NOTIFY_BATCH = 500  # hosts per NOTIFY round trip


class WakeBus:
    """In-process wake-ups, living in one event loop; every ``wake_*`` method is safe from any thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._host_waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._host_generation: dict[str, int] = {}
        self._engine_event: asyncio.Event | None = None
        self._stopping = False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to the server's event loop (call from inside it)."""
        self._loop = loop
        self._engine_event = asyncio.Event()
        self._stopping = False

    # --- host waiters (PollHostCommand) -------------------------------------------------------------

    def host_generation(self, host: str) -> int:
        """A counter that changes whenever ``host`` is woken; read it before checking the database, then
        ``wait_for_host(host, since=...)`` returns at once if a wake-up came in between."""
        return self._host_generation.get(host, 0)

    async def wait_for_host(
        self, host: str, *, since: int, timeout: float, gone: asyncio.Future[Any] | None = None
    ) -> bool:
        """Wait until ``host`` is woken (True), or the server stops, ``gone`` is done (the waiting client
        went away) or ``timeout`` passes (False). One future and one timer per wait, no task: a thousand
        agents' polls wait here at once."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the wake bus is not attached to an event loop")
        if self._host_generation.get(host, 0) != since:
            return True
        if self._stopping or (gone is not None and gone.done()):
            return False
        future: asyncio.Future[None] = loop.create_future()

        def release(_: object = None) -> None:
            if not future.done():
                future.set_result(None)

        self._host_waiters.setdefault(host, set()).add(future)
        timer = loop.call_later(max(timeout, 0.0), release)
        if gone is not None:
            gone.add_done_callback(release)
        try:
            await future
        finally:
            timer.cancel()
            if gone is not None:
                gone.remove_done_callback(release)
            waiters = self._host_waiters.get(host)
            if waiters is not None:
                waiters.discard(future)
                if not waiters:
                    del self._host_waiters[host]
        return self._host_generation.get(host, 0) != since and not self._stopping

    def wake_hosts(self, hosts: Iterable[str]) -> None:
        hosts = list(hosts)
        if hosts:
            self._call(self._wake_hosts_now, hosts)

    def wake_all_hosts(self) -> None:
        """Wake every waiting poll (after a lost database notification channel, say)."""
        self._call(lambda: self._wake_hosts_now(list(self._host_waiters)))

    def _wake_hosts_now(self, hosts: list[str]) -> None:
        for host in hosts:
            self._host_generation[host] = self._host_generation.get(host, 0) + 1
            for future in self._host_waiters.pop(host, ()):
                if not future.done():
                    future.set_result(None)

    @property
    def waiting_hosts(self) -> int:
        return sum(len(waiters) for waiters in self._host_waiters.values())

    # --- the engine worker ----------------------------------------------------------------------------

    def wake_engine(self) -> None:
        self._call(lambda: self._engine_event.set() if self._engine_event else None)

    async def wait_for_engine_work(self, timeout: float) -> None:
        """Return when the engine is woken or ``timeout`` passes; clears the wake-up for the next wait."""
        if self._engine_event is None:
            raise RuntimeError("the wake bus is not attached to an event loop")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._engine_event.wait(), timeout=max(timeout, 0))
        self._engine_event.clear()

    # --- stopping -------------------------------------------------------------------------------------

    def stop(self) -> None:
        """The server is shutting down: release every waiting poll (they answer ``{}``)."""
        self._stopping = True
        self._call(self._release_all)

    def _release_all(self) -> None:
        for waiters in list(self._host_waiters.values()):
            for future in waiters:
                if not future.done():
                    future.set_result(None)

    @property
    def stopping(self) -> bool:
        return self._stopping

    def _call(self, callback: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            callback(*args)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits any more
                loop.call_soon_threadsafe(callback, *args)


_bus: WakeBus | None = None


def install_bus(bus: WakeBus | None) -> None:
    """Make ``bus`` this process's wake bus (``None`` uninstalls it)."""
    global _bus
    _bus = bus


def current_bus() -> WakeBus | None:
    return _bus


# --- waking on commit ---------------------------------------------------------------------------------


def _pending(session: Session) -> dict[str, Any]:
    pending = session.info.get(_INFO_KEY)
    if pending is None:
        pending = {"hosts": set(), "engine": False}
        session.info[_INFO_KEY] = pending
    return pending


def wake_host_on_commit(session: Session, hosts: Iterable[str]) -> None:
    """Once this transaction commits, wake the long polls of ``hosts`` (here and on every replica)."""
    hosts = [host for host in hosts if host]
    if hosts:
        _pending(session)["hosts"].update(hosts)


def _notify_hosts(session: Session, hosts: list[str]) -> None:
    for start in range(0, len(hosts), _NOTIFY_BATCH):
        session.execute(
            text("SELECT pg_notify(:channel, host) FROM unnest(CAST(:hosts AS text[])) AS host"),
            {"channel": HOST_CHANNEL, "hosts": hosts[start : start + _NOTIFY_BATCH]},
        )


def wake_engine_on_commit(session: Session) -> None:
    """Once this transaction commits, wake the engine worker (here and on every replica)."""
    pending = _pending(session)
    if pending["engine"]:
        return
    pending["engine"] = True
    if _is_postgresql(session):
        session.execute(select(text("pg_notify(:channel, '')")), {"channel": ENGINE_CHANNEL})


_DUE_NOW = (
    update(Deployment)
    .where(Deployment.id == bindparam("b_deployment"))
    # A deployment whose last step failed keeps the time of its next try (``reconciler``'s backoff):
    # instances finishing in a busy fleet must not turn the backoff into a hot loop.
    .values(
        engine_due_at=case(
            (Deployment.engine_attempts > 0, Deployment.engine_due_at), else_=bindparam("b_now")
        )
    )
)


def deployment_changed(session: Session, deployment_id: str, now: float) -> None:
    """Something about ``deployment_id`` changed (created, stop requested, an instance finished): have
    the engine look at it now (or, if its last step failed, at its next try). Call inside the
    transaction that made the change."""
    session.execute(_DUE_NOW, {"b_deployment": deployment_id, "b_now": now})
    wake_engine_on_commit(session)


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    pending = session.info.get(_INFO_KEY)
    if pending is not None and pending["hosts"] and _is_postgresql(session):
        _notify_hosts(session, sorted(pending["hosts"]))


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    pending = session.info.pop(_INFO_KEY, None)
    bus = _bus
    if pending is None or bus is None:
        return
    if pending["hosts"]:
        bus.wake_hosts(pending["hosts"])
    if pending["engine"]:
        bus.wake_engine()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_INFO_KEY, None)
