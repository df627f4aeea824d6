"""The notification senders against real receivers: SNS Publish through a moto server process that
delivers to an HTTP subscriber this test runs (moto posts synchronously during Publish, spec §2), the
message compared field by field with the guide's sample; EventBridge PutEvents matched by a rule whose
target is an SQS queue on moto, read back from the queue; webhooks verified (HMAC-SHA256 signature,
delivery id, event) by an HTTP server in the test; and a dead webhook endpoint — connection refused or
never answering — not delaying deliveries to a live one through the delivery worker."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from opendeploy.domain.notifications import (
    Channel,
    DeploymentChange,
    DeploymentEvent,
    Destinations,
    InstanceChange,
    InstanceEvent,
    LifecycleEventState,
    Notification,
    TriggerConfig,
    notifications_for,
    trigger_test_notifications,
)
from opendeploy.integrations import aws_clients
from opendeploy.integrations.notifications import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    NOTIFICATION_ID_ATTRIBUTE,
    SIGNATURE_HEADER,
    EventBridgeSender,
    NotificationError,
    SnsSender,
    WebhookSender,
    senders_for,
    verify_signature,
)
from opendeploy.integrations.outbox_delivery import OutboxDelivery
from opendeploy.settings import NotificationSettings, Webhook
from opendeploy.store import outbox
from opendeploy.store.db import Database
from opendeploy.store.models.notifications import OutboxNotification
from support.moto import REGION, MotoServer
from support.names import unique
from support.server import free_port

ACCOUNT = "123456789012"  # moto's account
GROUP_ID = "0b0c6a47-4e6b-4d8e-9a55-7f2f2ad6a001"


# --- receivers ------------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records each POST and answers ``status``."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    status: int = 200
    arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received) >= count, timeout), self.received
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            target = holder["receiver"]
            self.send_response(target.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            with target.arrived:
                target.received.append(Received(self.path, dict(self.headers.items()), body))
                target.arrived.notify_all()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder["receiver"] = Receiver(server)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield holder["receiver"]
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A URL whose server accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    listener.close()


def refused_url() -> str:
    """A URL nothing listens at: connections are refused."""
    return f"http://127.0.0.1:{free_port()}/hook"


# --- state changes --------------------------------------------------------------------------------


def deployment_change(**changes: Any) -> DeploymentChange:
    values: dict[str, Any] = {
        "event": DeploymentEvent.FAILURE,
        "region": REGION,
        "account_id": ACCOUNT,
        "deployment_id": "d-75I7MBT7C",
        "application_name": "ProductionApp-us-west-3",
        "deployment_group_name": "dep-group-def-456",
        "deployment_group_id": GROUP_ID,
        "status": "Failed",
        "create_time": 1446744188.595,
        "complete_time": 1446744190.402,
        "time": 1446744190.402,
        "overview": {"Failed": 10},
        "error_code": "IAM_ROLE_MISSING",
        "error_message": "IAM Role is missing for deployment group: dep-group-def-456",
    }
    return DeploymentChange(**(values | changes))


def instance_change() -> InstanceChange:
    return InstanceChange(
        event=InstanceEvent.SUCCESS,
        region=REGION,
        account_id=ACCOUNT,
        deployment_id="d-75I7MBT7C",
        application_name="App",
        deployment_group_name="Group",
        deployment_group_id=GROUP_ID,
        instance_id="i-496589f7",
        instance_arn=f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-496589f7",
        status="Succeeded",
        last_updated_at=1446744207.564,
        time=1446744207.564,
        lifecycle_events=(
            LifecycleEventState("ApplicationStop", "Succeeded", 1446744188.595, 1446744188.711),
            LifecycleEventState("BeforeInstall", "Succeeded", 1446744189.827, 1446744190.402),
        ),
    )


# --- AWS through moto -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with MotoServer(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def server_clients(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The server's own AWS clients (aws_clients) pointed at moto through the environment."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in moto.env.items():
        monkeypatch.setenv(name, value)
    aws_clients.reset()
    yield
    aws_clients.reset()


def subscribe(moto: MotoServer, url: str) -> str:
    sns = moto.client("sns")
    topic = sns.create_topic(Name=unique("deployments"))["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url)
    return topic


def test_sns_trigger_message_reaches_an_http_subscriber_as_the_guide_shows(
    moto: MotoServer, server_clients: None, receiver: Receiver
) -> None:
    topic = subscribe(moto, receiver.url + "/sns")
    sqs = moto.client("sqs")  # moto leaves message attributes out of HTTP deliveries, not SQS ones
    queue_url = sqs.create_queue(QueueName=unique("sns"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    moto.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    trigger = TriggerConfig("Trigger-group-us-west-3-deploy-failed", topic, ("DeploymentFailure",))
    (notification,) = notifications_for(deployment_change(), [trigger])

    SnsSender().send(notification)

    (queued,) = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=2)["Messages"]
    attributes = json.loads(queued["Body"])["MessageAttributes"]
    assert attributes[NOTIFICATION_ID_ATTRIBUTE] == {"Type": "String", "Value": notification.id}

    (received,) = receiver.wait_for(1)
    envelope = json.loads(received.body)
    assert envelope["Type"] == "Notification"
    assert envelope["TopicArn"] == topic
    assert envelope["Subject"] == "FAILED: AWS CodeDeploy d-75I7MBT7C in us-east-1 to ProductionApp-us-west-3"
    message = json.loads(envelope["Message"])
    guide = {  # L21118–21140, with this deployment's region and account
        "region": REGION,
        "accountId": ACCOUNT,
        "eventTriggerName": "Trigger-group-us-west-3-deploy-failed",
        "applicationName": "ProductionApp-us-west-3",
        "deploymentId": "d-75I7MBT7C",
        "deploymentGroupName": "dep-group-def-456",
        "createTime": "1446744188.595",
        "completeTime": "1446744190.402",
        "deploymentOverview": {
            "Failed": "10",
            "InProgress": "0",
            "Pending": "0",
            "Skipped": "0",
            "Succeeded": "0",
        },
        "status": "Failed",
        "errorInformation": {
            "ErrorCode": "IAM_ROLE_MISSING",
            "ErrorMessage": "IAM Role is missing for deployment group: dep-group-def-456",
        },
    }
    assert list(message) == list(guide)
    for key, value in guide.items():
        assert message[key] == value, key


def test_sns_instance_trigger_and_test_notification(
    moto: MotoServer, server_clients: None, receiver: Receiver
) -> None:
    topic = subscribe(moto, receiver.url)
    trigger = TriggerConfig("trigger-group-us-east-instance-succeeded", topic, ("InstanceSuccess",))
    (test,) = trigger_test_notifications(
        None,
        [trigger],
        region=REGION,
        account_id=ACCOUNT,
        application_name="App",
        deployment_group_name="Group",
    )
    (instance,) = notifications_for(instance_change(), [trigger])
    sender = SnsSender()
    sender.send(test)
    sender.send(instance)

    first, second = receiver.wait_for(2)
    assert json.loads(json.loads(first.body)["Message"])["testNotification"] == "true"
    message = json.loads(json.loads(second.body)["Message"])
    assert message["instanceId"] == f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-496589f7"
    assert message["instanceStatus"] == "Succeeded"
    assert message["lifecycleEvents"][1] == {
        "LifecycleEvent": "BeforeInstall",
        "LifecycleEventStatus": "Succeeded",
        "StartTime": "1446744189.827",
        "EndTime": "1446744190.402",
    }


def test_sns_publish_to_a_missing_topic_fails(server_clients: None) -> None:
    missing = Notification(
        "n-1", Channel.SNS, f"arn:aws:sns:{REGION}:{ACCOUNT}:no-such-topic", "X", "{}", "s"
    )
    with pytest.raises(NotificationError, match="no-such-topic"):
        SnsSender().send(missing)


def test_eventbridge_events_reach_an_sqs_target(moto: MotoServer, server_clients: None) -> None:
    events, sqs = moto.client("events"), moto.client("sqs")
    bus = unique("deployments")
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=unique("events"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    source = NotificationSettings.event_source
    pattern = {
        "source": [source],
        "detail-type": ["CodeDeploy Deployment State-change Notification"],
        "detail": {"state": ["FAILURE"]},
    }
    events.put_rule(Name="failures", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="failures", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])

    destinations = Destinations(event_bus=bus)
    sender = EventBridgeSender(source)
    (failure,) = notifications_for(deployment_change(), [], destinations)
    (success,) = notifications_for(
        deployment_change(event=DeploymentEvent.SUCCESS, status="Succeeded", error_code=None),
        [],
        destinations,
    )
    sender.send(success)  # not matched by the rule
    sender.send(failure)

    answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2)
    (message,) = answer["Messages"]
    event = json.loads(message["Body"])
    sent = json.loads(failure.body)
    assert event["source"] == source
    assert event["detail-type"] == "CodeDeploy Deployment State-change Notification"
    assert (
        event["resources"]
        == sent["resources"]
        == [
            f"arn:aws:codedeploy:{REGION}:{ACCOUNT}:application:ProductionApp-us-west-3",
            f"arn:aws:codedeploy:{REGION}:{ACCOUNT}:deploymentgroup:ProductionApp-us-west-3/dep-group-def-456",
        ]
    )
    assert event["detail"] == {
        "instanceGroupId": GROUP_ID,
        "region": REGION,
        "application": "ProductionApp-us-west-3",
        "deploymentId": "d-75I7MBT7C",
        "state": "FAILURE",
        "deploymentGroup": "dep-group-def-456",
    }
    assert event["time"] == sent["time"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1446744190))
    assert event["region"] == REGION


def test_eventbridge_instance_event_with_the_guides_source(moto: MotoServer, server_clients: None) -> None:
    events, sqs = moto.client("events"), moto.client("sqs")
    queue_url = sqs.create_queue(QueueName=unique("instances"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule = unique("instances")
    pattern = {"source": ["aws.codedeploy"], "detail-type": ["CodeDeploy Instance State-change Notification"]}
    events.put_rule(Name=rule, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": queue_arn}])

    (notification,) = notifications_for(instance_change(), [], Destinations(event_bus="default"))
    EventBridgeSender("aws.codedeploy").send(notification)  # a stand-in takes aws.*; AWS would refuse it

    (message,) = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=2)["Messages"]
    event = json.loads(message["Body"])
    assert event["detail"]["instanceId"] == "i-496589f7"
    assert event["detail"]["state"] == "SUCCESS"
    assert event["resources"][0] == f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-496589f7"


# --- webhooks ---------------------------------------------------------------------------------------

SECRET = "s3cr3t-for-tests"


def test_webhook_is_signed_and_verified_by_the_receiver(receiver: Receiver) -> None:
    url = receiver.url + "/hooks/opendeploy"
    (notification,) = notifications_for(deployment_change(), [], Destinations(webhooks=(url,)))
    sender = WebhookSender({url: SECRET}, timeout=2.0)
    try:
        sender.send(notification)
    finally:
        sender.close()

    (received,) = receiver.wait_for(1)
    assert received.path == "/hooks/opendeploy"
    expected = "sha256=" + hmac.new(SECRET.encode(), received.body, hashlib.sha256).hexdigest()
    assert received.headers[SIGNATURE_HEADER] == expected
    assert verify_signature(SECRET, received.body, received.headers[SIGNATURE_HEADER])
    assert not verify_signature("another secret", received.body, received.headers[SIGNATURE_HEADER])
    assert not verify_signature(SECRET, received.body + b" ", received.headers[SIGNATURE_HEADER])
    assert received.headers[DELIVERY_HEADER] == notification.id
    assert received.headers[EVENT_HEADER] == "DeploymentFailure"
    assert received.headers["Content-Type"] == "application/json"
    event = json.loads(received.body)
    assert event["source"] == "aws.codedeploy"
    assert event["detail"]["state"] == "FAILURE"


def test_webhook_failures(receiver: Receiver, silent_url: str) -> None:
    receiver.status = 500
    url = receiver.url + "/hook"
    secrets = {url: SECRET, refused_url(): SECRET, silent_url: SECRET}
    sender = WebhookSender(secrets, timeout=0.5)
    try:
        for destination, message in [
            (url, "HTTP 500"),
            (list(secrets)[1], "ConnectError"),
            (silent_url, "Timeout"),
        ]:
            with pytest.raises(NotificationError, match=message) as raised:
                sender.send(Notification("n", Channel.WEBHOOK, destination, "DeploymentStart", "{}"))
            assert not raised.value.permanent
        with pytest.raises(NotificationError, match="no webhook") as raised:
            sender.send(
                Notification("n", Channel.WEBHOOK, "https://unknown.example/", "DeploymentStart", "{}")
            )
        assert raised.value.permanent
    finally:
        sender.close()


def test_a_dead_webhook_does_not_delay_a_live_one(
    tmp_path: Path, receiver: Receiver, silent_url: str
) -> None:
    live, refused = receiver.url + "/live", refused_url()
    settings = NotificationSettings(
        webhooks=(Webhook(live, SECRET), Webhook(refused, SECRET), Webhook(silent_url, SECRET)),
        send_timeout=1.0,
        poll_interval=30.0,
    )
    database = Database(f"sqlite:///{tmp_path / 'opendeploy.db'}")
    database.migrate()
    senders = senders_for(settings)
    try:
        with OutboxDelivery(database, settings, senders=senders) as delivery:
            time.sleep(0.05)
            destinations = Destinations(webhooks=(silent_url, refused, live))
            changes = [
                deployment_change(event=DeploymentEvent.START, status="InProgress", error_code=None),
                instance_change(),
                deployment_change(event=DeploymentEvent.SUCCESS, status="Succeeded", error_code=None),
            ]
            started = time.monotonic()
            for change in changes:  # three state changes, each committed with its notifications
                with database.transaction() as session:
                    outbox.enqueue(session, notifications_for(change, [], destinations))
                delivery.wake()
            received = receiver.wait_for(3, timeout=5)
            elapsed = time.monotonic() - started
            assert elapsed < 1.0, f"the live webhook waited {elapsed:.2f}s"
            assert [r.headers[EVENT_HEADER] for r in received] == [
                "DeploymentStart",
                "InstanceSuccess",
                "DeploymentSuccess",
            ]
            assert all(verify_signature(SECRET, r.body, r.headers[SIGNATURE_HEADER]) for r in received)

            def dead_rows() -> list[OutboxNotification]:
                with database.transaction(write=False) as session:
                    query = select(OutboxNotification).where(
                        OutboxNotification.destination.in_([silent_url, refused])
                    )
                    return list(session.scalars(query))

            deadline = time.monotonic() + 10  # each dead one tried once, then backed off
            while {r.destination for r in dead_rows() if r.last_error} != {silent_url, refused}:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        rows = dead_rows()
        assert all(r.delivered_at is None for r in rows)
        assert sorted(r.attempts for r in rows) == [0, 0, 0, 0, 1, 1]  # the others put back untried
        errors = {r.destination: r.last_error for r in rows if r.last_error}
        assert "ConnectError" in errors[refused]
        assert "Timeout" in errors[silent_url]
    finally:
        senders[Channel.WEBHOOK].close()  # type: ignore[attr-defined]
        database.dispose()
