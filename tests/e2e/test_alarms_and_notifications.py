"""Alarms and notifications through a running ``opendeploy server`` and real agents (issue 12), as a user
sees them.

Most tests share one "shop": a moto server standing in for CloudWatch, SNS, EventBridge and SQS (the
server reaches it through the standard ``AWS_ENDPOINT_URL_<SERVICE>`` settings), a real Prometheus from
Debian scraping each host's service every 250 ms with the alerting rule ``HighErrorRate`` on its error
ratio, the server (``--prometheus-url``, ``--alarm-poll-interval 0.5``, ``--event-bus``), and three hosts
running real agents, each serving the revision in ``revisions/metered_service`` on its own port (``/``
answers ``<host> <version>``, with 500 for a failing release; ``/metrics`` counts the answers). Each test
makes its own application and deployment group for the same hosts.

- A CloudWatch alarm set to ALARM while a OneAtATime deployment is held in its first host's
  ValidateService stops it (ALARM_ACTIVE, the alarm named; the hosts not started are skipped) and the
  automatic rollback redeploys the previous revision, which every host serves again; the group's SNS
  trigger publishes the stop with that error. An alarm that does not exist: with
  ``ignorePollAlarmFailure`` the deployment succeeds and says the alarm could not be read, without it
  the deployment stops.
- A release whose service answers 500: requests to it make the Prometheus alert fire, which stops the
  deployment and rolls it back.
- SNS trigger messages reach an HTTP subscriber through moto's SNS, field by field as the guide shows
  them and as the API reports the deployment; EventBridge events reach an SQS queue through a rule.

Two tests run their own server with ``--webhook`` endpoints the test runs (every signature checked):
a receiver answering 503 for a whole deployment, then the server ``kill -9``-ed and restarted, still gets
every event of the deployment once the receiver accepts; and an endpoint that never answers (and one
that refuses connections) does not hold up the deployment nor a healthy webhook's deliveries.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from deploying import (
    bundle_bytes,
    create_group,
    deploy,
    instance_targets,
    register_host,
    start_hosts,
    upload,
    wait_for_deployment,
    write_revision,
)
from e2e_hosts import Host, require_hosts

from support import prometheus as prometheus_support
from support.moto import ACCESS_KEY, SECRET_KEY, MotoServer
from support.names import unique
from support.prometheus import Prometheus
from support.server import ServerProcess, free_port, wait_for
from support.webhooks import HangingEndpoint, WebhookReceiver, refused_url

REVISION = Path(__file__).parent / "revisions" / "metered_service"
SERVICE_DIR = "/tmp/opendeploy-metered-service"  # private to each host (a tmpfs in its namespace)
ONE_AT_A_TIME = "CodeDeployDefault.OneAtATime"
HOSTS = 3
ALARM_POLL_INTERVAL = 0.5
EVENT_SOURCE = "opendeploy.codedeploy"
HIGH_ERROR_RATE = 'prometheus:HighErrorRate{service="shop"}'
# Over a 2 s window (eight scrapes), so the alert resolves soon after the errors stop.
RULES = """\
groups:
  - name: shop
    rules:
      - alert: HighErrorRate
        expr: >
          sum by (service) (rate(http_requests_total{code=~"5.."}[2s]))
          / sum by (service) (rate(http_requests_total[2s])) > 0.05
