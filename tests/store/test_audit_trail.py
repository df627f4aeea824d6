"""``store.audit_trail`` on SQLite and PostgreSQL: events recorded durably (one at a time, batched, from
many threads), looked up by each LookupEvents attribute and time range in pages, written to the day's
JSON-lines file (private, fsynced, none missing after a crash), and expired with their files."""

from __future__ import annotations

import dataclasses
import json
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text, update

from opendeploy.domain.cloudtrail_events import ApiCall, Caller, TrailEvent, trail_event
from opendeploy.store.audit_trail import AuditTrail, AuditTrailUnavailable, insert_events, lookup
from opendeploy.store.base import Base
from opendeploy.store.db import Database, alembic_config, migrate
from opendeploy.store.models.audit_events import AuditEvent, AuditLookupKey
from support.postgres import Databases
from support.server import wait_for

ACCOUNT = "111122223333"
DAY = 86400.0
T0 = (time.time() // DAY - 3) * DAY  # midnight (UTC) three days ago: well within the retention period


def file_of(epoch: float) -> str:
    return f"audit-{time.strftime('%Y-%m-%d', time.gmtime(epoch))}.jsonl"


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


def call(
    at: float,
    *,
    user: str = "alice",
    operation: str = "CreateDeployment",
    service: str = "codedeploy",
    params: dict[str, Any] | None = None,
    key: str = "AKIAALICE",
) -> ApiCall:
    return ApiCall(
        service=service,
        operation=operation,
        time=at,
        region="us-east-1",
        account_id=ACCOUNT,
        request_id=f"request-{at}",
        caller=Caller(f"arn:aws:iam::{ACCOUNT}:user/{user}", key),
        source_ip="127.0.0.1",
        user_agent="pytest",
        request_parameters=params if params is not None else {"applicationName": "App"},
    )


def event(at: float, **details: Any) -> TrailEvent:
    return trail_event(call(at, **details))


def read(at: float) -> ApiCall:
    return call(at, operation="GetDeployment", params={"deploymentId": "d-ABCDEFGHI"})


def recorded(database: Database) -> int:
    with database.transaction(write=False) as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def all_pages(database: Database, **filters: Any) -> list[str]:
    """Event ids of every page of a lookup, in order, 2 per page."""
    ids: list[str] = []
    after = None
    while True:
        with database.transaction(write=False) as session:
            page = lookup(session, limit=2, after=after, **filters)
        ids += [e.event_id for e in page.events]
        if page.next_position is None:
            return ids
        after = page.next_position


def test_the_migration_creates_what_the_models_describe(database: Database) -> None:
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    ours = [d for d in differences if "audit_event" in repr(d)]
    assert ours == []


# Exported events are found by their lookup keys, the others by their own columns: each way alone and
# both in one lookup (the first two exported) must give the same answers.
@pytest.mark.parametrize("exported", [0, 2, 4], ids=["none-exported", "half-exported", "all-exported"])
def test_lookup_by_each_attribute_most_recent_first(database: Database, exported: int) -> None:
    events = [
        event(T0 + 1, user="alice", params={"applicationName": "App", "deploymentGroupName": "G"}),
        event(T0 + 2, user="bob", operation="GetDeployment", key="AKIABOB", params={"deploymentId": "d-1"}),
        event(
            T0 + 3, user="alice", service="s3", operation="GetObject", params={"bucketName": "b", "key": "k"}
        ),
        event(T0 + 4, user="alice", operation="ListApplications", params={}),
    ]
    trail = AuditTrail(database)
    trail.record(events)
    assert trail.export_pending(limit=exported) == exported
    with database.transaction(write=False) as session:
        keys = session.scalars(
            select(AuditLookupKey.lookup_key).where(
                AuditLookupKey.event_pk.in_(
                    select(AuditEvent.id).where(AuditEvent.event_id == events[0].event_id)
                )
            )
        )
        assert sorted(keys) == (
            []
            if exported == 0
            else [
                "AccessKeyId=AKIAALICE",
                "EventName=CreateDeployment",
                "EventSource=codedeploy.amazonaws.com",
                "ReadOnly=false",
                "ResourceName=App",
                "ResourceName=G",
                "ResourceType=AWS::CodeDeploy::Application",
                "ResourceType=AWS::CodeDeploy::DeploymentGroup",
                "Username=alice",
            ]
        )
    ids = [e.event_id for e in events]

    def found(key: str, value: str) -> list[str]:
        return all_pages(database, attribute=(key, value))

    assert all_pages(database) == ids[::-1]
    assert found("Username", "alice") == [ids[3], ids[2], ids[0]]
    assert found("Username", "Alice") == []  # exact, as CloudTrail
    assert found("EventName", "GetDeployment") == [ids[1]]
    assert found("AccessKeyId", "AKIABOB") == [ids[1]]
    assert found("EventId", ids[2]) == [ids[2]]
    assert found("EventSource", "s3.amazonaws.com") == [ids[2]]
    assert found("ReadOnly", "true") == [ids[3], ids[2], ids[1]]
    assert found("ReadOnly", "false") == [ids[0]]
    assert found("ResourceType", "AWS::CodeDeploy::DeploymentGroup") == [ids[0]]
    assert found("ResourceName", "App") == [ids[0]]
    assert found("ResourceName", "b/k") == [ids[2]]

    with database.transaction(write=False) as session:
        page = lookup(session, attribute=("EventId", ids[0]))
    (stored,) = page.events
    assert stored.resources == [
        ("AWS::CodeDeploy::Application", "App"),
        ("AWS::CodeDeploy::DeploymentGroup", "G"),
    ]
    assert json.loads(stored.record) == events[0].record
    assert (stored.username, stored.access_key_id, stored.read_only) == ("alice", "AKIAALICE", False)


def test_time_ranges_and_pages_do_not_skip_or_repeat(database: Database) -> None:
    # Two events share a time: the page boundary between them must still see both.
    events = [event(T0 + t) for t in (10, 20, 20, 30, 40, 50)]
    AuditTrail(database).record(events)
    ids = [e.event_id for e in events]
    assert all_pages(database, start=T0 + 20, until=T0 + 40.5) == [ids[4], ids[3], ids[2], ids[1]]
    assert all_pages(database, start=T0 + 41) == [ids[5]]
    assert all_pages(database, until=T0 + 10.5) == [ids[0]]
    assert all_pages(database, start=T0 + 60) == []
    assert sorted(all_pages(database)) == sorted(ids)
    assert len(set(all_pages(database))) == len(ids)


def test_the_writer_batches_events_from_many_threads(database: Database) -> None:
    trail = AuditTrail(database)
    trail.start()
    try:
        threads = [
            threading.Thread(target=lambda n=n: [trail.record([event(T0 + n + i / 100)]) for i in range(20)])
            for n in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        trail.stop()
    assert recorded(database) == 160


def test_a_bad_submission_fails_alone(database: Database) -> None:
    trail = AuditTrail(database)
    first = event(T0)
    trail.record([first])
    trail.start()
    try:
        duplicate = trail.submit([first])  # the same eventID again: refused by the database
        others = [trail.submit([event(T0 + n)]) for n in range(1, 5)]
        with pytest.raises(AuditTrailUnavailable):
            duplicate.result(10)
        for future in others:
            future.result(10)
    finally:
        trail.stop()
    assert recorded(database) == 5


def test_reads_nobody_waits_for_gather_but_a_waited_for_event_does_not_wait_with_them(
    database: Database,
) -> None:
    trail = AuditTrail(database, linger=30.0)
    trail.start()
    try:
        trail.submit_reads([read(T0 + n) for n in range(3)])
        time.sleep(0.1)  # the writer has woken for them and lingers
        assert recorded(database) == 0
        began = time.monotonic()
        trail.submit([event(T0 + 10)]).result(10)  # a refusal or a change: committed now, reads with it
        assert time.monotonic() - began < 5
        assert recorded(database) == 4
    finally:
        trail.stop()


def test_reads_submitted_during_a_commit_wait_for_company_not_a_commit_of_their_own(
    database: Database,
) -> None:
    trail = AuditTrail(database, linger=1.0)
    batches: list[int] = []
    written = threading.Event()
    write_events = trail.write_events

    def writing(events: Sequence[TrailEvent]) -> None:
        if not batches:  # a read arrives while the first batch is being written
            trail.submit_reads([read(T0 + 5)])
        write_events(events)
        batches.append(len(events))
        written.set()

    trail.write_events = writing  # type: ignore[method-assign]
    trail.start()
    try:
        trail.submit_reads([read(T0 + n) for n in range(3)])
        assert written.wait(10)
        # Two more reads within the next linger: the late one goes with them.
        trail.submit_reads([read(T0 + 6 + n) for n in range(2)])
        wait_for(lambda: recorded(database) == 6, interval=0.01)
    finally:
        trail.stop()
    assert batches == [3, 3]


def test_lingering_reads_are_committed_within_the_linger_time(database: Database) -> None:
    trail = AuditTrail(database, linger=0.05)
    trail.start()
    try:
        trail.submit_reads([read(T0)])
        wait_for(lambda: recorded(database) == 1, interval=0.01)
        [stored] = lookup_all(database)
        assert json.loads(stored.record)["eventName"] == "GetDeployment"
        assert json.loads(stored.record)["readOnly"] is True
    finally:
        trail.stop()


def lookup_all(database: Database) -> list[Any]:
    with database.transaction(write=False) as session:
        return lookup(session).events


def test_a_read_whose_event_cannot_be_built_is_left_out_and_the_others_are_recorded(
    database: Database,
) -> None:
    trail = AuditTrail(database)
    broken = dataclasses.replace(read(T0), caller=None)  # type: ignore[arg-type]
    trail.submit_reads([read(T0 + 1), broken, read(T0 + 2)])  # not started: written now
    assert [e.event_time for e in lookup_all(database)] == [T0 + 2, T0 + 1]


def test_events_reach_the_days_json_lines_file(database: Database, tmp_path: Path) -> None:
    audit_dir = tmp_path / "audit"
    trail = AuditTrail(database, audit_dir, export_delay=0.01)
    trail.start()
    try:
        first_day = [event(T0 + 10), event(T0 + 20)]
        second_day = [event(T0 + DAY + 5)]
        trail.record(first_day + second_day)
    finally:
        trail.stop()  # exports what is committed before it returns
    one = audit_dir / file_of(T0)
    two = audit_dir / file_of(T0 + DAY)
    assert [json.loads(line) for line in one.read_text().splitlines()] == [e.record for e in first_day]
    assert [json.loads(line) for line in two.read_text().splitlines()] == [second_day[0].record]
    assert stat.S_IMODE(one.stat().st_mode) == 0o600
    assert stat.S_IMODE(audit_dir.stat().st_mode) == 0o700
    with database.transaction(write=False) as session:
        assert session.scalar(select(func.count()).where(~AuditEvent.exported)) == 0


def test_events_committed_before_a_crash_are_exported_at_the_next_start(
    database: Database, tmp_path: Path
) -> None:
    audit_dir = tmp_path / "audit"
    # Recorded by a server that died before its export ran: committed, not exported.
    committed = [event(T0 + n) for n in range(3)]
    AuditTrail(database, audit_dir).record(committed)
    assert not audit_dir.exists()
    trail = AuditTrail(database, audit_dir)
    trail.start()
    trail.stop()
    lines = (audit_dir / file_of(T0)).read_text().splitlines()
    assert sorted(json.loads(line)["eventID"] for line in lines) == sorted(e.event_id for e in committed)
    # Appended, never rewritten: a later export adds to the same file.
    later = event(T0 + 100)
    AuditTrail(database, audit_dir).record([later])
    assert AuditTrail(database, audit_dir).export_all() == 1
    assert len((audit_dir / file_of(T0)).read_text().splitlines()) == 4


def test_expiry_deletes_old_events_their_resources_keys_and_files(database: Database, tmp_path: Path) -> None:
    audit_dir = tmp_path / "audit"
    now = time.time()
    old = [event(now - 100 * DAY), event(now - 91 * DAY, params={"applicationName": "Old"})]
    kept = [event(now - 89 * DAY), event(now - 1)]
    trail = AuditTrail(database, audit_dir, retention_days=90)
    trail.record(old + kept)
    assert trail.export_all() == 4
    old_files = {
        audit_dir / f"audit-{time.strftime('%Y-%m-%d', time.gmtime(e.event_time))}.jsonl" for e in old
    }
    assert all(path.exists() for path in old_files)

    assert trail.expire_now() == 2
    assert sorted(all_pages(database)) == sorted(e.event_id for e in kept)
    with database.transaction(write=False) as session:
        keyed = set(session.scalars(select(AuditLookupKey.lookup_key)))
    assert "ResourceName=Old" not in keyed
    with database.transaction(write=False) as session:
        keyed_events = set(session.scalars(select(AuditLookupKey.event_pk)))
        kept_events = set(session.scalars(select(AuditEvent.id)))
    assert keyed_events == kept_events  # every key of an expired event went with it
    assert not any(path.exists() for path in old_files)
    assert len(list(audit_dir.glob("audit-*.jsonl"))) == 2
    assert AuditTrail(database, retention_days=0).expire_now() == 0  # 0: kept forever


def test_only_unexported_events_are_exported(database: Database, tmp_path: Path) -> None:
    trail = AuditTrail(database, tmp_path / "audit")
    trail.record([event(T0), event(T0 + 1)])
    with database.transaction() as session:
        session.execute(update(AuditEvent).where(AuditEvent.event_time == T0).values(exported=True))
    assert trail.export_all() == 1
    assert trail.export_all() == 0


@pytest.mark.parametrize("synchronous", [False, True])
def test_synced_and_unsynced_commits_record_alike(database: Database, synchronous: bool) -> None:
    trail = AuditTrail(database, synchronous_commits=synchronous)
    try:
        trail.record([event(T0), event(T0 + 1)])
    finally:
        trail.stop()
    assert len(all_pages(database)) == 2


def test_an_event_can_join_the_callers_transaction(database: Database) -> None:
    with database.transaction() as session:
        insert_events(session, [event(T0, params={"applicationName": "Joined"})])
    with database.transaction(write=False) as session:
        (found,) = lookup(session, attribute=("ResourceName", "Joined")).events
    assert found.event_name == "CreateDeployment"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def unmigrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("postgres_databases").create()
    database = Database(url)
    yield database
    database.dispose()


def test_the_lookup_keys_migration_keeps_every_event_found_and_its_resources(unmigrated: Database) -> None:
    database = unmigrated
    migrate(database.engine, "0014_event_stream")
    events = [
        event(T0 + 1, user="alice", params={"applicationName": "App", "deploymentGroupName": "G"}),
        event(T0 + 2, user="bob", operation="GetDeployment", key="AKIABOB", params={"deploymentId": "d-1"}),
        event(T0 + 3, user="alice", params={"applicationName": 'Quo"ted', "deploymentGroupName": "G"}),
    ]
    with database.engine.begin() as connection:  # as 0014 recorded them: resources in their own table
        for e in events:
            connection.execute(
                text(
                    "INSERT INTO audit_events (event_id, event_time, event_name, event_source, username, "
                    "access_key_id, read_only, event_category, exported, record) VALUES (:id, :at, :name, "
                    ":source, :user, :key, :read_only, 'Management', :exported, :record)"
                ),
                {
                    "id": e.event_id,
                    "at": e.event_time,
                    "name": e.event_name,
                    "source": e.event_source,
                    "user": e.username,
                    "key": e.access_key_id,
                    "read_only": e.read_only,
                    "exported": e is not events[2],
                    "record": e.json,
                },
            )
            for r in e.resources:
                connection.execute(
                    text(
                        "INSERT INTO audit_event_resources (event_pk, resource_type, resource_name) "
                        "SELECT id, :type, :name FROM audit_events WHERE event_id = :id"
                    ),
                    {"id": e.event_id, "type": r.type, "name": r.name},
                )

    def check() -> None:
        assert all_pages(database, attribute=("Username", "alice")) == [ids[2], ids[0]]
        assert all_pages(database, attribute=("ResourceName", "G")) == [ids[2], ids[0]]
        assert all_pages(database, attribute=("ResourceName", 'Quo"ted')) == [ids[2]]
        assert all_pages(database, attribute=("ResourceType", "AWS::CodeDeploy::Application")) == [
            ids[2],
            ids[0],
        ]
        assert all_pages(database, attribute=("ReadOnly", "true")) == [ids[1]]
        assert all_pages(database, attribute=("EventId", ids[1])) == [ids[1]]
        with database.transaction(write=False) as session:
            stored = lookup(session).events
        assert [e.resources for e in stored] == [
            [("AWS::CodeDeploy::Application", 'Quo"ted'), ("AWS::CodeDeploy::DeploymentGroup", "G")],
            [],
            [("AWS::CodeDeploy::Application", "App"), ("AWS::CodeDeploy::DeploymentGroup", "G")],
        ]

    ids = [e.event_id for e in events]
    database.migrate()
    check()
    with database.transaction(write=False) as session:
        keyed = set(
            session.scalars(
                select(AuditEvent.event_id).join(AuditLookupKey, AuditLookupKey.event_pk == AuditEvent.id)
            )
        )
    assert keyed == {ids[0], ids[1]}  # the one not exported gets its keys at its export
    assert AuditTrail(database).export_all() == 1
    check()

    command.downgrade(alembic_config(database.engine), "0014_event_stream")
    with database.engine.connect() as connection:
        kept = connection.execute(
            text(
                "SELECT e.event_id, r.resource_type, r.resource_name FROM audit_event_resources r "
                "JOIN audit_events e ON e.id = r.event_pk ORDER BY r.id"
            )
        ).all()
    assert [tuple(row) for row in kept] == [
        (ids[0], "AWS::CodeDeploy::Application", "App"),
        (ids[0], "AWS::CodeDeploy::DeploymentGroup", "G"),
        (ids[2], "AWS::CodeDeploy::Application", 'Quo"ted'),
        (ids[2], "AWS::CodeDeploy::DeploymentGroup", "G"),
    ]
    database.migrate()
    check()
