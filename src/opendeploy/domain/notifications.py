"""What opendeploy tells the world when a deployment or an instance changes state, as pure data.

Three shapes leave the server (guide L20321–20443 and L20544–21140; spec
``guide-rollback-monitoring-security.md`` §6 and §8):

- **SNS trigger messages** (a deployment group's ``triggerConfigurations``): the guide's JSON with its
  exact keys (camelCase at the top, PascalCase inside), times as strings of epoch seconds with
  milliseconds, counts as strings, statuses as the API writes them (``Succeeded``, ``Failed``), the
  instance as its ARN (L21091–21140). Built by :func:`trigger_message`, with a subject line.
- **EventBridge events** "CodeDeploy Deployment State-change Notification" / "CodeDeploy Instance
  State-change Notification" (source ``aws.codedeploy``, upper-case states ``START``, ``SUCCESS``…),
  built by :func:`state_change_event`; webhooks carry the same envelope.
- **Test notifications** (§8.3): one to each trigger that is new or changed when a deployment group is
  created or updated (:func:`triggers_to_test`, :func:`trigger_test_message`).

The engine describes a change with a :class:`DeploymentChange` or :class:`InstanceChange` and
:func:`notifications_for` fans it out to every destination as :class:`Notification` rows for the outbox
(``store.outbox``), so the messages are fixed in the same transaction as the change that causes them.

Decisions where the guide says nothing (see each function): the status a DeploymentStart message
carries is the deployment's own (``InProgress``: it is sent when the deployment starts work); a time not
known yet is ``null`` (as AWS sends ``completeTime``); ``errorInformation`` is present only when the
deployment has an error; DeploymentRollback describes the deployment being rolled back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from opendeploy.domain.arns import application_arn, deployment_group_arn
from opendeploy.domain.ids import new_request_id
from opendeploy.domain.statuses import DeploymentStatus, TargetStatus
from opendeploy.domain.timestamps import iso_second

SOURCE = "aws.codedeploy"
DEPLOYMENT_DETAIL_TYPE = "CodeDeploy Deployment State-change Notification"
INSTANCE_DETAIL_TYPE = "CodeDeploy Instance State-change Notification"
SUBJECT_LIMIT = 99  # SNS: "less than 100 characters", printable ASCII, no line breaks


class TriggerEvent(StrEnum):
    """A trigger's ``triggerEvents`` value (guide L20803–20822; the API's TriggerEventType)."""

    DEPLOYMENT_START = "DeploymentStart"
    DEPLOYMENT_SUCCESS = "DeploymentSuccess"
    DEPLOYMENT_FAILURE = "DeploymentFailure"
    DEPLOYMENT_STOP = "DeploymentStop"
    DEPLOYMENT_ROLLBACK = "DeploymentRollback"
    DEPLOYMENT_READY = "DeploymentReady"  # blue/green: replacement installed, traffic may be rerouted
    INSTANCE_START = "InstanceStart"
    INSTANCE_SUCCESS = "InstanceSuccess"
    INSTANCE_FAILURE = "InstanceFailure"
    INSTANCE_READY = "InstanceReady"


DEPLOYMENT_TRIGGER_EVENTS: frozenset[TriggerEvent] = frozenset(e for e in TriggerEvent if e.startswith("D"))
INSTANCE_TRIGGER_EVENTS: frozenset[TriggerEvent] = frozenset(e for e in TriggerEvent if e.startswith("I"))


class EventState(StrEnum):
    """An EventBridge event's ``detail.state`` (guide L20391–20411)."""

    START = "START"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    STOP = "STOP"  # deployments only
    QUEUED = "QUEUED"  # deployments only; no trigger event of its own
    READY = "READY"


class DeploymentEvent(StrEnum):
    """Something that happened to a deployment, named as the outbox's ``event_type`` and the webhook's
    ``X-Opendeploy-Event`` header: the trigger event's name, or ``DeploymentQueued`` (EventBridge only)."""

    START = "DeploymentStart"
    SUCCESS = "DeploymentSuccess"
    FAILURE = "DeploymentFailure"
    STOP = "DeploymentStop"
    ROLLBACK = "DeploymentRollback"  # triggers only: EventBridge has no rollback state
    READY = "DeploymentReady"
    QUEUED = "DeploymentQueued"  # EventBridge only: triggers have no queued event