"""
SECRET = "webhook-secret-for-tests"
# The guide's trigger payloads (L21091–21140): their keys in order.
DEPLOYMENT_KEYS = [
    "region",
    "accountId",
    "eventTriggerName",
    "applicationName",
    "deploymentId",
    "deploymentGroupName",
    "createTime",
    "completeTime",
    "deploymentOverview",
    "status",
]
OVERVIEW_KEYS = ["Failed", "InProgress", "Pending", "Skipped", "Succeeded"]
INSTANCE_KEYS = [
    "region",
    "accountId",
    "eventTriggerName",
    "deploymentId",
    "instanceId",
    "lastUpdatedAt",
    "instanceStatus",
    "lifecycleEvents",
]
EPOCH_TEXT = r"^\d{10}\.\d{3}$"


# --- the shop: moto, Prometheus, the server, three hosts serving metered_service ---------------------


@dataclass
class Shop:
    workdir: Path
    moto: MotoServer
    prometheus: Prometheus
    sns: WebhookReceiver  # the HTTP subscriber of the tests' SNS topics (path: /<topic name>)
    server: ServerProcess
    event_bus: str
    tag: str
    bucket: str
    ports: dict[str, int]
    hosts: list[Host] = field(default_factory=list)

    def revision(self, version: str, *, failing: bool = False, hold: Path | None = None) -> dict[str, Any]:
        """metered_service at ``version`` uploaded to the server: a revision for CreateDeployment."""
        source = self.workdir / unique(f"revision-{version}")
        shutil.copytree(REVISION, source, ignore=shutil.ignore_patterns("__pycache__"))
        (source / "version.txt").write_text(version + "\n")
        if failing:
            (source / "failing").write_text("")
        if hold is not None:
            (source / "hold-validate").write_text(f"{hold}\n")
        location = upload(
            self.server, bundle_bytes(source, "tgz"), f"shop/{unique(version)}.tgz", self.bucket
        )
        return {"revisionType": "S3", "s3Location": location}

    def topic(self) -> str:
        """A new SNS topic whose messages reach ``sns`` at ``/<topic name>``; its ARN."""
        name = unique("deployments")
        sns = self.moto.client("sns")
        arn: str = sns.create_topic(Name=name)["TopicArn"]
        sns.subscribe(TopicArn=arn, Protocol="http", Endpoint=f"{self.sns.url}/{name}")
        return arn

    def messages(self, topic: str) -> list[dict[str, Any]]:
        """The SNS envelopes published to ``topic`` so far, in the order they arrived."""
        path = "/" + topic.rsplit(":", 1)[-1]
        return [d.json() for d in self.sns.all() if d.path == path]

    def answer(self, host: Host) -> tuple[int, str]:
        """What the host's service answers on ``/``: (status, body)."""
        reply = httpx.get(f"http://127.0.0.1:{self.ports[host.name]}/", timeout=10.0)
        return reply.status_code, reply.text.strip()

    def held_host(self, deployment_id: str) -> Host:
        """The host whose ValidateService holds ``deployment_id`` (OneAtATime: the first one)."""
        marker = f"{SERVICE_DIR}/validating-{deployment_id}"
        found: Host = wait_for(
            lambda: next((h for h in self.hosts if h.path(marker).exists()), None),
            timeout=60.0,
            message=f"a host validating {deployment_id}",
        )
        return found

    def wait_until_stopping(self, deployment_id: str, held: Host) -> dict[str, str]:
        """Wait until the server has stopped ``deployment_id`` as far as it can while ``held`` still runs
        its event: every other host is Skipped. The targets' statuses."""

        def statuses() -> dict[str, str] | None:
            found = {name: t["status"] for name, t in instance_targets(self.server, deployment_id).items()}
            others = [status for name, status in found.items() if name != held.name]
            return found if others and all(status == "Skipped" for status in others) else None

        stopping: dict[str, str] = wait_for(
            statuses, timeout=30.0, interval=0.1, message=f"{deployment_id}'s other hosts skipped"
        )
        return stopping

    def stop(self) -> None:
        for host in self.hosts:
            if host.holder is not None and host.holder.poll() is None:
                with contextlib.suppress(OSError, ValueError):  # its service is not running
                    os.kill(int(host.path(f"{SERVICE_DIR}/service.pid").read_text()), signal.SIGKILL)
            host.shutdown()
        self.server.stop()
        self.prometheus.stop()
        self.sns.stop()
        self.moto.stop()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    require_hosts()
    reason = prometheus_support.unavailable_reason()
    if reason:
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("shop")
    moto = MotoServer(workdir / "moto").start()
    names = [f"host-{n}" for n in range(1, HOSTS + 1)]
    ports = {name: free_port() for name in names}
    prometheus = Prometheus.start(
        workdir / "prometheus", targets=[f"127.0.0.1:{port}" for port in ports.values()], rules=RULES
    )
    event_bus = unique("codedeploy-events")
    moto.client("events").create_event_bus(Name=event_bus)
    server = ServerProcess(
        workdir / "server",
        extra_args=[
            "--prometheus-url", prometheus.url,
            "--alarm-poll-interval", str(ALARM_POLL_INTERVAL),
            "--event-bus", event_bus,
            "--notification-retry-cap", "1",
        ],
        extra_env={
            "AWS_ENDPOINT_URL_CLOUDWATCH": moto.endpoint,
            "AWS_ENDPOINT_URL_SNS": moto.endpoint,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": moto.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": moto.region,
            "AWS_CONFIG_FILE": str(workdir / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        },
    )  # fmt: skip
    shop = Shop(
        workdir, moto, prometheus, WebhookReceiver.start(), server, event_bus, unique("shop"),
        unique("bundles").lower(), ports,
    )  # fmt: skip
    try:
        server.start()
        for name in names:
            host = Host(server, name, workdir / name, private_dirs=[SERVICE_DIR])
            shop.hosts.append(host)
            host.boot()
            host.path(f"{SERVICE_DIR}/service.conf").write_text(f"NAME={name}\nPORT={ports[name]}\n")

        def key(server: ServerProcess, user_arn: str, instance: str) -> tuple[str, str]:
            return server.store_access_key(user_arn, instance, "alarm test instance")

        with ThreadPoolExecutor(HOSTS) as pool:
            list(pool.map(lambda host: register_host(host, key, shop.tag), shop.hosts))
            list(pool.map(lambda host: start_hosts([host]), shop.hosts))
    except BaseException:
        shop.stop()
        raise
    yield shop
    shop.stop()


def shop_group(shop: Shop, **extra: Any) -> tuple[str, str]:
    """A new application and a OneAtATime deployment group of it for the shop's hosts."""
    application = unique("shop")
    return application, create_group(
        shop.server, application, shop.tag, deploymentConfigName=ONE_AT_A_TIME, **extra
    )


def stop_on_alarm(*alarms: str, ignore_poll_alarm_failure: bool = False) -> dict[str, Any]:
    return {
        "alarmConfiguration": {
            "enabled": True,
            "ignorePollAlarmFailure": ignore_poll_alarm_failure,
            "alarms": [{"name": name} for name in alarms],
        },
        "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]},
    }


def deployed(shop: Shop, application: str, group: str, revision: dict[str, Any]) -> dict[str, Any]:
    """Deploy ``revision`` and wait for the deployment's end; its deploymentInfo."""
    return wait_for_deployment(shop.server, deploy(shop.server, application, group, revision))


def assert_rolled_back_to(shop: Shop, info: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """``info`` (a stopped deployment) was rolled back: the rollback redeployed ``previous`` and succeeded,
    and every host serves it again. The rollback's deploymentInfo."""
    rollback_id = info["rollbackInfo"]["rollbackDeploymentId"]
    rollback = wait_for_deployment(shop.server, rollback_id)
    assert rollback["status"] == "Succeeded", rollback
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == info["deploymentId"]
    assert rollback["revision"]["s3Location"] == previous["s3Location"]
    for host in shop.hosts:
        assert shop.answer(host) == (200, f"{host.name} v1")
    return rollback


# --- alarms ------------------------------------------------------------------------------------------


def test_a_cloudwatch_alarm_in_alarm_mid_deployment_stops_it_and_the_rollback_restores_the_previous_revision(
    shop: Shop, tmp_path: Path
) -> None:
    cloudwatch = shop.moto.client("cloudwatch")
    alarm = unique("shop-5xx")
    cloudwatch.put_metric_alarm(
        AlarmName=alarm, Namespace="Shop", MetricName="5xx", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
    )  # fmt: skip
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="no errors")
    topic = shop.topic()
    stops = {"triggerName": "stops", "triggerTargetArn": topic, "triggerEvents": ["DeploymentStop"]}
    application, group = shop_group(shop, triggerConfigurations=[stops], **stop_on_alarm(alarm))
    v1 = shop.revision("v1")
    assert deployed(shop, application, group, v1)["status"] == "Succeeded"

    release = tmp_path / "release"
    deployment_id = deploy(shop.server, application, group, shop.revision("v2", hold=release))
    try:
        held = shop.held_host(deployment_id)
        assert shop.answer(held) == (200, f"{held.name} v2")
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx above 1")
        statuses = shop.wait_until_stopping(deployment_id, held)
        assert statuses[held.name] == "InProgress"  # its running event finishes first
        # The alarm clears before the rollback starts (the rollback is watched by the same alarms).
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="back to normal")
    finally:
        release.touch()

    info = wait_for_deployment(shop.server, deployment_id)
    assert info["status"] == "Stopped", info
    assert info["errorInformation"] == {
        "code": "ALARM_ACTIVE",
        "message": "One or more alarms have been activated according to the Amazon CloudWatch metrics you "
        f"selected, and the affected deployments have been stopped. Activated alarms: <{alarm}>",
    }
    assert_rolled_back_to(shop, info, v1)

    # The group's trigger published the stop, with the alarm's error as the guide's payload shows one.
    envelope = shop.sns.wait_for(
        lambda _: [m for m in shop.messages(topic) if json.loads(m["Message"]).get("deploymentId")],
        message="the DeploymentStop message",
    )[0]
    message = json.loads(envelope["Message"])
    assert list(message) == [*DEPLOYMENT_KEYS, "errorInformation"]
    assert message["status"] == "Stopped" and message["deploymentId"] == deployment_id
    assert message["errorInformation"] == {
        "ErrorCode": "ALARM_ACTIVE",
        "ErrorMessage": info["errorInformation"]["message"],
    }
    assert message["deploymentOverview"] == {
        key: str(info["deploymentOverview"][key]) for key in OVERVIEW_KEYS
    }
    assert message["deploymentOverview"]["Skipped"] == str(HOSTS - 1)


