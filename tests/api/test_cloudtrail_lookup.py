"""CloudTrail's LookupEvents against a real server, through boto3 and ``aws cloudtrail lookup-events``.

Recording is not wired into the request paths yet, so events are recorded straight into the server's
database with ``store.audit_trail`` (the test and the server share the data directory and database),
then looked up: by each lookup attribute, by time range, page by page, with each of CloudTrail's errors;
and they are still there, and in the JSON-lines files, after a ``kill -9`` and a restart.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from opendeploy.domain.cloudtrail_events import ApiCall, Caller, TrailEvent, trail_event
from opendeploy.settings import Settings
from opendeploy.store.audit_trail import AuditTrail
from opendeploy.store.db import Database
from support.names import unique
from support.postgres import Databases
from support.server import ServerProcess

ACCOUNT = "111122223333"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def trail_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    url = None
    if request.param == "postgresql":
        databases: Databases = request.getfixturevalue("postgres_databases")
        url = databases.create()
    server = ServerProcess(tmp_path_factory.mktemp(f"trail-{request.param}"), url)
    server.start()
    yield server
    server.stop()


def record(server: ServerProcess, events: list[TrailEvent]) -> None:
    """Record ``events`` in the server's own database, as its API layer will."""
    settings = Settings(data_dir=server.data_dir, database_url=server.database_url)
    database = Database(settings.effective_database_url)
    trail = AuditTrail(database)
    try:
        trail.record(events)
    finally:
        trail.stop()
        database.dispose()


def access_key_of(user: str) -> str:
    return "AKIA" + hashlib.sha256(user.encode()).hexdigest()[:16].upper()


def event(
    user: str,
    at: float,
    operation: str = "CreateDeployment",
    *,
    error: str | None = None,
    params: dict[str, Any] | None = None,
    service: str = "codedeploy",
) -> TrailEvent:
    return trail_event(
        ApiCall(
            service=service,
            operation=operation,
            time=at,
            region="us-east-1",
            account_id=ACCOUNT,
            request_id=unique("request"),
            caller=Caller(f"arn:aws:iam::{ACCOUNT}:user/{user}", access_key_of(user)),
            source_ip="192.0.2.10",
            user_agent="aws-cli/1.32",
            request_parameters=params if params is not None else {"applicationName": f"{user}-app"},
            response_elements={"deploymentId": "d-EXAMPLE11"},
            error_code=error,
            error_message=f"User: {user} is not authorized" if error else None,
        )
    )


def by_user(user: str) -> list[dict[str, str]]:
    return [{"AttributeKey": "Username", "AttributeValue": user}]


def test_lookup_events_by_user_with_the_parameters_and_the_denial(trail_server: ServerProcess) -> None:
    alice, bob = unique("alice"), unique("bob")
    now = time.time()
    created = event(alice, now - 5, params={"applicationName": "web", "deploymentGroupName": "prod"})
    denied = event(bob, now - 4, error="AccessDeniedException")
    read = event(alice, now - 3, "GetDeployment", params={"deploymentId": "d-EXAMPLE11"})
    record(trail_server, [created, denied, read])
    cloudtrail = trail_server.client("cloudtrail")

    events = cloudtrail.lookup_events(LookupAttributes=by_user(alice))["Events"]
    assert [e["EventId"] for e in events] == [read.event_id, created.event_id]  # most recent first
    first = events[1]
    assert first["EventName"] == "CreateDeployment"
    assert first["ReadOnly"] == "false" and events[0]["ReadOnly"] == "true"
    assert first["Username"] == alice
    assert first["AccessKeyId"] == created.access_key_id
    assert first["EventSource"] == "codedeploy.amazonaws.com"
    assert abs(first["EventTime"].timestamp() - (now - 5)) < 0.01
    assert first["Resources"] == [
        {"ResourceType": "AWS::CodeDeploy::Application", "ResourceName": "web"},
        {"ResourceType": "AWS::CodeDeploy::DeploymentGroup", "ResourceName": "prod"},
    ]
    record_ = json.loads(first["CloudTrailEvent"])
    assert record_["requestParameters"] == {"applicationName": "web", "deploymentGroupName": "prod"}
    assert record_["userIdentity"]["userName"] == alice
    assert record_ == created.record

    (refused,) = cloudtrail.lookup_events(LookupAttributes=by_user(bob))["Events"]
    assert json.loads(refused["CloudTrailEvent"])["errorCode"] == "AccessDeniedException"

    # The same through the AWS CLI, as the issue asks.
    cli = trail_server.aws_json(
        "cloudtrail", "lookup-events", "--lookup-attributes", f"AttributeKey=Username,AttributeValue={alice}"
    )
    assert [e["EventId"] for e in cli["Events"]] == [read.event_id, created.event_id]
    assert json.loads(cli["Events"][1]["CloudTrailEvent"])["eventName"] == "CreateDeployment"