class InstanceEvent(StrEnum):
    """Something that happened to an instance in a deployment (trigger names; the guide has no
    instance stop or rollback event)."""

    START = "InstanceStart"
    SUCCESS = "InstanceSuccess"
    FAILURE = "InstanceFailure"
    READY = "InstanceReady"


TEST_EVENT = "TriggerTest"  # the event_type of a test notification

_DEPLOYMENT_STATES: dict[DeploymentEvent, EventState | None] = {
    DeploymentEvent.START: EventState.START,
    DeploymentEvent.SUCCESS: EventState.SUCCESS,
    DeploymentEvent.FAILURE: EventState.FAILURE,
    DeploymentEvent.STOP: EventState.STOP,
    DeploymentEvent.ROLLBACK: None,
    DeploymentEvent.READY: EventState.READY,
    DeploymentEvent.QUEUED: EventState.QUEUED,
}
_INSTANCE_STATES: dict[InstanceEvent, EventState] = {
    InstanceEvent.START: EventState.START,
    InstanceEvent.SUCCESS: EventState.SUCCESS,
    InstanceEvent.FAILURE: EventState.FAILURE,
    InstanceEvent.READY: EventState.READY,
}


def event_state(event: DeploymentEvent | InstanceEvent) -> EventState | None:
    """The EventBridge state of an event; ``None`` for DeploymentRollback, which has none."""
    if isinstance(event, DeploymentEvent):
        return _DEPLOYMENT_STATES[event]
    return _INSTANCE_STATES[event]


def trigger_event(event: DeploymentEvent | InstanceEvent) -> TriggerEvent | None:
    """The trigger event of an event; ``None`` for DeploymentQueued, which triggers cannot ask for."""
    try:
        return TriggerEvent(event.value)
    except ValueError:
        return None


def deployment_event(previous: str | None, status: str) -> DeploymentEvent | None:
    """The event a deployment's status change from ``previous`` to ``status`` is, if any.

    A deployment *starts* when it goes from Created or Queued to InProgress (where work begins; AWS
    sends its DeploymentStart then too), not when it is created; a blue/green deployment waiting to
    reroute is Ready; Succeeded, Failed and Stopped end it. A rollback is not a status change: the
    engine reports it with :attr:`DeploymentEvent.ROLLBACK` when it creates the rollback deployment.
    """
    if previous == status:
        return None
    match DeploymentStatus(status):
        case DeploymentStatus.IN_PROGRESS if previous in (
            None,
            DeploymentStatus.CREATED,
            DeploymentStatus.QUEUED,
        ):
            return DeploymentEvent.START
        case DeploymentStatus.QUEUED:
            return DeploymentEvent.QUEUED
        case DeploymentStatus.READY:
            return DeploymentEvent.READY
        case DeploymentStatus.SUCCEEDED:
            return DeploymentEvent.SUCCESS
        case DeploymentStatus.FAILED:
            return DeploymentEvent.FAILURE
        case DeploymentStatus.STOPPED:
            return DeploymentEvent.STOP
    return None


def instance_event(previous: str | None, status: str) -> InstanceEvent | None:
    """The event an instance's status change in a deployment is, if any (Skipped and Unknown are none)."""
    if previous == status:
        return None
    match TargetStatus(status):
        case TargetStatus.IN_PROGRESS:
            return InstanceEvent.START
        case TargetStatus.SUCCEEDED:
            return InstanceEvent.SUCCESS
        case TargetStatus.FAILED:
            return InstanceEvent.FAILURE
        case TargetStatus.READY:
            return InstanceEvent.READY
    return None


# --- state changes, as the engine describes them -------------------------------------------------


@dataclass(frozen=True)
class LifecycleEventState:
    """One lifecycle event of an instance, as an instance trigger lists it."""

    name: str  # ApplicationStop, BeforeInstall …
    status: str  # the API's LifecycleEventStatus: Pending, InProgress, Succeeded, Failed, Skipped, Unknown
    start_time: float | None = None
    end_time: float | None = None


