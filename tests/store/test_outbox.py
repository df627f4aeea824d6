"""``store.outbox`` on SQLite and PostgreSQL: notifications written in the caller's transaction (gone with
its rollback), claimed under a lease (a claim never marked delivered — a crash — is claimed again with
the same id once the lease ends), retried with a doubling capped delay, given up after N failures, an
age or a permanent error with the row and its error kept, put back untried without an attempt counted,
kept across a restart, and on PostgreSQL claimed by concurrent replicas without overlap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from opendeploy.domain.notifications import Channel, Notification
from opendeploy.store import outbox
from opendeploy.store.base import Base
from opendeploy.store.db import Database
from opendeploy.store.models.notifications import OutboxNotification
from opendeploy.store.outbox import RetryPolicy
from support.postgres import Databases

T0 = 1_800_000_000.0
POLICY = RetryPolicy(base=5.0, cap=40.0, max_attempts=5, max_age=3600.0)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'opendeploy.db'}"
    else:
        databases: Databases = request.getfixturevalue("postgres_databases")
        url = databases.create()
    database = Database(url)
    database.migrate()
    yield database
    database.dispose()


def note(number: int, destination: str = "https://hooks.example/a") -> Notification:
    return Notification(
        id=f"00000000-0000-4000-8000-{number:012d}",
        kind=Channel.WEBHOOK,
        destination=destination,
        event_type="DeploymentSuccess",
        body=f'{{"n":{number}}}',
        deployment_id="d-ABCDEFGHI",
    )


def enqueue(database: Database, *notifications: Notification, now: float = T0) -> None:
    with database.transaction() as session:
        outbox.enqueue(session, notifications, now=now)


def claim(database: Database, now: float, limit: int = 10, **options: object) -> list[str]:
    with database.transaction() as session:
        return [c.notification.id for c in outbox.claim(session, now, limit, **options)]  # type: ignore[arg-type]


def row(database: Database, notification_id: str) -> OutboxNotification:
    with database.transaction(write=False) as session:
        found = session.get(OutboxNotification, notification_id)
        assert found is not None
        return found


def test_the_migration_creates_what_the_model_describes(database: Database) -> None:
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in differences if "notification_outbox" in repr(d)] == []


def test_enqueue_commits_and_rolls_back_with_the_callers_transaction(database: Database) -> None:
    with pytest.raises(RuntimeError), database.transaction() as session:
        outbox.enqueue(session, [note(1)], now=T0)
        raise RuntimeError("the state change failed")
    assert claim(database, T0 + 1) == []

    enqueue(database, note(2))
    stored = row(database, note(2).id)
    assert (stored.kind, stored.destination, stored.event_type, stored.body) == (
        "webhook",
        "https://hooks.example/a",
        "DeploymentSuccess",
        '{"n":2}',
    )
    assert (stored.attempts, stored.next_attempt_at, stored.delivered_at, stored.created_at) == (
        0,
        T0,
        None,
        T0,
    )


def test_claim_leases_and_a_claim_never_marked_is_claimed_again_with_the_same_id(database: Database) -> None:
    enqueue(database, note(1), note(2), note(3))
    with database.transaction() as session:
        claimed = outbox.claim(session, T0, 2, lease=30.0)
    assert [c.notification for c in claimed] == [note(1), note(2)]  # everything as enqueued, oldest first
    assert [c.attempts for c in claimed] == [0, 0]
    assert claim(database, T0 + 1) == [note(3).id]  # the leased ones are not due
    assert claim(database, T0 + 29) == []

    # The worker died before marking them delivered: they come back once the lease ends, same ids.
    assert claim(database, T0 + 30) == [note(1).id, note(2).id]


def test_deliveries_are_recorded_together(database: Database) -> None:
    enqueue(database, note(1), note(2), note(3))
    assert claim(database, T0) == [note(1).id, note(2).id, note(3).id]
    with database.transaction() as session:
        assert outbox.delivered(session, note(1).id, T0 + 1)
        # One statement for several; the one already delivered is a duplicate and keeps its time.
        assert outbox.delivered_all(session, [note(1).id, note(2).id, note(3).id], T0 + 2) == 2
    assert [row(database, note(n).id).delivered_at for n in (1, 2, 3)] == [T0 + 1, T0 + 2, T0 + 2]
    assert claim(database, T0 + 1000) == []


def test_delivered_notifications_are_done(database: Database) -> None:
    enqueue(database, note(1))
    assert claim(database, T0) == [note(1).id]
    with database.transaction() as session:
        assert outbox.delivered(session, note(1).id, T0 + 1)
    with database.transaction() as session:
        assert not outbox.delivered(session, note(1).id, T0 + 2)  # a duplicate send: first one counts
        assert outbox.failed(session, note(1).id, T0 + 2, "late", POLICY) is None  # ignored
    stored = row(database, note(1).id)
    assert (stored.delivered_at, stored.next_attempt_at, stored.attempts, stored.last_error) == (
        T0 + 1,
        None,
        0,
        None,
    )
    assert claim(database, T0 + 10_000) == []
    with database.transaction(write=False) as session:
        assert outbox.next_due(session) is None


def test_failures_retry_with_a_doubling_capped_delay_then_give_up_keeping_the_error(
    database: Database,
) -> None:
    enqueue(database, note(1))
    now = T0
    retries = []
    for attempt in range(1, 5):
        assert claim(database, now) == [note(1).id]
        with database.transaction() as session:
            retry_at = outbox.failed(session, note(1).id, now, f"HTTP 503 #{attempt}", POLICY)
        assert retry_at is not None
        retries.append(retry_at - now)
        assert claim(database, retry_at - 0.001) == []
        now = retry_at
    assert retries == [5.0, 10.0, 20.0, 40.0]
    assert row(database, note(1).id).attempts == 4

    assert claim(database, now) == [note(1).id]
    with database.transaction() as session:
        assert outbox.failed(session, note(1).id, now, "HTTP 503 #5", POLICY) is None  # the 5th: given up
    stored = row(database, note(1).id)
    assert (stored.attempts, stored.abandoned_at, stored.next_attempt_at, stored.delivered_at) == (
        5,
        now,
        None,
        None,
    )
    assert stored.last_error == "HTTP 503 #5"
    assert claim(database, now + 10_000) == []


def test_cap_and_destination_backoff(database: Database) -> None:
    assert [RetryPolicy(base=1.0, cap=10.0).delay(n) for n in range(0, 7)] == [
        0.0,
        1.0,
        2.0,
        4.0,
        8.0,
        10.0,
        10.0,
    ]
    assert RetryPolicy(base=1.0, cap=10.0).delay(10_000) == 10.0
    enqueue(database, note(1))
    claim(database, T0)
    with database.transaction() as session:
        assert outbox.failed(session, note(1).id, T0, "down", POLICY, not_before=T0 + 33) == T0 + 33


def test_too_old_and_permanent_failures_are_given_up_at_once(database: Database) -> None:
    enqueue(database, note(1), note(2))
    claim(database, T0 + 3600)
    with database.transaction() as session:
        assert outbox.failed(session, note(1).id, T0 + 3600, "still down", POLICY) is None  # max_age reached
        assert (
            outbox.failed(session, note(2).id, T0 + 3600, "404 no such topic", POLICY, permanent=True) is None
        )
    assert row(database, note(1).id).abandoned_at == T0 + 3600
    assert row(database, note(2).id).last_error == "404 no such topic"
    assert row(database, note(2).id).attempts == 1


def test_defer_puts_back_untried_rows_without_counting_and_gives_up_old_ones(database: Database) -> None:
    enqueue(database, note(1), now=T0 - 4000)  # older than max_age
    enqueue(database, note(2), note(3))
    assert claim(database, T0) == [note(1).id, note(2).id, note(3).id]
    with database.transaction() as session:
        outbox.defer(session, [note(1).id, note(2).id, note(3).id], T0 + 7, T0, POLICY, reason="dest down")
    assert row(database, note(1).id).abandoned_at == T0
    assert row(database, note(1).id).last_error == "dest down"
    assert (row(database, note(2).id).attempts, row(database, note(2).id).next_attempt_at) == (0, T0 + 7)
    assert claim(database, T0 + 6) == []
    assert claim(database, T0 + 7) == [note(2).id, note(3).id]


def test_claim_skips_excluded_destinations(database: Database) -> None:
    enqueue(
        database,
        note(1, "https://dead.example/"),
        note(2, "https://live.example/"),
        note(3, "https://dead.example/"),
    )
    assert claim(database, T0, exclude={"https://dead.example/"}) == [note(2).id]
    with database.transaction(write=False) as session:
        assert outbox.next_due(session, exclude={"https://dead.example/"}) == T0 + outbox.DEFAULT_LEASE
        assert outbox.next_due(session) == T0
    assert claim(database, T0) == [note(1).id, note(3).id]


def test_purge_removes_only_old_finished_rows(database: Database) -> None:
    enqueue(database, note(1), note(2), note(3))
    claim(database, T0)
    with database.transaction() as session:
        outbox.delivered(session, note(1).id, T0 + 1)
        outbox.failed(session, note(2).id, T0 + 1, "gone", POLICY, permanent=True)
    with database.transaction() as session:
        assert outbox.purge(session, before=T0 + 1) == 0
        assert outbox.purge(session, before=T0 + 2) == 2
    with database.transaction(write=False) as session:
        assert list(session.scalars(select(OutboxNotification.id))) == [note(3).id]


def test_notifications_survive_a_restart(database: Database) -> None:
    enqueue(database, note(1))
    claim(database, T0)  # claimed, then the process died
    url = database.url
    database.dispose()
    restarted = Database(url)
    try:
        restarted.migrate()
        assert claim(restarted, T0 + outbox.DEFAULT_LEASE) == [note(1).id]
    finally:
        restarted.dispose()


@pytest.mark.postgres
def test_concurrent_claims_on_postgresql_never_overlap(postgres_databases: Databases) -> None:
    database = Database(postgres_databases.create())
    try:
        database.migrate()
        enqueue(database, *(note(n) for n in range(1, 7)))
        with database.transaction() as first, database.transaction() as second:
            # The first replica's claim is not committed yet: its rows are locked, the second skips them.
            mine = [c.notification.id for c in outbox.claim(first, T0, 3)]
            theirs = [c.notification.id for c in outbox.claim(second, T0, 10)]
        assert mine == [note(n).id for n in (1, 2, 3)]
        assert theirs == [note(n).id for n in (4, 5, 6)]
        assert claim(database, T0 + 1) == []
    finally:
        database.dispose()