@pytest.mark.parametrize(
    ("key", "value_of"),
    [
        ("EventId", lambda e: e.event_id),
        ("EventName", lambda e: e.event_name),
        ("AccessKeyId", lambda e: e.access_key_id),
        ("ResourceName", lambda e: e.resources[0].name),
    ],
)
def test_lookup_by_other_attributes(trail_server: ServerProcess, key: str, value_of: Any) -> None:
    user = unique("carol")
    target = event(
        user,
        time.time() - 2,
        unique("Operation"),
        service="s3",
        params={"bucketName": unique("bucket"), "key": "app.zip"},
    )
    record(trail_server, [target, event(unique("someone-else"), time.time() - 1)])
    found = trail_server.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": key, "AttributeValue": value_of(target)}]
    )["Events"]
    assert [e["EventId"] for e in found] == [target.event_id]


def test_lookup_by_event_source_read_only_and_resource_type(trail_server: ServerProcess) -> None:
    user = unique("dave")
    now = time.time()
    events = [
        event(user, now - 3, "GetObject", service="s3", params={"bucketName": "b", "key": "k"}),
        event(user, now - 2, "PutUserPolicy", service="iam", params={"UserName": user}),
    ]
    record(trail_server, events)
    cloudtrail = trail_server.client("cloudtrail")

    def ids(key: str, value: str) -> list[str]:
        found = cloudtrail.lookup_events(
            LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}], StartTime=now - 4
        )["Events"]
        return [e["EventId"] for e in found if e.get("Username") == user]

    assert ids("EventSource", "s3.amazonaws.com") == [events[0].event_id]
    assert ids("ReadOnly", "true") == [events[0].event_id]
    assert ids("ReadOnly", "false") == [events[1].event_id]
    assert ids("ResourceType", "AWS::IAM::User") == [events[1].event_id]


def test_time_ranges_and_pages(trail_server: ServerProcess) -> None:
    user = unique("erin")
    now = time.time()
    events = [event(user, now - 100 + n) for n in range(7)]
    record(trail_server, events)
    cloudtrail = trail_server.client("cloudtrail")
    newest_first = [e.event_id for e in reversed(events)]

    paginator = cloudtrail.get_paginator("lookup_events")
    pages = list(paginator.paginate(LookupAttributes=by_user(user), PaginationConfig={"PageSize": 3}))
    assert [len(page["Events"]) for page in pages] == [3, 3, 1]
    assert [e["EventId"] for page in pages for e in page["Events"]] == newest_first

    # Inclusive bounds, as datetimes (boto3 sends epoch seconds).
    start = datetime.fromtimestamp(events[2].event_time, UTC)
    end = datetime.fromtimestamp(events[4].event_time, UTC)
    within = cloudtrail.lookup_events(LookupAttributes=by_user(user), StartTime=start, EndTime=end)["Events"]
    assert [e["EventId"] for e in within] == newest_first[2:5]

    # The CLI pages through by itself (--page-size) and keeps to the range (ISO 8601 times).
    cli = trail_server.aws_json(
        "cloudtrail",
        "lookup-events",
        "--lookup-attributes",
        f"AttributeKey=Username,AttributeValue={user}",
        "--start-time",
        datetime.fromtimestamp(events[1].event_time, UTC).isoformat(),
        "--page-size",
        "2",
    )
    assert [e["EventId"] for e in cli["Events"]] == newest_first[:6]

    # MaxResults may change between pages; a token keeps its place.
    first = cloudtrail.lookup_events(LookupAttributes=by_user(user), MaxResults=2)
    rest = cloudtrail.lookup_events(
        LookupAttributes=by_user(user), MaxResults=50, NextToken=first["NextToken"]
    )
    assert [e["EventId"] for e in first["Events"] + rest["Events"]] == newest_first
    assert "NextToken" not in rest