@dataclass(frozen=True)
class DeploymentChange:
    """A deployment's state change: what every deployment notification is built from.

    ``overview`` counts the deployment's instances by the API's instance status names (Pending,
    InProgress, Succeeded, Failed, Skipped, Ready); missing ones count 0.
    """

    event: DeploymentEvent
    region: str
    account_id: str
    deployment_id: str
    application_name: str
    deployment_group_name: str
    deployment_group_id: str
    status: str  # the deployment's status after the change (DeploymentStatus value)
    create_time: float
    time: float  # when the change happened
    complete_time: float | None = None
    overview: Mapping[str, int] = field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class InstanceChange:
    """An instance's state change in a deployment.

    ``instance_id`` is the instance's name (EventBridge's ``detail.instanceId``); ``instance_arn`` its ARN
    (the trigger's ``instanceId`` and the event's first resource): an EC2 instance ARN for EC2, the
    CodeDeploy instance ARN for an on-premises instance.
    """

    event: InstanceEvent
    region: str
    account_id: str
    deployment_id: str
    application_name: str
    deployment_group_name: str
    deployment_group_id: str
    instance_id: str
    instance_arn: str
    status: str  # the instance's status in the deployment (TargetStatus value)
    last_updated_at: float
    time: float
    lifecycle_events: Sequence[LifecycleEventState] = ()


Change = DeploymentChange | InstanceChange


# --- SNS trigger messages (guide L21077–21140) ---------------------------------------------------


@dataclass(frozen=True)
class TriggerConfig:
    """One of a deployment group's ``triggerConfigurations`` (guide L20756–20800)."""

    name: str
    target_arn: str  # the SNS topic
    events: tuple[str, ...]

    @classmethod
    def from_api(cls, value: Mapping[str, Any]) -> TriggerConfig:
        return cls(
            name=str(value.get("triggerName") or ""),
            target_arn=str(value.get("triggerTargetArn") or ""),
            events=tuple(str(e) for e in value.get("triggerEvents") or ()),
        )


def trigger_configs(values: Iterable[Mapping[str, Any]] | None) -> list[TriggerConfig]:
    """A deployment group's stored ``triggerConfigurations`` as :class:`TriggerConfig` values."""
    return [TriggerConfig.from_api(v) for v in values or ()]


def epoch_text(value: float | None) -> str | None:
    """A time as the trigger payloads write it: epoch seconds with milliseconds, as a string."""
    return None if value is None else f"{value:.3f}"


OVERVIEW_KEYS = ("Failed", "InProgress", "Pending", "Skipped", "Succeeded")  # the guide's five, its order


def deployment_trigger_payload(change: DeploymentChange, trigger_name: str) -> dict[str, Any]:
    """The guide's "Sample JSON Output for Deployment-Based Triggers" (L21118–21140) for ``change``.

    ``deploymentOverview`` has the guide's five counts (the API's ``Ready`` count is not among them);
    ``errorInformation`` is there only when the deployment has an error code.
    """
    payload: dict[str, Any] = {
        "region": change.region,
        "accountId": change.account_id,
        "eventTriggerName": trigger_name,
        "applicationName": change.application_name,
        "deploymentId": change.deployment_id,
        "deploymentGroupName": change.deployment_group_name,
        "createTime": epoch_text(change.create_time),
        "completeTime": epoch_text(change.complete_time),
        "deploymentOverview": {key: str(int(change.overview.get(key, 0))) for key in OVERVIEW_KEYS},
        "status": change.status,
    }
    if change.error_code:
        payload["errorInformation"] = {
            "ErrorCode": change.error_code,
            "ErrorMessage": change.error_message or "",
        }
    return payload


def instance_trigger_payload(change: InstanceChange, trigger_name: str) -> dict[str, Any]:
    """The guide's "Sample JSON Output for Instance-Based Triggers" (L21091–21116) for ``change``."""
    return {
        "region": change.region,
        "accountId": change.account_id,
        "eventTriggerName": trigger_name,
        "deploymentId": change.deployment_id,
        "instanceId": change.instance_arn,
        "lastUpdatedAt": epoch_text(change.last_updated_at),
        "instanceStatus": change.status,
        "lifecycleEvents": [
            {
                "LifecycleEvent": event.name,
                "LifecycleEventStatus": event.status,
                "StartTime": epoch_text(event.start_time),
                "EndTime": epoch_text(event.end_time),
            }
            for event in change.lifecycle_events
        ],
    }


