"""The notification outbox: notifications written with the state change that causes them, delivered at
least once by a worker that may die at any moment, on one server or several sharing PostgreSQL.

- :func:`enqueue` adds notifications in the **caller's** transaction: the change and its notifications
  commit together or not at all, so a crash can lose neither one without the other.
- :func:`claim` takes due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so replicas never take the same
  row; SQLite's one writer at a time does the same) and leases them: their ``next_attempt_at`` moves
  ``lease`` seconds ahead, so a worker that dies mid-send leaves them to be claimed again. Nothing is
  ever deleted before it is delivered: a claim not followed by :func:`delivered` is delivered again.
- :func:`delivered` (:func:`delivered_all` for several) and :func:`failed` record the outcome; a failure
  is retried after a delay doubling from ``RetryPolicy.base`` up to ``cap``, and given up after
  ``max_attempts`` failed sends or once the notification is ``max_age`` old (or at once for a permanent
  error), keeping the row and its error.
- :func:`defer` puts back rows that were claimed but not tried (their destination just failed).

Each function works in the session it is given and commits nothing itself.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.orm import Session

from opendeploy.domain.notifications import Channel, Notification
from opendeploy.store.models.notifications import OutboxNotification

DEFAULT_LEASE = 120.0  # seconds a claimed row stays invisible to other claims
ERROR_LIMIT = 2000  # characters of an error kept on the row


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed notification is tried again, and when it is given up."""

    base: float = 5.0  # seconds before the first retry; doubled after each failure
    cap: float = 600.0  # the longest wait between two tries
    max_attempts: int = 20  # failed sends after which it is given up
    max_age: float = 86400.0  # seconds after its creation after which it is given up

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (1 → base, 2 → 2·base …)."""
        if failures <= 0:
            return 0.0
        return min(self.cap, self.base * 2.0 ** min(failures - 1, 62))


@dataclass(frozen=True)
class Claimed:
    """A claimed notification, with what the outbox knows about its past tries."""

    notification: Notification
    attempts: int
    created_at: float


_ORDER_KEY = "opendeploy.outbox_order"


def enqueue(session: Session, notifications: Iterable[Notification], now: float | None = None) -> int:
    """Add ``notifications`` to the outbox in the caller's transaction, due at once; how many were added.
    Their ``created_at`` keeps the order they were enqueued in within the transaction (a microsecond
    apart), so a deployment's start goes out before its instances' and its end after them."""
    at = time.time() if now is None else now
    rows = []
    for n in notifications:
        order = session.info.get(_ORDER_KEY, 0)
        session.info[_ORDER_KEY] = order + 1
        created = at + order * 1e-6
        rows.append(
            OutboxNotification(
                id=n.id,
                kind=n.kind.value,
                destination=n.destination,
                event_type=n.event_type,
                subject=n.subject,
                body=n.body,
                deployment_id=n.deployment_id,
                created_at=created,
                attempts=0,
                next_attempt_at=at,
            )
        )
    session.add_all(rows)
    if rows:
        session.flush()
    return len(rows)


def _pending() -> list[ColumnElement[bool]]:
    return [OutboxNotification.delivered_at.is_(None), OutboxNotification.abandoned_at.is_(None)]


def claim(
    session: Session,
    now: float,
    limit: int,
    *,
    lease: float = DEFAULT_LEASE,
    exclude: Collection[str] = (),
) -> list[Claimed]:
    """Take up to ``limit`` due notifications (oldest due first), skipping destinations in ``exclude``
    and rows other transactions hold; they are not due again for ``lease`` seconds. Call it in a write
    transaction of its own, committed before sending, so the lease is visible to other replicas."""
    query = (
        select(OutboxNotification)
        .where(OutboxNotification.next_attempt_at <= now, *_pending())
        .order_by(OutboxNotification.next_attempt_at, OutboxNotification.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if exclude:
        query = query.where(OutboxNotification.destination.not_in(list(exclude)))
    rows = list(session.scalars(query))
    if not rows:
        return []
    session.execute(
        update(OutboxNotification)
        .where(OutboxNotification.id.in_([row.id for row in rows]))
        .values(next_attempt_at=now + lease)
    )
    return [
        Claimed(
            notification=Notification(
                id=row.id,
                kind=Channel(row.kind),
                destination=row.destination,
                event_type=row.event_type,
                body=row.body,
                subject=row.subject,
                deployment_id=row.deployment_id,
            ),
            attempts=row.attempts,
            created_at=row.created_at,
        )
        for row in rows
    ]


def delivered(session: Session, notification_id: str, now: float) -> bool:
    """Record a delivery; False if the row was already delivered or given up (a duplicate send)."""
    result = session.execute(
        update(OutboxNotification)
        .where(OutboxNotification.id == notification_id, *_pending())
        .values(delivered_at=now, next_attempt_at=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def delivered_all(session: Session, notification_ids: Collection[str], now: float) -> int:
    """Record the delivery of several notifications in one statement (a statement per row costs the
    delivery worker a wait for the interpreter lock each while the engine keeps it busy); how many were
    still pending (the others: duplicate sends)."""
    if not notification_ids:
        return 0
    result = session.execute(
        update(OutboxNotification)
        .where(OutboxNotification.id.in_(list(notification_ids)), *_pending())
        .values(delivered_at=now, next_attempt_at=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def failed(
    session: Session,
    notification_id: str,
    now: float,
    error: str,
    policy: RetryPolicy,
    *,
    permanent: bool = False,
    not_before: float | None = None,
) -> float | None:
    """Record a failed send: the time of the next try (at least ``not_before``), or ``None`` if the
    notification is given up (its ``max_attempts``-th failure, ``max_age`` reached, ``permanent``) or
    was meanwhile delivered by someone else."""
    row = session.scalar(
        select(OutboxNotification)
        .where(OutboxNotification.id == notification_id, *_pending())
        .with_for_update()
    )
    if row is None:
        return None
    attempts = row.attempts + 1
    error = error[:ERROR_LIMIT]
    if permanent or attempts >= policy.max_attempts or now - row.created_at >= policy.max_age:
        session.execute(
            update(OutboxNotification)
            .where(OutboxNotification.id == notification_id)
            .values(attempts=attempts, last_error=error, abandoned_at=now, next_attempt_at=None)
        )
        return None
    retry_at = max(now + policy.delay(attempts), not_before or 0.0)
    session.execute(
        update(OutboxNotification)
        .where(OutboxNotification.id == notification_id)
        .values(attempts=attempts, last_error=error, next_attempt_at=retry_at)
    )
    return retry_at


def defer(
    session: Session,
    notification_ids: Collection[str],
    until: float,
    now: float,
    policy: RetryPolicy,
    reason: str | None = None,
) -> None:
    """Put back claimed notifications that were not tried, due again at ``until``; no attempt is
    counted. Those already ``max_age`` old are given up with ``reason`` as their error."""
    if not notification_ids:
        return
    ids = list(notification_ids)
    if reason is not None:
        session.execute(
            update(OutboxNotification)
            .where(
                OutboxNotification.id.in_(ids),
                OutboxNotification.created_at <= now - policy.max_age,
                *_pending(),
            )
            .values(abandoned_at=now, next_attempt_at=None, last_error=reason[:ERROR_LIMIT])
        )
    session.execute(
        update(OutboxNotification)
        .where(OutboxNotification.id.in_(ids), *_pending())
        .values(next_attempt_at=until)
    )


def next_due(session: Session, exclude: Collection[str] = ()) -> float | None:
    """When the earliest pending notification is due (leased ones: when their lease ends)."""
    query = select(func.min(OutboxNotification.next_attempt_at)).where(
        OutboxNotification.next_attempt_at.is_not(None), *_pending()
    )
    if exclude:
        query = query.where(OutboxNotification.destination.not_in(list(exclude)))
    return session.scalar(query)


def purge(session: Session, before: float, limit: int = 1000) -> int:
    """Delete up to ``limit`` notifications delivered or given up before ``before``; how many."""
    ids = list(
        session.scalars(
            select(OutboxNotification.id)
            .where(
                or_(
                    OutboxNotification.delivered_at < before,
                    OutboxNotification.abandoned_at < before,
                )
            )
            .limit(limit)
        )
    )
    if ids:
        session.execute(delete(OutboxNotification).where(OutboxNotification.id.in_(ids)))
    return len(ids)