@pytest.mark.parametrize("ignore", [True, False], ids=["ignorePollAlarmFailure", "stop-on-poll-failure"])
def test_an_alarm_that_does_not_exist_stops_the_deployment_unless_poll_failures_are_ignored(
    shop: Shop, ignore: bool
) -> None:
    missing = unique("no-such-alarm")
    application, group = shop_group(shop, **stop_on_alarm(missing, ignore_poll_alarm_failure=ignore))

    info = deployed(shop, application, group, shop.revision("v1"))

    if ignore:
        assert info["status"] == "Succeeded", info
        notices = [m for m in info["deploymentStatusMessages"] if f"<{missing}>" in m]
        assert notices and all("could not be retrieved" in notice for notice in notices), info
        assert "ignores alarm poll failures" in notices[0]
    else:
        assert info["status"] == "Stopped", info
        assert info["errorInformation"]["code"] == "ALARM_ACTIVE"
        assert "could not be retrieved" in info["errorInformation"]["message"]
        assert f"Unavailable alarms: <{missing}>" in info["errorInformation"]["message"]
        # The group's first deployment: there is nothing to roll back to.
        assert "rollbackDeploymentId" not in info["rollbackInfo"]
        assert "no earlier successful revision" in info["rollbackInfo"]["rollbackMessage"]
        targets = instance_targets(shop.server, info["deploymentId"])
        # The first reading comes within the engine's next step after the start: the first host may
        # have begun (its events are then cut short), no host got the release.
        statuses = Counter(t["status"] for t in targets.values())
        assert statuses["Skipped"] >= HOSTS - 1 and statuses["Succeeded"] == 0, targets