def _shout(status: str) -> str:
    """``InProgress`` → ``IN_PROGRESS``, ``Succeeded`` → ``SUCCEEDED``."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", status).upper()


def sns_subject(text: str) -> str:
    """``text`` as SNS accepts a subject: printable ASCII, one line, under 100 characters."""
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in text.replace("\n", " ").replace("\r", " "))
    cleaned = cleaned.strip() or "AWS CodeDeploy"
    return cleaned if len(cleaned) <= SUBJECT_LIMIT else cleaned[: SUBJECT_LIMIT - 3] + "..."


def trigger_subject(change: Change) -> str:
    """The subject line of a trigger message: AWS's form, ``SUCCEEDED: AWS CodeDeploy d-… in
    us-east-1 to App`` (the guide shows none); an instance's adds ``(instance <name>)``."""
    text = f"{_shout(change.status)}: AWS CodeDeploy {change.deployment_id} in {change.region} to "
    text += change.application_name
    if isinstance(change, InstanceChange):
        text += f" (instance {change.instance_id})"
    return sns_subject(text)


@dataclass(frozen=True)
class TriggerMessage:
    """What SNS Publish sends: the subject and the message body (JSON text)."""

    subject: str
    message: str


def dumps(value: Any) -> str:
    """Compact JSON text, as AWS's messages are."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def trigger_message(change: Change, trigger_name: str) -> TriggerMessage:
    """The SNS message a trigger named ``trigger_name`` publishes for ``change``."""
    if isinstance(change, DeploymentChange):
        payload = deployment_trigger_payload(change, trigger_name)
    else:
        payload = instance_trigger_payload(change, trigger_name)
    return TriggerMessage(trigger_subject(change), dumps(payload))


def triggers_for(change: Change, triggers: Iterable[TriggerConfig]) -> list[TriggerConfig]:
    """The triggers that ask for ``change``'s event, in their order."""
    wanted = trigger_event(change.event)
    if wanted is None:
        return []
    return [trigger for trigger in triggers if wanted.value in trigger.events]


# --- test notifications (guide L20676–20677, L20716–20719, L20862–20863, L20952–20953) ------------


def triggers_to_test(
    before: Iterable[TriggerConfig] | None, after: Iterable[TriggerConfig]
) -> list[TriggerConfig]:
    """The triggers a create or update of a deployment group sends a test notification to.

    The guide: "At the end of the creation process, you receive a test notification message that
    indicates both permissions and trigger details are set up correctly", when triggers are created
    (console or create-deployment-group) and when they are added or edited (update-deployment-group).
    So: every trigger that did not exist before (by name) or whose topic or events changed; an update
    that leaves a trigger as it was sends it nothing, and a deleted trigger is not told.
    """
    previous = {trigger.name: trigger for trigger in before or ()}
    return [
        trigger
        for trigger in after
        if (old := previous.get(trigger.name)) is None
        or old.target_arn != trigger.target_arn
        or sorted(old.events) != sorted(trigger.events)
    ]


def trigger_test_message(
    trigger: TriggerConfig,
    *,
    region: str,
    account_id: str,
    application_name: str,
    deployment_group_name: str,
) -> TriggerMessage:
    """The test notification for ``trigger``. The guide gives no payload; this one is JSON in the
    triggers' style (camelCase keys, string values) naming the trigger, its group and events, with no
    ``deploymentId``, so consumers that route deployment messages by ``deploymentId`` pass it by."""
    payload = {
        "region": region,
        "accountId": account_id,
        "eventTriggerName": trigger.name,
        "applicationName": application_name,
        "deploymentGroupName": deployment_group_name,
        "triggerEvents": list(trigger.events),
        "testNotification": "true",
        "message": (
            f"Test notification from AWS CodeDeploy (opendeploy): trigger {trigger.name!r} of deployment "
            f"group {deployment_group_name!r} (application {application_name!r}) can publish to this topic."
        ),
    }
    subject = sns_subject(f"TEST: AWS CodeDeploy trigger {trigger.name} in {region} to {application_name}")
    return TriggerMessage(subject, dumps(payload))


# --- EventBridge events (guide L20372–20431; envelope: spec §6) ----------------------------------


