"""The delivery worker: a background thread that empties the notification outbox (``store.outbox``).

It claims due notifications, hands each destination's share to a *lane* on a small thread pool, and
records every outcome, so:

- **nothing is lost**: a row leaves the outbox's due set only when a send succeeded or was given up; a
  claim that dies with its process comes back when its lease ends (``lease`` seconds), so a restart
  delivers what a crash left behind (at least once: receivers deduplicate by the notification's id);
- **a dead endpoint delays only its own notifications**: one lane per destination at a time, sending in
  order; when a send fails, the lane stops, the destination is backed off (the same doubling delay as a
  row's, counted per destination) and its other claimed rows are put back untried, and the next claims
  skip it until its backoff ends. Other destinations' lanes run on other threads meanwhile — as long as
  fewer than ``threads`` destinations hang at once (each hang is bounded by the sender's timeout);
- **it wakes soon after an enqueue**: the engine sets :attr:`OutboxDelivery.wake_event` (or calls
  :meth:`wake`) after committing a change with notifications; otherwise it looks every
  ``poll_interval`` seconds, and at the next row's due time when that is sooner.

It lives in ``integrations`` because it does I/O through the senders and uses the store below it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from opendeploy.domain.notifications import Channel
from opendeploy.integrations.notifications import NotificationError, NotificationSender, senders_for
from opendeploy.settings import NotificationSettings
from opendeploy.store import outbox
from opendeploy.store.db import Database

log = logging.getLogger(__name__)

MINIMUM_PAUSE = 0.01
DEFAULT_THREADS = 8
DEFAULT_BATCH = 200
DEFAULT_LEASE = 60.0
MARK_EVERY = 50  # deliveries recorded per transaction (a crash before recording only sends them again)
MARK_AFTER = 0.25  # … or after this many seconds
PURGE_EVERY = 3600.0
KEEP_DELIVERED = 7 * 86400.0  # delivered and given-up rows are deleted this long after


@dataclass
class _Backoff:
    until: float
    failures: int


class OutboxDelivery:
    """Delivers the outbox's notifications from a background thread (module docstring)."""

    def __init__(
        self,
        database: Database,
        settings: NotificationSettings,
        *,
        senders: Mapping[Channel, NotificationSender] | None = None,
        clock: Callable[[], float] = time.time,
        threads: int = DEFAULT_THREADS,
        batch: int = DEFAULT_BATCH,
        lease: float = DEFAULT_LEASE,
        keep_delivered: float = KEEP_DELIVERED,
    ) -> None:
        self.database = database
        self.settings = settings
        self._owns_senders = senders is None
        self.senders = dict(senders) if senders is not None else senders_for(settings)
        self.clock = clock
        self.batch = batch
        self.lease = lease
        self.keep_delivered = keep_delivered
        self.policy = outbox.RetryPolicy(
            base=settings.retry_base,
            cap=settings.retry_cap,
            max_attempts=settings.max_attempts,
            max_age=settings.max_age,
        )
        # Set it to have the worker look for notifications now (after committing some).
        self.wake_event = threading.Event()
        self._threads = threads
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._backoff: dict[str, _Backoff] = {}
        self._lanes: dict[Future[None], list[outbox.Claimed]] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._last_purge = 0.0
        self._started_before = False

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> OutboxDelivery:
        if self._owns_senders and self._started_before:
            self.senders = senders_for(self.settings)  # the last stop closed them
        self._started_before = True
        self._stopping.clear()
        self._pool = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="opendeploy-notify")
        self._thread = threading.Thread(target=self._run, name="opendeploy-outbox", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming, let sends under way finish (each bounded by its sender's timeout), and put
        back what was claimed but not sent, so another worker (or the next start) sends it at once."""
        self._stopping.set()
        self.wake_event.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        with self._lock:
            cancelled = [items for future, items in self._lanes.items() if future.cancelled()]
            self._lanes.clear()
        for items in cancelled:
            self._put_back([c.notification.id for c in items], self.clock())
        if self._owns_senders:
            for sender in self.senders.values():
                close = getattr(sender, "close", None)
                if close is not None:
                    close()

    def wake(self) -> None:
        """Look for due notifications now (the engine calls it after committing some)."""
        self.wake_event.set()

    def __enter__(self) -> OutboxDelivery:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the loop ------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.wake_event.clear()
            try:
                self.run_once()
                pause = self._pause()
            except Exception:
                log.exception("notification delivery: a cycle failed; trying again shortly")
                pause = self.settings.poll_interval
            self.wake_event.wait(pause)

    def _excluded(self, now: float) -> set[str]:
        with self._lock:
            for destination in [d for d, b in self._backoff.items() if b.until <= now]:
                self._backoff[destination].until = 0.0  # over: the next failure still counts on
            return self._busy | {d for d, b in self._backoff.items() if b.until > now}

    def run_once(self) -> int:
        """Claim what is due now and start sending it; how many notifications were claimed."""
        now = self.clock()
        self._purge(now)
        excluded = self._excluded(now)
        with self.database.transaction() as session:
            claimed = outbox.claim(session, now, self.batch, lease=self.lease, exclude=excluded)
        lanes: dict[str, list[outbox.Claimed]] = defaultdict(list)
        for item in claimed:
            lanes[item.notification.destination].append(item)
        for destination, items in lanes.items():
            with self._lock:
                self._busy.add(destination)
            self._submit(destination, items, now)
        return len(claimed)

    def _submit(self, destination: str, items: list[outbox.Claimed], claimed_at: float) -> None:
        if self._pool is None:  # not started: run the lane here (tests drive it so)
            self._lane(destination, items, claimed_at)
            return
        try:
            future = self._pool.submit(self._lane, destination, items, claimed_at)
        except RuntimeError:  # shutting down
            self._put_back([c.notification.id for c in items], self.clock())
            with self._lock:
                self._busy.discard(destination)
            return
        with self._lock:
            self._lanes[future] = items
        future.add_done_callback(self._lane_done)

    def _lane_done(self, future: Future[None]) -> None:
        with self._lock:
            if not future.cancelled():
                self._lanes.pop(future, None)

    def _pause(self) -> float:
        now = self.clock()
        excluded = self._excluded(now)
        with self.database.transaction(write=False) as session:
            due = outbox.next_due(session, exclude=excluded)
        pause = self.settings.poll_interval
        if due is not None:
            pause = min(pause, due - now)
        with self._lock:
            ends = [b.until for b in self._backoff.values() if b.until > now]
        if ends:
            pause = min(pause, min(ends) - now)
        return max(pause, MINIMUM_PAUSE)

    # --- one destination's lane -----------------------------------------------------------------

    def _lane(self, destination: str, items: list[outbox.Claimed], claimed_at: float) -> None:
        sent: list[str] = []
        last_mark = self.clock()
        # Stop sending in time to record the outcome before the lease ends and another claim resends.
        deadline = claimed_at + self.lease - max(self.settings.send_timeout * 2, 5.0)
        try:
            for index, item in enumerate(items):
                now = self.clock()
                if self._stopping.is_set() or now > deadline:
                    self._put_back([c.notification.id for c in items[index:]], now)
                    return
                notification = item.notification
                sender = self.senders.get(notification.kind)
                try:
                    if sender is None:
                        raise NotificationError(f"no sender for {notification.kind!r}", permanent=True)
                    sender.send(notification)
                except Exception as error:
                    self._mark_delivered(sent)
                    sent = []
                    if not isinstance(error, NotificationError):
                        log.exception("notification %s: sender failed unexpectedly", notification.id)
                        error = NotificationError(f"{type(error).__name__}: {error}")
                    if self._failed(destination, item, items[index + 1 :], error):
                        return
                    continue
                sent.append(notification.id)
                with self._lock:
                    self._backoff.pop(destination, None)
                if len(sent) >= MARK_EVERY or self.clock() - last_mark >= MARK_AFTER:
                    self._mark_delivered(sent)
                    sent, last_mark = [], self.clock()
        except Exception:
            log.exception(
                "notification delivery to %s failed; its claims return when their lease ends", destination
            )
        finally:
            try:
                self._mark_delivered(sent)
            except Exception:
                log.exception("notification delivery: recording deliveries to %s failed", destination)
            with self._lock:
                self._busy.discard(destination)
            self.wake_event.set()

    def _failed(
        self, destination: str, item: outbox.Claimed, rest: list[outbox.Claimed], error: NotificationError
    ) -> bool:
        """Record a failed send; True if the lane must stop (the destination is backed off)."""
        now = self.clock()
        if error.permanent:
            with self.database.transaction() as session:
                outbox.failed(session, item.notification.id, now, str(error), self.policy, permanent=True)
            log.warning("notification %s to %s given up: %s", item.notification.id, destination, error)
            return False
        with self._lock:
            backoff = self._backoff.get(destination) or _Backoff(0.0, 0)
            backoff.failures += 1
            backoff.until = now + self.policy.delay(backoff.failures)
            self._backoff[destination] = backoff
        with self.database.transaction() as session:
            retry_at = outbox.failed(
                session, item.notification.id, now, str(error), self.policy, not_before=backoff.until
            )
            outbox.defer(
                session,
                [c.notification.id for c in rest],
                backoff.until,
                now,
                self.policy,
                reason=f"given up untried: {destination} kept failing: {error}",
            )
        if retry_at is None:
            log.warning("notification %s to %s given up: %s", item.notification.id, destination, error)
        else:
            log.info(
                "notification %s to %s failed (%s); destination backed off %.1fs",
                item.notification.id,
                destination,
                error,
                backoff.until - now,
            )
        return True

    def _mark_delivered(self, ids: list[str]) -> None:
        if not ids:
            return
        now = self.clock()
        with self.database.transaction() as session:
            outbox.delivered_all(session, ids, now)

    def _put_back(self, ids: list[str], now: float) -> None:
        if ids:
            with self.database.transaction() as session:
                outbox.defer(session, ids, now, now, self.policy)

    def _purge(self, now: float) -> None:
        if now - self._last_purge < PURGE_EVERY:
            return
        self._last_purge = now
        with self.database.transaction() as session:
            removed = outbox.purge(session, now - self.keep_delivered)
        if removed:
            log.info("notification outbox: removed %d delivered or given-up notifications", removed)