@dataclass
class Users:
    """Requests to one host's service, one after another until ``stop()``: what users of it see."""

    url: str
    statuses: Counter[int] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Users:
        self._thread = threading.Thread(target=self._run, name="users", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        with httpx.Client(timeout=10.0) as client:
            while not self._stop.is_set():
                try:
                    self.statuses[client.get(self.url).status_code] += 1
                except httpx.HTTPError:
                    self.statuses[0] += 1
                self._stop.wait(0.02)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)


def test_a_prometheus_alert_on_the_new_releases_error_rate_stops_the_deployment_and_rolls_it_back(
    shop: Shop, tmp_path: Path
) -> None:
    application, group = shop_group(shop, **stop_on_alarm(HIGH_ERROR_RATE))
    v1 = shop.revision("v1")
    assert deployed(shop, application, group, v1)["status"] == "Succeeded"
    assert shop.prometheus.wait_for_rule("HighErrorRate", "inactive")

    release = tmp_path / "release"
    deployment_id = deploy(shop.server, application, group, shop.revision("v2", failing=True, hold=release))
    users: Users | None = None
    try:
        held = shop.held_host(deployment_id)
        # Users reach the new release while it validates: every request fails, the alert fires.
        users = Users(f"http://127.0.0.1:{shop.ports[held.name]}/").start()
        firing = shop.prometheus.wait_for_rule("HighErrorRate", "firing", timeout=30.0)
        assert firing["alerts"][0]["labels"]["service"] == "shop"
        statuses = shop.wait_until_stopping(deployment_id, held)
        assert statuses[held.name] == "InProgress"
        users.stop()
        # Once nobody meets the errors the rate falls and the alert ends, before the rollback starts.
        shop.prometheus.wait_for_rule("HighErrorRate", "inactive", timeout=30.0)
    finally:
        if users is not None:
            users.stop()
        release.touch()

    assert users.statuses[500] > 0 and set(users.statuses) == {500}, users.statuses
    info = wait_for_deployment(shop.server, deployment_id)
    assert info["status"] == "Stopped", info
    assert info["errorInformation"]["code"] == "ALARM_ACTIVE"
    assert info["errorInformation"]["message"].endswith(f"Activated alarms: <{HIGH_ERROR_RATE}>")
    assert_rolled_back_to(shop, info, v1)