def state_change_event(change: Change, event_id: str, *, source: str = SOURCE) -> dict[str, Any] | None:
    """The EventBridge event for ``change`` with envelope id ``event_id``; ``None`` for an event with no
    EventBridge state (DeploymentRollback).

    ``resources``: a deployment's application and deployment group ARNs; an instance's instance ARN,
    deployment group ARN and application ARN, in that order. ``detail.instanceGroupId`` is the deployment
    group's id.
    """
    state = event_state(change.event)
    if state is None:
        return None
    app_arn = application_arn(change.region, change.account_id, change.application_name)
    group_arn = deployment_group_arn(
        change.region, change.account_id, change.application_name, change.deployment_group_name
    )
    detail: dict[str, Any] = {
        "instanceGroupId": change.deployment_group_id,
        "region": change.region,
        "application": change.application_name,
        "deploymentId": change.deployment_id,
        "state": state.value,
        "deploymentGroup": change.deployment_group_name,
    }
    if isinstance(change, InstanceChange):
        detail["instanceId"] = change.instance_id
        detail_type = INSTANCE_DETAIL_TYPE
        resources = [change.instance_arn, group_arn, app_arn]
    else:
        detail_type = DEPLOYMENT_DETAIL_TYPE
        resources = [app_arn, group_arn]
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": source,
        "account": change.account_id,
        "time": iso_second(change.time),
        "region": change.region,
        "resources": resources,
        "detail": detail,
    }


# --- fan-out to the outbox ------------------------------------------------------------------------


class Channel(StrEnum):
    """How a notification leaves: its outbox row's ``kind``."""

    SNS = "sns"  # destination: topic ARN; body: the trigger message; subject
    EVENTBRIDGE = "eventbridge"  # destination: event bus name or ARN; body: the event envelope
    WEBHOOK = "webhook"  # destination: URL; body: the event envelope


@dataclass(frozen=True)
class Notification:
    """One message to one destination, as the outbox keeps it until it is delivered.

    ``id`` is unique per destination and stays the same through every retry, so receivers can
    deduplicate (webhooks: ``X-Opendeploy-Delivery``; SNS: the ``opendeploy.notification-id`` message
    attribute). ``body`` is the exact text sent.
    """

    id: str
    kind: Channel
    destination: str
    event_type: str
    body: str
    subject: str | None = None
    deployment_id: str | None = None


@dataclass(frozen=True)
class Destinations:
    """Where events go besides triggers' topics: an EventBridge bus and webhook URLs (server settings)."""

    event_bus: str | None = None
    webhooks: tuple[str, ...] = ()


def notifications_for(
    change: Change,
    triggers: Iterable[TriggerConfig],
    destinations: Destinations = Destinations(),
    *,
    new_id: Callable[[], str] = new_request_id,
) -> list[Notification]:
    """Every notification ``change`` causes: one SNS message per trigger asking for its event, and its
    EventBridge event to the event bus and to each webhook (one envelope id, one delivery id each)."""
    out: list[Notification] = []
    for trigger in triggers_for(change, triggers):
        message = trigger_message(change, trigger.name)
        out.append(
            Notification(
                id=new_id(),
                kind=Channel.SNS,
                destination=trigger.target_arn,
                event_type=change.event.value,
                body=message.message,
                subject=message.subject,
                deployment_id=change.deployment_id,
            )
        )
    targets = [(Channel.EVENTBRIDGE, destinations.event_bus)] if destinations.event_bus else []
    targets += [(Channel.WEBHOOK, url) for url in destinations.webhooks]
    if targets:
        event = state_change_event(change, new_id())
        if event is not None:
            body = dumps(event)
            out += [
                Notification(
                    id=new_id(),
                    kind=kind,
                    destination=destination,
                    event_type=change.event.value,
                    body=body,
                    deployment_id=change.deployment_id,
                )
                for kind, destination in targets
            ]
    return out


def trigger_test_notifications(
    before: Iterable[TriggerConfig] | None,
    after: Iterable[TriggerConfig],
    *,
    region: str,
    account_id: str,
    application_name: str,
    deployment_group_name: str,
    new_id: Callable[[], str] = new_request_id,
) -> list[Notification]:
    """The test notifications a create (``before`` None) or update of a deployment group sends."""
    out = []
    for trigger in triggers_to_test(before, after):
        message = trigger_test_message(
            trigger,
            region=region,
            account_id=account_id,
            application_name=application_name,
            deployment_group_name=deployment_group_name,
        )
        out.append(
            Notification(
                id=new_id(),
                kind=Channel.SNS,
                destination=trigger.target_arn,
                event_type=TEST_EVENT,
                body=message.message,
                subject=message.subject,
            )
        )
    return out