def code_of(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]["Code"]


def test_errors_as_cloudtrail_names_them(trail_server: ServerProcess) -> None:
    user = unique("frank")
    now = time.time()
    record(trail_server, [event(user, now - n) for n in range(3)])
    cloudtrail = trail_server.client("cloudtrail")
    raw = trail_server.raw_client("cloudtrail").lookup_events

    two = [*by_user(user), {"AttributeKey": "EventName", "AttributeValue": "CreateDeployment"}]
    assert code_of(cloudtrail.lookup_events, LookupAttributes=two) == "InvalidLookupAttributesException"
    not_boolean = [{"AttributeKey": "ReadOnly", "AttributeValue": "maybe"}]
    assert (
        code_of(cloudtrail.lookup_events, LookupAttributes=not_boolean) == "InvalidLookupAttributesException"
    )
    unknown_key = [{"AttributeKey": "Colour", "AttributeValue": "x"}]
    assert code_of(raw, LookupAttributes=unknown_key) == "InvalidLookupAttributesException"
    assert code_of(raw, LookupAttributes=[{"AttributeKey": "Username"}]) == "InvalidLookupAttributesException"
    assert code_of(cloudtrail.lookup_events, StartTime=now, EndTime=now - 60) == "InvalidTimeRangeException"
    assert code_of(raw, MaxResults=0) == "InvalidMaxResultsException"
    assert code_of(raw, MaxResults=51) == "InvalidMaxResultsException"
    assert code_of(cloudtrail.lookup_events, NextToken="made-up") == "InvalidNextTokenException"
    token = cloudtrail.lookup_events(LookupAttributes=by_user(user), MaxResults=1)["NextToken"]
    # A token is bound to the filters it came with.
    other = by_user(unique("someone"))
    assert (
        code_of(cloudtrail.lookup_events, LookupAttributes=other, NextToken=token)
        == "InvalidNextTokenException"
    )
    assert cloudtrail.lookup_events(EventCategory="insight")["Events"] == []

    cli = trail_server.aws(
        "cloudtrail", "lookup-events", "--start-time", "2030-01-02", "--end-time", "2030-01-01"
    )
    assert cli.returncode != 0 and "InvalidTimeRangeException" in cli.stderr


def test_only_administrators_may_look_events_up_for_now(trail_server: ServerProcess) -> None:
    import boto3
    import botocore.config

    key_id, secret = trail_server.store_access_key(f"arn:aws:iam::{ACCOUNT}:user/{unique('nobody')}")
    client = boto3.client(
        "cloudtrail",
        endpoint_url=trail_server.endpoint,
        region_name=trail_server.region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    assert code_of(client.lookup_events) == "AccessDeniedException"


def test_recorded_events_survive_kill_9_and_reach_the_json_lines_files(
    server_factory: Any, backend: str
) -> None:
    server = server_factory(backend)
    user = unique("grace")
    now = time.time()
    events = [event(user, now - 3 + n) for n in range(3)]
    record(server, events)  # committed: what the API layer will have done before answering
    server.kill9()
    server.start()

    found = server.client("cloudtrail").lookup_events(LookupAttributes=by_user(user))["Events"]
    assert [e["EventId"] for e in found] == [e.event_id for e in reversed(events)]

    def exported() -> list[str]:
        return [
            json.loads(line)["eventID"]
            for path in sorted((server.data_dir / "audit").glob("audit-*.jsonl"))
            for line in path.read_text().splitlines()
        ]

    from support.server import wait_for

    wait_for(lambda: set(exported()) >= {e.event_id for e in events}, timeout=15, message="JSON lines")