# --- SNS triggers and EventBridge events ---------------------------------------------------------------


def epoch(value: Any) -> float:
    return float(value.timestamp())


def assert_epoch_text(text: str, value: Any) -> None:
    """``text`` is the guide's epoch string (seconds, three decimals) of the API's time ``value``."""
    assert re.match(EPOCH_TEXT, text), text
    assert abs(float(text) - epoch(value)) < 0.0015, (text, value)


def test_sns_triggers_and_eventbridge_events_of_a_deployment_through_moto(shop: Shop) -> None:
    topic = shop.topic()
    deployment_events = ["DeploymentStart", "DeploymentSuccess", "DeploymentFailure"]
    instance_events = ["InstanceStart", "InstanceSuccess", "InstanceFailure"]
    triggers = [
        {"triggerName": "deployments", "triggerTargetArn": topic, "triggerEvents": deployment_events},
        {"triggerName": "instances", "triggerTargetArn": topic, "triggerEvents": instance_events},
    ]
    application = unique("shop")
    # EventBridge: a rule on the server's bus sends this application's events to an SQS queue.
    events, sqs = shop.moto.client("events"), shop.moto.client("sqs")
    queue_url = sqs.create_queue(QueueName=unique("events"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule = unique("shop-events")
    pattern = {"source": [EVENT_SOURCE], "detail": {"application": [application]}}
    events.put_rule(Name=rule, EventBusName=shop.event_bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, EventBusName=shop.event_bus, Targets=[{"Id": "queue", "Arn": queue_arn}])

    group = create_group(
        shop.server, application, shop.tag, deploymentConfigName=ONE_AT_A_TIME, triggerConfigurations=triggers
    )
    # Creating the group sends each trigger its test notification.
    tests = shop.sns.wait_for(lambda _: len(shop.messages(topic)) >= 2 and shop.messages(topic))
    assert sorted(json.loads(m["Message"])["eventTriggerName"] for m in tests) == ["deployments", "instances"]
    assert all(json.loads(m["Message"])["testNotification"] == "true" for m in tests)

    info = deployed(shop, application, group, shop.revision("v1"))
    assert info["status"] == "Succeeded", info
    deployment_id = info["deploymentId"]
    targets = instance_targets(shop.server, deployment_id)
    expected = 2 + 2 * HOSTS
    envelopes = shop.sns.wait_for(
        lambda _: len(shop.messages(topic)) >= 2 + expected and shop.messages(topic)[2:],
        message="the deployment's trigger messages",
    )
    assert len(envelopes) == expected
    assert {e["TopicArn"] for e in envelopes} == {topic}
    messages = [json.loads(e["Message"]) for e in envelopes]
    assert all(m["deploymentId"] == deployment_id for m in messages)

    # Deployment messages: the guide's keys in its order, values as the API reports the deployment.
    start, success = messages[0], messages[-1]
    for message, status in ((start, "InProgress"), (success, "Succeeded")):
        assert list(message) == DEPLOYMENT_KEYS, message
        assert message["region"] == shop.server.region and message["accountId"] == shop.server.account_id
        assert message["eventTriggerName"] == "deployments"
        assert message["applicationName"] == application and message["deploymentGroupName"] == group
        assert message["status"] == status
        assert_epoch_text(message["createTime"], info["createTime"])
        assert list(message["deploymentOverview"]) == OVERVIEW_KEYS
    assert_epoch_text(success["completeTime"], info["completeTime"])
    assert success["deploymentOverview"] == {
        key: str(info["deploymentOverview"][key]) for key in OVERVIEW_KEYS
    }
    assert success["deploymentOverview"]["Succeeded"] == str(HOSTS)
    assert (
        envelopes[-1]["Subject"] == f"SUCCEEDED: AWS CodeDeploy {deployment_id} in us-east-1 to {application}"
    )

    # Instance messages: OneAtATime, each host started and succeeded before the next one started.
    instances = messages[1:-1]
    # (The guide shows no start message; the instance's status then is the API's at that moment.)
    assert [m["instanceStatus"] in {"Pending", "InProgress"} for m in instances[::2]] == [True] * HOSTS
    assert [m["instanceStatus"] for m in instances[1::2]] == ["Succeeded"] * HOSTS
    order = [m["instanceId"] for m in instances[::2]]
    assert [m["instanceId"] for m in instances[1::2]] == order
    by_arn = {t["targetArn"]: t for t in targets.values()}
    assert sorted(order) == sorted(by_arn)
    for message in instances[1::2]:
        assert list(message) == INSTANCE_KEYS, message
        assert message["eventTriggerName"] == "instances"
        target = by_arn[message["instanceId"]]
        assert_epoch_text(message["lastUpdatedAt"], target["lastUpdatedAt"])
        assert [list(event) for event in message["lifecycleEvents"]] == [
            ["LifecycleEvent", "LifecycleEventStatus", "StartTime", "EndTime"]
        ] * len(target["lifecycleEvents"])
        for event, api in zip(message["lifecycleEvents"], target["lifecycleEvents"], strict=True):
            assert event["LifecycleEvent"] == api["lifecycleEventName"]
            assert event["LifecycleEventStatus"] == api["status"] == "Succeeded"
            assert_epoch_text(event["StartTime"], api["startTime"])
            assert_epoch_text(event["EndTime"], api["endTime"])

    # EventBridge: the same changes as state-change events, through the rule to the queue.
    received: list[dict[str, Any]] = []

    def all_events() -> bool:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for queued in answer.get("Messages", []):
            received.append(json.loads(queued["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=queued["ReceiptHandle"])
        return len(received) >= expected

    wait_for(all_events, timeout=30.0, message="the deployment's events in the queue")
    assert len(received) == expected
    assert {e["source"] for e in received} == {EVENT_SOURCE}
    group_id = shop.server.client("codedeploy").get_deployment_group(
        applicationName=application, deploymentGroupName=group
    )["deploymentGroupInfo"]["deploymentGroupId"]
    deployments = [
        e for e in received if e["detail-type"] == "CodeDeploy Deployment State-change Notification"
    ]
    assert sorted(e["detail"]["state"] for e in deployments) == ["START", "SUCCESS"]
    for event in deployments:
        assert event["detail"] == {
            "instanceGroupId": group_id,
            "region": shop.server.region,
            "application": application,
            "deploymentId": deployment_id,
            "state": event["detail"]["state"],
            "deploymentGroup": group,
        }
    instance_states = Counter(
        (e["detail"]["instanceId"], e["detail"]["state"])
        for e in received
        if e["detail-type"] == "CodeDeploy Instance State-change Notification"
    )
    assert instance_states == Counter(
        {(name, state): 1 for name in targets for state in ("START", "SUCCESS")}
    )


# --- webhooks ------------------------------------------------------------------------------------------

SIMPLE_APPSPEC = "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: scripts/installed.sh\n"


def simple_revision(server: ServerProcess, tmp_path: Path) -> dict[str, Any]:
    source = write_revision(
        tmp_path / unique("revision"),
        SIMPLE_APPSPEC,
        {"scripts/installed.sh": "#!/bin/sh\necho installed\n"},
        executable=["scripts/installed.sh"],
    )
    return {"revisionType": "S3", "s3Location": upload(server, bundle_bytes(source, "tgz"), "app/simple.tgz")}


def webhook_server(
    server_factory: Callable[..., ServerProcess],
    tmp_path: Path,
    urls: list[str],
    *args: str,
    backend: str = "sqlite",
) -> ServerProcess:
    secret_file = tmp_path / "webhook-secret"
    secret_file.write_text(SECRET + "\n")
    hooks = [arg for url in urls for arg in ("--webhook", url)]
    return server_factory(backend, extra_args=[*hooks, "--webhook-secret-file", str(secret_file), *args])


def two_hosts(
    server: ServerProcess, hosts: Callable[..., Host], instance_key: Callable[..., tuple[str, str]]
) -> str:
    tag = unique("tag")
    fleet = [hosts(server), hosts(server)]
    with ThreadPoolExecutor(len(fleet)) as pool:  # registering and starting an agent take seconds each
        list(pool.map(lambda host: register_host(host, instance_key, tag), fleet))
        list(pool.map(lambda host: start_hosts([host]), fleet))
    return tag


def expected_events(server: ServerProcess, deployment_id: str) -> Counter[tuple[str, str | None]]:
    """The state changes of a successful deployment: (event, instance) — its start and success, and each
    of its instances' start and success."""
    names = list(instance_targets(server, deployment_id))
    wanted = [("DeploymentStart", None), ("DeploymentSuccess", None)]
    wanted += [(event, name) for name in names for event in ("InstanceStart", "InstanceSuccess")]
    return Counter(wanted)


def events_of(receiver: WebhookReceiver, deployment_id: str) -> Counter[tuple[str, str | None]]:
    """The events of ``deployment_id`` the receiver accepted, once per delivery id: (event, instance)."""
    found: Counter[tuple[str, str | None]] = Counter()
    for delivery in receiver.accepted():
        detail = delivery.json()["detail"]
        if detail["deploymentId"] == deployment_id:
            found[(delivery.event or "", detail.get("instanceId"))] += 1
    return found


def test_kill_9_of_the_server_before_its_notifications_are_delivered_loses_none(
    backend: str,
    server_factory: Callable[..., ServerProcess],
    hosts: Callable[..., Host],
    instance_key: Callable[..., tuple[str, str]],
    tmp_path: Path,
) -> None:
    receiver = WebhookReceiver.start(SECRET, status=503)  # down for the whole deployment
    try:
        server = webhook_server(
            server_factory, tmp_path, [f"{receiver.url}/deployments"],
            "--notification-retry-cap", "1", "--notification-max-attempts", "1000", backend=backend,
        )  # fmt: skip
        tag = two_hosts(server, hosts, instance_key)
        application = unique("app")
        group = create_group(server, application, tag)
        deployment_id = deploy(server, application, group, simple_revision(server, tmp_path))
        assert wait_for_deployment(server, deployment_id)["status"] == "Succeeded"
        expected = expected_events(server, deployment_id)

        # Kill it just after it has recorded a refused try (its next one is a second away), so no
        # notification is mid-send: one would only come back when its claim's lease ends, a minute on.
        tried = len(receiver.all())

        def just_recorded() -> bool:
            refused = len(receiver.all())
            return refused > tried and server.log_text().count("destination backed off") == refused

        wait_for(just_recorded, timeout=30.0, interval=0.01, message="a refused try recorded")
        server.kill9()
        refused = receiver.all()
        assert refused and {d.status for d in refused} == {503}
        receiver.status = 200
        server.start()

        receiver.wait_for(
            lambda r: sum(events_of(r, deployment_id).values()) >= sum(expected.values()),
            timeout=90.0,
            message="every notification after the restart",
        )
        assert events_of(receiver, deployment_id) == expected
        deliveries = receiver.all()
        assert all(d.signature_ok for d in deliveries), [d.headers for d in deliveries if not d.signature_ok]
        # A retry is the same notification: the refused tries' ids are among the accepted ones.
        accepted = receiver.accepted()
        assert {d.delivery_id for d in refused} <= {d.delivery_id for d in accepted}
        # Delivered in the order the changes happened: the deployment's start first, its success last.
        ours = [d.event for d in accepted if d.json()["detail"]["deploymentId"] == deployment_id]
        assert ours[0] == "DeploymentStart" and ours[-1] == "DeploymentSuccess", ours
    finally:
        receiver.stop()


def test_a_dead_webhook_endpoint_delays_neither_the_deployment_nor_a_healthy_webhook(
    server_factory: Callable[..., ServerProcess],
    hosts: Callable[..., Host],
    instance_key: Callable[..., tuple[str, str]],
    tmp_path: Path,
) -> None:
    healthy = WebhookReceiver.start(SECRET)
    hanging = HangingEndpoint.start()
    try:
        server = webhook_server(server_factory, tmp_path, [hanging.url, refused_url(), healthy.url])
        tag = two_hosts(server, hosts, instance_key)
        application = unique("app")
        group = create_group(server, application, tag)
        deployment_id = deploy(server, application, group, simple_revision(server, tmp_path))

        info = wait_for_deployment(server, deployment_id)
        assert info["status"] == "Succeeded", info
        expected = expected_events(server, deployment_id)
        healthy.wait_for(
            lambda r: sum(events_of(r, deployment_id).values()) >= sum(expected.values()),
            message="the healthy webhook's notifications",
        )
        assert events_of(healthy, deployment_id) == expected
        assert all(d.signature_ok for d in healthy.all())

        # Meanwhile the hanging endpoint still holds the first request it was sent, unanswered: neither
        # the deployment nor the healthy webhook waited for it.
        first = wait_for(
            lambda: next(iter(r for r in hanging.held() if b"\r\n\r\n" in r.data), None),
            message="the hanging endpoint's first request",
        )
        assert first.open, "the server gave up on the hanging endpoint: something waited for it"
        assert first.headers()["x-opendeploy-event"] == "DeploymentStart"
        assert hanging.held()[0].open
    finally:
        hanging.close()  # the server's request to it fails at once, so the server stops without waiting
        healthy.stop()
