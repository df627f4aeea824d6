"""Deployments write their notifications to the outbox in the transaction of each state change, on the
engine's virtual clock: a group's SNS triggers get the deployment's and each instance's start and end,
a stop, a rollback; webhooks and an EventBridge bus get the state-change events; a deployment nobody
listens to writes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from opendeploy.engine import notifying
from opendeploy.settings import NotificationSettings, Webhook
from opendeploy.store.models import OutboxNotification
from support.engine_harness import EngineHarness, FakeAgent

TOPIC = "arn:aws:sns:us-east-1:000000000000:deployments"
ALL_EVENTS = [
    "DeploymentStart",
    "DeploymentSuccess",
    "DeploymentFailure",
    "DeploymentStop",
    "DeploymentRollback",
    "InstanceStart",
    "InstanceSuccess",
    "InstanceFailure",
]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[EngineHarness]:
    harness = EngineHarness.on_sqlite(
        tmp_path,
        notifications=NotificationSettings(webhooks=(Webhook("https://hooks.example/deploys", "s3cret"),)),
    )
    notifying.install(harness.settings)
    yield harness
    notifying.install(None)
    harness.close()


def run_to_end(harness: EngineHarness, agents: list[FakeAgent], status: str = "Succeeded") -> None:
    for _ in range(50):
        moved = 0
        for agent in agents:
            while (command := agent.poll()) is not None:
                assert agent.acknowledge(command) == "InProgress"
                assert agent.complete(command, status)
                harness.advance(0.5)  # each event takes time, as on a real host
                moved += 1
        harness.advance(1.0)
        if not moved:
            return


def outbox(harness: EngineHarness) -> list[OutboxNotification]:
    with harness.database.transaction(write=False) as session:
        rows = list(session.scalars(select(OutboxNotification).order_by(OutboxNotification.created_at)))
        session.expunge_all()
        return rows


def sns(rows: list[OutboxNotification]) -> list[tuple[str, dict[str, Any]]]:
    return [(row.event_type, json.loads(row.body)) for row in rows if row.kind == "sns"]


def test_a_deployment_and_its_instances_notify_their_triggers_and_webhooks(harness: EngineHarness) -> None:
    triggers = [{"triggerName": "all", "triggerTargetArn": TOPIC, "triggerEvents": ALL_EVENTS}]
    group_id, agents = harness.fleet(["host-1", "host-2"], trigger_configurations=triggers)
    deployment_id = harness.deploy(group_id)
    run_to_end(harness, agents)
    assert harness.deployment(deployment_id)["status"] == "Succeeded"

    rows = outbox(harness)
    messages = sns(rows)
    events = [event for event, _ in messages]
    assert events[0] == "DeploymentStart" and events[-1] == "DeploymentSuccess"
    assert sorted(events[1:-1]) == ["InstanceStart"] * 2 + ["InstanceSuccess"] * 2
    # OneAtATime: host-1 starts and ends before host-2 starts.
    assert [(e, m["instanceId"].rsplit("/", 1)[-1]) for e, m in messages[1:-1]] == [
        ("InstanceStart", "host-1"),
        ("InstanceSuccess", "host-1"),
        ("InstanceStart", "host-2"),
        ("InstanceSuccess", "host-2"),
    ]
    end = messages[-1][1]
    assert end["deploymentId"] == deployment_id and end["status"] == "Succeeded"
    assert end["eventTriggerName"] == "all"
    assert all(row.destination == TOPIC for row in rows if row.kind == "sns")
    # The same changes as EventBridge-shaped events to the webhook, each with its own delivery id.
    hooks = [row for row in rows if row.kind == "webhook"]
    assert [row.event_type for row in hooks] == events
    assert len({row.id for row in rows}) == len(rows)
    body = json.loads(hooks[-1].body)
    assert body["detail-type"] == "CodeDeploy Deployment State-change Notification"
    assert body["detail"]["state"] == "SUCCESS" and body["detail"]["deploymentId"] == deployment_id


def test_a_failed_deployment_notifies_its_failure_and_its_failed_instance(harness: EngineHarness) -> None:
    triggers = [
        {
            "triggerName": "bad",
            "triggerTargetArn": TOPIC,
            "triggerEvents": ["DeploymentFailure", "InstanceFailure"],
        }
    ]
    group_id, agents = harness.fleet(["host-1", "host-2"], trigger_configurations=triggers)
    deployment_id = harness.deploy(group_id)
    run_to_end(harness, agents, status="Failed")
    assert harness.deployment(deployment_id)["status"] == "Failed"
    assert [event for event, _ in sns(outbox(harness))] == ["InstanceFailure", "DeploymentFailure"]


def test_a_deployment_nobody_listens_to_writes_nothing(tmp_path: Path) -> None:
    harness = EngineHarness.on_sqlite(tmp_path)
    notifying.install(harness.settings)
    try:
        group_id, agents = harness.fleet(["host-1"])
        deployment_id = harness.deploy(group_id)
        run_to_end(harness, agents)
        assert harness.deployment(deployment_id)["status"] == "Succeeded"
        assert outbox(harness) == []
    finally:
        notifying.install(None)
        harness.close()


def test_a_new_or_changed_trigger_gets_a_test_notification(harness: EngineHarness) -> None:
    first = {"triggerName": "deploys", "triggerTargetArn": TOPIC, "triggerEvents": ["DeploymentFailure"]}
    with harness.database.transaction() as session:
        notifying.triggers_changed(session, None, [first], "shop", "web", harness.now, harness.settings)
    with harness.database.transaction() as session:  # unchanged: no test notification
        notifying.triggers_changed(session, [first], [first], "shop", "web", harness.now, harness.settings)
    changed = {**first, "triggerEvents": ["DeploymentFailure", "DeploymentStop"]}
    with harness.database.transaction() as session:
        notifying.triggers_changed(session, [first], [changed], "shop", "web", harness.now, harness.settings)
    rows = outbox(harness)
    assert [(row.kind, row.destination) for row in rows] == [("sns", TOPIC), ("sns", TOPIC)]
    message = json.loads(rows[0].body)
    assert message["eventTriggerName"] == "deploys" and message["applicationName"] == "shop"
    assert message["deploymentGroupName"] == "web" and "deploymentId" not in message
