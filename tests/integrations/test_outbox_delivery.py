"""``integrations.outbox_delivery`` with the in-memory sender on SQLite: woken deliveries go out at once,
a failing or hanging destination is backed off alone (one try per backoff, its other notifications put
back untried) while other destinations keep being delivered, a permanent error gives up only its
notification, what a dead worker claimed is delivered after a restart, and a stop puts back what it had
claimed but not sent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from opendeploy.domain.notifications import Channel, Notification
from opendeploy.integrations.notifications import FakeSender
from opendeploy.integrations.outbox_delivery import OutboxDelivery
from opendeploy.settings import NotificationSettings
from opendeploy.store import outbox
from opendeploy.store.db import Database
from opendeploy.store.models.notifications import OutboxNotification

LIVE = "https://live.example/hook"
DEAD = "https://dead.example/hook"
SETTINGS = NotificationSettings(
    retry_base=0.3, retry_cap=0.6, max_attempts=50, poll_interval=30.0, send_timeout=1
)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'opendeploy.db'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


_numbers = iter(range(1, 1_000_000))


def note(destination: str, kind: Channel = Channel.WEBHOOK) -> Notification:
    return Notification(
        id=f"00000000-0000-4000-8000-{next(_numbers):012d}",
        kind=kind,
        destination=destination,
        event_type="InstanceSuccess",
        body="{}",
    )


def enqueue(database: Database, notifications: list[Notification], now: float | None = None) -> None:
    with database.transaction() as session:
        outbox.enqueue(session, notifications, now=now)


def rows(database: Database) -> dict[str, OutboxNotification]:
    with database.transaction(write=False) as session:
        return {r.id: r for r in session.scalars(select(OutboxNotification))}


def worker(database: Database, sender: FakeSender, **options: object) -> OutboxDelivery:
    senders = {Channel.WEBHOOK: sender, Channel.SNS: sender, Channel.EVENTBRIDGE: sender}
    return OutboxDelivery(database, SETTINGS, senders=senders, **options)  # type: ignore[arg-type]


def wait_until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_wake_delivers_at_once_and_marks_delivered(database: Database, sender: FakeSender) -> None:
    with worker(database, sender) as delivery:
        time.sleep(0.05)  # the first (empty) cycle is done; the next look would be 30 s away
        notifications = [note(LIVE), note(LIVE, Channel.SNS), note("arn:aws:sns:us-east-1:1:t", Channel.SNS)]
        enqueue(database, notifications)
        started = time.monotonic()
        delivery.wake()
        sent = sender.wait_for(3, timeout=5)
        elapsed = time.monotonic() - started
        assert elapsed < 1.0
        assert sorted(n.id for n in sent) == sorted(n.id for n in notifications)
        wait_until(lambda: all(r.delivered_at is not None for r in rows(database).values()))
    assert {r.next_attempt_at for r in rows(database).values()} == {None}


def test_a_failing_destination_is_backed_off_alone(database: Database, sender: FakeSender) -> None:
    sender.fail(DEAD, message="connection refused")
    dead = [note(DEAD) for _ in range(5)]
    live = [note(LIVE) for _ in range(5)]
    enqueue(database, [x for pair in zip(dead, live, strict=True) for x in pair])
    with worker(database, sender) as delivery:
        assert {n.id for n in sender.wait_for(5)} == {n.id for n in live}
        time.sleep(0.2)
        # One try for the dead destination, not one per notification: the others were put back untried.
        assert [n.destination for n in sender.attempts].count(DEAD) == 1
        stored = rows(database)
        assert stored[dead[0].id].attempts == 1
        assert stored[dead[0].id].last_error == "connection refused"
        assert [stored[n.id].attempts for n in dead[1:]] == [0, 0, 0, 0]

        later = [note(LIVE) for _ in range(3)]
        enqueue(database, later)
        delivery.wake()
        assert len(sender.wait_for(8)) >= 8  # live deliveries keep going meanwhile

        sender.recover(DEAD)
        wait_until(lambda: len(sender.sent) == 13)
        wait_until(lambda: all(r.delivered_at is not None for r in rows(database).values()))
    dead_sent = [n.id for n in sender.sent if n.destination == DEAD]
    assert sorted(dead_sent) == sorted(n.id for n in dead)


def test_a_hanging_destination_does_not_delay_others(database: Database, sender: FakeSender) -> None:
    sender.stall(DEAD, 1.5)  # each send hangs, then times out
    with worker(database, sender) as delivery:
        time.sleep(0.05)
        enqueue(database, [note(DEAD), note(DEAD)])
        delivery.wake()
        wait_until(lambda: len(sender.attempts) >= 1)
        started = time.monotonic()
        live = [note(LIVE) for _ in range(3)]
        enqueue(database, live)
        delivery.wake()
        sender.wait_for(3, timeout=5)
        assert time.monotonic() - started < 1.4  # not behind the dead destination's 1.5 s stalls
        assert {n.id for n in sender.sent} == {n.id for n in live}


def test_a_permanent_error_gives_up_only_its_notification(database: Database, sender: FakeSender) -> None:
    sender.fail(DEAD, permanent=True, message="no webhook configured")
    gone, kept = note(DEAD), note(LIVE)
    enqueue(database, [gone, kept])
    with worker(database, sender):
        sender.wait_for(1)
        wait_until(lambda: rows(database)[gone.id].abandoned_at is not None)
    stored = rows(database)
    assert stored[gone.id].last_error == "no webhook configured"
    assert stored[kept.id].delivered_at is not None


def test_what_a_dead_worker_claimed_is_delivered_after_a_restart(
    database: Database, sender: FakeSender
) -> None:
    notifications = [note(LIVE), note(DEAD)]
    enqueue(database, notifications)
    with database.transaction() as session:  # a worker claimed them and was killed before sending
        assert len(outbox.claim(session, time.time(), 10, lease=60.0)) == 2
    # The next start, once the lease has run out (a clock 61 s ahead).
    with worker(database, sender, clock=lambda: time.time() + 61):
        sent = sender.wait_for(2)
    assert sorted(n.id for n in sent) == sorted(n.id for n in notifications)


def test_stop_puts_back_what_was_claimed_but_not_sent(database: Database, sender: FakeSender) -> None:
    sender.stall(LIVE, 0.3, then_fail=False)  # a slow receiver
    queued = [note(LIVE) for _ in range(5)]
    enqueue(database, queued)
    delivery = worker(database, sender).start()
    wait_until(lambda: len(sender.attempts) == 1)
    delivery.stop()
    stopped_at = time.time()
    stored = rows(database)
    # The send under way finished and was recorded; the ones behind it are due again at once for the
    # next worker (not at the end of their lease), with no attempt counted.
    assert [n.id for n in sender.sent] == [queued[0].id]
    assert stored[queued[0].id].delivered_at is not None
    for n in queued[1:]:
        assert stored[n.id].attempts == 0
        assert stored[n.id].next_attempt_at is not None
        assert stored[n.id].next_attempt_at <= stopped_at
