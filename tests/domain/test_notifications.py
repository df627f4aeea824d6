"""``domain.notifications``: trigger messages compared field by field with the guide's two sample
payloads (L21091–21140), the EventBridge envelope and detail (§6), which status change is which event,
which triggers ask for it, the test notification's when and what (§8.3), and the fan-out to the outbox."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from opendeploy.domain.notifications import (
    DEPLOYMENT_DETAIL_TYPE,
    INSTANCE_DETAIL_TYPE,
    TEST_EVENT,
    Channel,
    DeploymentChange,
    DeploymentEvent,
    Destinations,
    EventState,
    InstanceChange,
    InstanceEvent,
    LifecycleEventState,
    TriggerConfig,
    TriggerEvent,
    deployment_event,
    event_state,
    instance_event,
    notifications_for,
    sns_subject,
    state_change_event,
    trigger_configs,
    trigger_event,
    trigger_message,
    trigger_test_notifications,
    triggers_for,
    triggers_to_test,
)

# The guide's "Sample JSON Output for Deployment-Based Triggers" (L21118–21140), verbatim.
GUIDE_DEPLOYMENT_PAYLOAD: dict[str, Any] = {
    "region": "us-west-1",
    "accountId": "111222333444",
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
# The guide's "Sample JSON Output for Instance-Based Triggers" (L21091–21116), without its
# "//More lifecycle events might be listed here" comment.
GUIDE_INSTANCE_PAYLOAD: dict[str, Any] = {
    "region": "us-east-2",
    "accountId": "111222333444",
    "eventTriggerName": "trigger-group-us-east-instance-succeeded",
    "deploymentId": "d-75I7MBT7C",
    "instanceId": "arn:aws:ec2:us-east-2:444455556666:instance/i-496589f7",
    "lastUpdatedAt": "1446744207.564",
    "instanceStatus": "Succeeded",
    "lifecycleEvents": [
        {
            "LifecycleEvent": "ApplicationStop",
            "LifecycleEventStatus": "Succeeded",
            "StartTime": "1446744188.595",
            "EndTime": "1446744188.711",
        },
        {
            "LifecycleEvent": "BeforeInstall",
            "LifecycleEventStatus": "Succeeded",
            "StartTime": "1446744189.827",
            "EndTime": "1446744190.402",
        },
    ],
}

GROUP_ID = "6c5ad2b0-6a3b-4a56-8a3b-1d7f6b0f0a11"


def guide_deployment_change(**changes: Any) -> DeploymentChange:
    values: dict[str, Any] = {
        "event": DeploymentEvent.FAILURE,
        "region": "us-west-1",
        "account_id": "111222333444",
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
    values.update(changes)
    return DeploymentChange(**values)


def guide_instance_change(**changes: Any) -> InstanceChange:
    values: dict[str, Any] = {
        "event": InstanceEvent.SUCCESS,
        "region": "us-east-2",
        "account_id": "111222333444",
        "deployment_id": "d-75I7MBT7C",
        "application_name": "App",
        "deployment_group_name": "Group",
        "deployment_group_id": GROUP_ID,
        "instance_id": "i-496589f7",
        "instance_arn": "arn:aws:ec2:us-east-2:444455556666:instance/i-496589f7",
        "status": "Succeeded",
        "last_updated_at": 1446744207.564,
        "time": 1446744207.564,
        "lifecycle_events": (
            LifecycleEventState("ApplicationStop", "Succeeded", 1446744188.595, 1446744188.711),
            LifecycleEventState("BeforeInstall", "Succeeded", 1446744189.827, 1446744190.402),
        ),
    }
    values.update(changes)
    return InstanceChange(**values)


def counter() -> Any:
    numbers = itertools.count(1)
    return lambda: f"id-{next(numbers)}"


# --- trigger payloads against the guide -----------------------------------------------------------


@pytest.mark.parametrize("key", list(GUIDE_DEPLOYMENT_PAYLOAD))
def test_deployment_trigger_payload_matches_the_guide_field_by_field(key: str) -> None:
    message = trigger_message(guide_deployment_change(), "Trigger-group-us-west-3-deploy-failed")
    payload = json.loads(message.message)
    assert payload[key] == GUIDE_DEPLOYMENT_PAYLOAD[key]
    assert type(payload[key]) is type(GUIDE_DEPLOYMENT_PAYLOAD[key])


def test_deployment_trigger_payload_has_the_guide_fields_in_its_order() -> None:
    message = trigger_message(guide_deployment_change(), "Trigger-group-us-west-3-deploy-failed")
    payload = json.loads(message.message)
    assert payload == GUIDE_DEPLOYMENT_PAYLOAD
    assert list(payload) == list(GUIDE_DEPLOYMENT_PAYLOAD)
    assert list(payload["deploymentOverview"]) == list(GUIDE_DEPLOYMENT_PAYLOAD["deploymentOverview"])


@pytest.mark.parametrize("key", list(GUIDE_INSTANCE_PAYLOAD))
def test_instance_trigger_payload_matches_the_guide_field_by_field(key: str) -> None:
    message = trigger_message(guide_instance_change(), "trigger-group-us-east-instance-succeeded")
    payload = json.loads(message.message)
    assert payload[key] == GUIDE_INSTANCE_PAYLOAD[key]
    assert type(payload[key]) is type(GUIDE_INSTANCE_PAYLOAD[key])


def test_instance_trigger_payload_has_the_guide_fields_in_its_order() -> None:
    payload = json.loads(
        trigger_message(guide_instance_change(), "trigger-group-us-east-instance-succeeded").message
    )
    assert payload == GUIDE_INSTANCE_PAYLOAD
    assert list(payload) == list(GUIDE_INSTANCE_PAYLOAD)
    for ours, guide in zip(
        payload["lifecycleEvents"], GUIDE_INSTANCE_PAYLOAD["lifecycleEvents"], strict=True
    ):
        assert list(ours) == list(guide)  # PascalCase, in the guide's order


def test_the_message_is_compact_json_text() -> None:
    text = trigger_message(guide_deployment_change(), "T").message
    assert text.startswith('{"region":"us-west-1","accountId":"111222333444",')
    assert "\n" not in text


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # In progress: not completed, no error: completeTime null (as AWS sends it), no errorInformation.
        (
            guide_deployment_change(
                event=DeploymentEvent.START,
                status="InProgress",
                complete_time=None,
                overview={"Pending": 3, "InProgress": 1},
                error_code=None,
                error_message=None,
            ),
            {
                "completeTime": None,
                "status": "InProgress",
                "deploymentOverview": {
                    "Failed": "0",
                    "InProgress": "1",
                    "Pending": "3",
                    "Skipped": "0",
                    "Succeeded": "0",
                },
            },
        ),
        (
            guide_deployment_change(
                event=DeploymentEvent.SUCCESS,
                status="Succeeded",
                overview={"Succeeded": 4, "Skipped": 1, "Ready": 2},
                error_code=None,
                error_message=None,
            ),
            {
                "status": "Succeeded",
                "deploymentOverview": {
                    "Failed": "0",
                    "InProgress": "0",
                    "Pending": "0",
                    "Skipped": "1",
                    "Succeeded": "4",
                },
            },
        ),
        (
            guide_deployment_change(
                event=DeploymentEvent.STOP,
                status="Stopped",
                error_code="MANUAL_STOP",
                error_message="The deployment was stopped by a user.",
            ),
            {
                "status": "Stopped",
                "errorInformation": {
                    "ErrorCode": "MANUAL_STOP",
                    "ErrorMessage": "The deployment was stopped by a user.",
                },
            },
        ),
    ],
    ids=["start", "success", "stop"],
)
def test_deployment_payload_for_other_states(change: DeploymentChange, expected: dict[str, Any]) -> None:
    payload = json.loads(trigger_message(change, "T").message)
    for key, value in expected.items():
        assert payload[key] == value
    assert ("errorInformation" in payload) == ("errorInformation" in expected)
    assert set(payload) - {"errorInformation"} == set(GUIDE_DEPLOYMENT_PAYLOAD) - {"errorInformation"}


def test_instance_payload_for_a_pending_lifecycle_event_has_null_times() -> None:
    change = guide_instance_change(
        event=InstanceEvent.START,
        status="InProgress",
        lifecycle_events=(
            LifecycleEventState("ApplicationStop", "InProgress", 1446744188.595),
            LifecycleEventState("DownloadBundle", "Pending"),
        ),
    )
    payload = json.loads(trigger_message(change, "T").message)
    assert payload["instanceStatus"] == "InProgress"
    assert payload["lifecycleEvents"] == [
        {
            "LifecycleEvent": "ApplicationStop",
            "LifecycleEventStatus": "InProgress",
            "StartTime": "1446744188.595",
            "EndTime": None,
        },
        {
            "LifecycleEvent": "DownloadBundle",
            "LifecycleEventStatus": "Pending",
            "StartTime": None,
            "EndTime": None,
        },
    ]


def test_on_premises_instance_is_named_by_its_codedeploy_instance_arn() -> None:
    arn = "arn:aws:codedeploy:us-east-2:111222333444:instance/web-1"
    payload = json.loads(
        trigger_message(guide_instance_change(instance_id="web-1", instance_arn=arn), "T").message
    )
    assert payload["instanceId"] == arn


@pytest.mark.parametrize(
    ("change", "subject"),
    [
        (
            guide_deployment_change(),
            "FAILED: AWS CodeDeploy d-75I7MBT7C in us-west-1 to ProductionApp-us-west-3",
        ),
        (
            guide_deployment_change(status="InProgress"),
            "IN_PROGRESS: AWS CodeDeploy d-75I7MBT7C in us-west-1 to ProductionApp-us-west-3",
        ),
        (
            guide_instance_change(),
            "SUCCEEDED: AWS CodeDeploy d-75I7MBT7C in us-east-2 to App (instance i-496589f7)",
        ),
    ],
)
def test_subject_line(change: DeploymentChange | InstanceChange, subject: str) -> None:
    assert trigger_message(change, "T").subject == subject


def test_subject_is_what_sns_accepts() -> None:
    long_name = "Ä" + "x" * 150
    subject = trigger_message(guide_deployment_change(application_name=long_name), "T").subject
    assert len(subject) < 100
    assert subject.isascii() and subject.isprintable()
    assert subject.endswith("...")
    assert sns_subject("two\nlines") == "two lines"


# --- events and statuses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "status", "event"),
    [
        ("Created", "InProgress", DeploymentEvent.START),
        ("Queued", "InProgress", DeploymentEvent.START),
        (None, "InProgress", DeploymentEvent.START),
        ("Ready", "InProgress", None),  # a blue/green deployment rerouting: already started
        ("Created", "Queued", DeploymentEvent.QUEUED),
        ("InProgress", "Ready", DeploymentEvent.READY),
        ("InProgress", "Succeeded", DeploymentEvent.SUCCESS),
        ("InProgress", "Failed", DeploymentEvent.FAILURE),
        ("Created", "Failed", DeploymentEvent.FAILURE),
        ("InProgress", "Stopped", DeploymentEvent.STOP),
        ("InProgress", "Baking", None),
        ("Failed", "Failed", None),
        (None, "Created", None),
    ],
)
def test_deployment_status_changes(previous: str | None, status: str, event: DeploymentEvent | None) -> None:
    assert deployment_event(previous, status) == event


@pytest.mark.parametrize(
    ("previous", "status", "event"),
    [
        ("Pending", "InProgress", InstanceEvent.START),
        ("InProgress", "Succeeded", InstanceEvent.SUCCESS),
        ("InProgress", "Failed", InstanceEvent.FAILURE),
        ("Pending", "Failed", InstanceEvent.FAILURE),
        ("InProgress", "Ready", InstanceEvent.READY),
        ("Pending", "Skipped", None),
        ("InProgress", "Unknown", None),
        ("InProgress", "InProgress", None),
    ],
)
def test_instance_status_changes(previous: str | None, status: str, event: InstanceEvent | None) -> None:
    assert instance_event(previous, status) == event


def test_events_states_and_trigger_names() -> None:
    # Every trigger event is one of ours; the guide's EventBridge states (L20391–20411) are all reachable.
    ours = {trigger_event(e) for e in [*DeploymentEvent, *InstanceEvent]} - {None}
    assert ours == set(TriggerEvent)
    assert {event_state(e) for e in DeploymentEvent} - {None} == {
        EventState.FAILURE,
        EventState.START,
        EventState.STOP,
        EventState.QUEUED,
        EventState.READY,
        EventState.SUCCESS,
    }
    assert {event_state(e) for e in InstanceEvent} == {
        EventState.FAILURE,
        EventState.START,
        EventState.READY,
        EventState.SUCCESS,
    }
    assert event_state(DeploymentEvent.ROLLBACK) is None
    assert trigger_event(DeploymentEvent.QUEUED) is None


# --- EventBridge ------------------------------------------------------------------------------------


def test_deployment_state_change_event() -> None:
    change = guide_deployment_change(event=DeploymentEvent.START, status="InProgress", time=1704067200.9)
    assert state_change_event(change, "e-1") == {
        "version": "0",
        "id": "e-1",
        "detail-type": "CodeDeploy Deployment State-change Notification",
        "source": "aws.codedeploy",
        "account": "111222333444",
        "time": "2024-01-01T00:00:00Z",
        "region": "us-west-1",
        "resources": [
            "arn:aws:codedeploy:us-west-1:111222333444:application:ProductionApp-us-west-3",
            "arn:aws:codedeploy:us-west-1:111222333444:deploymentgroup:ProductionApp-us-west-3/dep-group-def-456",
        ],
        "detail": {
            "instanceGroupId": GROUP_ID,
            "region": "us-west-1",
            "application": "ProductionApp-us-west-3",
            "deploymentId": "d-75I7MBT7C",
            "state": "START",
            "deploymentGroup": "dep-group-def-456",
        },
    }


def test_instance_state_change_event() -> None:
    event = state_change_event(guide_instance_change(event=InstanceEvent.FAILURE, status="Failed"), "e-2")
    assert event is not None
    assert event["detail-type"] == INSTANCE_DETAIL_TYPE
    assert event["resources"] == [
        "arn:aws:ec2:us-east-2:444455556666:instance/i-496589f7",
        "arn:aws:codedeploy:us-east-2:111222333444:deploymentgroup:App/Group",
        "arn:aws:codedeploy:us-east-2:111222333444:application:App",
    ]
    assert event["detail"] == {
        "instanceGroupId": GROUP_ID,
        "region": "us-east-2",
        "application": "App",
        "deploymentId": "d-75I7MBT7C",
        "state": "FAILURE",
        "deploymentGroup": "Group",
        "instanceId": "i-496589f7",
    }


def test_rollback_has_no_eventbridge_event_and_queued_no_trigger() -> None:
    assert state_change_event(guide_deployment_change(event=DeploymentEvent.ROLLBACK), "e") is None
    queued = guide_deployment_change(event=DeploymentEvent.QUEUED, status="Queued")
    event = state_change_event(queued, "e")
    assert event is not None and event["detail"]["state"] == "QUEUED"
    everything = TriggerConfig("all", "arn:aws:sns:us-west-1:111222333444:t", tuple(TriggerEvent))
    assert triggers_for(queued, [everything]) == []


# --- triggers -------------------------------------------------------------------------------------

TOPIC = "arn:aws:sns:us-west-1:111222333444:deployments"


def test_triggers_for_an_event_in_their_order() -> None:
    triggers = trigger_configs(
        [
            {"triggerName": "fail", "triggerTargetArn": TOPIC, "triggerEvents": ["DeploymentFailure"]},
            {
                "triggerName": "all",
                "triggerTargetArn": TOPIC + "2",
                "triggerEvents": ["DeploymentStart", "DeploymentFailure"],
            },
            {"triggerName": "instances", "triggerTargetArn": TOPIC, "triggerEvents": ["InstanceFailure"]},
        ]
    )
    assert [t.name for t in triggers_for(guide_deployment_change(), triggers)] == ["fail", "all"]
    instance = guide_instance_change(event=InstanceEvent.FAILURE, status="Failed")
    assert [t.name for t in triggers_for(instance, triggers)] == ["instances"]
    start = guide_deployment_change(event=DeploymentEvent.START, status="InProgress")
    assert [t.name for t in triggers_for(start, triggers)] == ["all"]
    rollback = guide_deployment_change(event=DeploymentEvent.ROLLBACK)
    assert triggers_for(rollback, triggers) == []
    assert triggers_for(
        rollback,
        trigger_configs(
            [{"triggerName": "r", "triggerTargetArn": TOPIC, "triggerEvents": ["DeploymentRollback"]}]
        ),
    )


def test_notifications_for_a_change_fan_out_to_topics_bus_and_webhooks() -> None:
    triggers = [
        TriggerConfig("fail", TOPIC, ("DeploymentFailure",)),
        TriggerConfig("other", TOPIC + "2", ("DeploymentSuccess",)),
    ]
    destinations = Destinations(
        event_bus="deployments-bus", webhooks=("https://a.example/hook", "https://b.example/hook")
    )
    out = notifications_for(guide_deployment_change(), triggers, destinations, new_id=counter())

    assert [(n.kind, n.destination) for n in out] == [
        (Channel.SNS, TOPIC),
        (Channel.EVENTBRIDGE, "deployments-bus"),
        (Channel.WEBHOOK, "https://a.example/hook"),
        (Channel.WEBHOOK, "https://b.example/hook"),
    ]
    assert len({n.id for n in out}) == 4  # one delivery id each
    assert {n.event_type for n in out} == {"DeploymentFailure"}
    assert {n.deployment_id for n in out} == {"d-75I7MBT7C"}
    sns = out[0]
    assert json.loads(sns.body) == GUIDE_DEPLOYMENT_PAYLOAD | {"eventTriggerName": "fail"}
    assert sns.subject == "FAILED: AWS CodeDeploy d-75I7MBT7C in us-west-1 to ProductionApp-us-west-3"
    events = [json.loads(n.body) for n in out[1:]]
    assert events[0] == events[1] == events[2]  # the same event (one envelope id) to each destination
    assert events[0]["detail-type"] == DEPLOYMENT_DETAIL_TYPE
    assert events[0]["detail"]["state"] == "FAILURE"
    assert all(n.subject is None for n in out[1:])


def test_no_destinations_no_notifications() -> None:
    assert notifications_for(guide_deployment_change(), []) == []
    rollback = guide_deployment_change(event=DeploymentEvent.ROLLBACK)
    assert notifications_for(rollback, [], Destinations(event_bus="bus")) == []


# --- test notifications (§8.3) --------------------------------------------------------------------


def test_triggers_to_test_are_the_new_and_changed_ones() -> None:
    one = TriggerConfig("one", TOPIC, ("DeploymentStart",))
    two = TriggerConfig("two", TOPIC, ("DeploymentFailure", "DeploymentStop"))
    assert triggers_to_test(None, [one, two]) == [one, two]  # created with the group
    assert triggers_to_test([one, two], [one, two]) == []  # an update leaving them alone
    reordered = TriggerConfig("two", TOPIC, ("DeploymentStop", "DeploymentFailure"))
    assert triggers_to_test([one, two], [one, reordered]) == []
    more_events = TriggerConfig(
        "one", TOPIC, ("DeploymentStart", "DeploymentStop")
    )  # the guide's edit example
    new_topic = TriggerConfig("two", TOPIC + "-new", two.events)
    three = TriggerConfig("three", TOPIC, ("InstanceFailure",))
    assert triggers_to_test([one, two], [more_events, new_topic, three]) == [more_events, new_topic, three]
    assert triggers_to_test([one, two], []) == []  # deleting all triggers tells nobody


def test_test_notification_names_the_trigger_and_its_group() -> None:
    trigger = TriggerConfig(
        "Trigger-group-us-east-2",
        "arn:aws:sns:us-east-2:444455556666:us-east-deployments",
        ("DeploymentStart", "DeploymentSuccess", "DeploymentFailure"),
    )
    (notification,) = trigger_test_notifications(
        None,
        [trigger],
        region="us-east-2",
        account_id="444455556666",
        application_name="App",
        deployment_group_name="dep-group-ghi-789-2",
        new_id=counter(),
    )
    assert notification.kind == Channel.SNS
    assert notification.destination == trigger.target_arn
    assert notification.event_type == TEST_EVENT
    assert notification.deployment_id is None
    payload = json.loads(notification.body)
    assert payload["region"] == "us-east-2"
    assert payload["accountId"] == "444455556666"
    assert payload["eventTriggerName"] == "Trigger-group-us-east-2"
    assert payload["applicationName"] == "App"
    assert payload["deploymentGroupName"] == "dep-group-ghi-789-2"
    assert payload["triggerEvents"] == ["DeploymentStart", "DeploymentSuccess", "DeploymentFailure"]
    assert payload["testNotification"] == "true"
    assert "deploymentId" not in payload
    assert notification.subject == "TEST: AWS CodeDeploy trigger Trigger-group-us-east-2 in us-east-2 to App"
