"""Deployments tell the world what they do: each state change a deployment group's triggers or the
server's destinations (an EventBridge bus, webhooks) want becomes notifications in the outbox, written in
the transaction that makes the change (``store.outbox``), so a change is never kept without them nor they
without it; ``integrations.outbox_delivery`` sends them, at least once, after the commit.

- **Deployments** (``deployment_changed_state``): started (Created → InProgress: the strategy's start,
  before its first instances), Ready, Succeeded, Failed, Stopped (the one end transition,
  ``deployment_end``); and
  ``deployment_rolled_back`` when a rollback deployment is made for it (the guide's DeploymentRollback).
- **Instances** (``instances_changed_state``): started, succeeded, failed — where targets start
  (dispatch) and end (``target_progress``, ``deployment_end``).

Every such deployment and instance event also goes to the event log behind ``GET /events``
(``store.event_stream``), whether or not anything else listens, unless ``--event-stream-retention`` is 0:
an instance's change costs one prepared lookup (which also says whether its group has triggers) and a row
inserted with the transaction's others as it commits. Beyond that, with no trigger and no destination
nothing is read or written. Payloads are ``domain.notifications``'.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Session

from opendeploy.domain.arns import instance_arn
from opendeploy.domain.ids import new_request_id
from opendeploy.domain.notifications import (
    DeploymentChange,
    DeploymentEvent,
    Destinations,
    InstanceChange,
    InstanceEvent,
    LifecycleEventState,
    Notification,
    TriggerConfig,
    deployment_event,
    dumps,
    instance_event,
    notifications_for,
    state_change_event,
    trigger_configs,
    trigger_test_notifications,
)
from opendeploy.domain.statuses import TargetStatus
from opendeploy.settings import Settings
from opendeploy.store import event_stream, outbox
from opendeploy.store.models import (
    Application,
    Deployment,
    DeploymentGroup,
    DeploymentTarget,
    LifecycleEventRecord,
)
from opendeploy.store.prepared import Prepared

_INFO_KEY = "opendeploy.notifications_enqueued"
# The server's settings and its delivery worker's wake-up, installed by the runtime (``install``): the
# engine's per-instance steps carry only its own settings, yet instance notifications need the region,
# account and destinations. Not installed (an engine without a runtime): no instance notifications.
_installed: dict[str, Any] = {}


def install(settings: Settings | None, wake: Callable[[], None] | None = None) -> None:
    """Make ``settings`` this process's for notifications, and ``wake()`` what is called after a
    transaction that enqueued some commits (None uninstalls both)."""
    _installed.clear()
    if settings is not None:
        _installed["settings"] = settings
        _installed["wake"] = wake


def installed_settings() -> Settings | None:
    return _installed.get("settings")


def _listeners(
    session: Session, deployment: Deployment, settings: Settings
) -> tuple[DeploymentGroup | None, list[TriggerConfig], Destinations]:
    group_id = deployment.deployment_group_id
    group = session.get(DeploymentGroup, group_id) if group_id else None
    triggers = trigger_configs(group.trigger_configurations if group is not None else None)
    destinations = Destinations(
        settings.notifications.event_bus, tuple(hook.url for hook in settings.notifications.webhooks)
    )
    return group, triggers, destinations


_TRIGGERS_OF_DEPLOYMENT = Prepared(
    select(DeploymentGroup.trigger_configurations.label("triggers"))
    .join(Deployment, Deployment.deployment_group_id == DeploymentGroup.id)
    .where(Deployment.id == bindparam("deployment_id"))
)


def _server_destinations(settings: Settings) -> bool:
    return bool(settings.notifications.event_bus or settings.notifications.webhooks)


def _group_has_triggers(session: Session, deployment: Deployment | str) -> bool:
    deployment_id = deployment if isinstance(deployment, str) else deployment.id
    row = _TRIGGERS_OF_DEPLOYMENT.first(session.connection(), {"deployment_id": deployment_id})
    return row is not None and bool(row.triggers)


def _wanted(triggers: Sequence[TriggerConfig], destinations: Destinations) -> bool:
    return bool(triggers) or bool(destinations.event_bus) or bool(destinations.webhooks)


def _enqueue(session: Session, notifications: list[Notification], now: float) -> None:
    if not notifications:
        return
    outbox.enqueue(session, notifications, now)
    wake = _installed.get("wake")
    if wake is not None and not session.info.get(_INFO_KEY):
        session.info[_INFO_KEY] = True

        def woken(done: Session) -> None:
            done.info.pop(_INFO_KEY, None)
            wake()

        sqlalchemy_event.listen(session, "after_commit", woken, once=True)


def _stream(
    session: Session, changes: Sequence[DeploymentChange | InstanceChange], settings: Settings
) -> None:
    """Append ``changes``' EventBridge events to the event log (when it is on)."""
    if not settings.event_stream.enabled:
        return
    rows = []
    for change in changes:
        event = state_change_event(change, new_request_id())
        if event is None:  # DeploymentRollback: no EventBridge state
            continue
        rows.append(
            event_stream.NewEvent(
                kind="instance" if isinstance(change, InstanceChange) else "deployment",
                deployment_id=change.deployment_id,
                application_name=change.application_name,
                deployment_group_name=change.deployment_group_name,
                body=dumps(event),
                created_at=change.time,
            )
        )
    event_stream.append(session, rows)


def _names(session: Session, deployment: Deployment, group: DeploymentGroup | None) -> tuple[str, str]:
    application = session.get(Application, deployment.application_id)
    return (application.name if application else "", group.name if group else "")


def deployment_changed_state(
    session: Session,
    deployment: Deployment,
    previous_status: str | None,
    now: float,
    settings: Settings,
    event: DeploymentEvent | None = None,
) -> None:
    """``deployment``'s status has just changed from ``previous_status`` (or ``event`` happened to it)."""
    event = event or deployment_event(previous_status, deployment.status)
    if event is None:
        return
    group, triggers, destinations = _listeners(session, deployment, settings)
    wanted = _wanted(triggers, destinations)
    if not wanted and not settings.event_stream.enabled:
        return
    # The counts are the triggers' only (EventBridge events carry none).
    counts = (
        dict(
            session.execute(
                select(DeploymentTarget.status, func.count())
                .where(DeploymentTarget.deployment_id == deployment.id)
                .group_by(DeploymentTarget.status)
            ).all()
        )
        if wanted
        else {}
    )
    application_name, group_name = _names(session, deployment, group)
    change = DeploymentChange(
        event=event,
        region=settings.region,
        account_id=settings.account_id,
        deployment_id=deployment.id,
        application_name=application_name,
        deployment_group_name=group_name,
        deployment_group_id=deployment.deployment_group_id or "",
        status=deployment.status,
        create_time=deployment.create_time,
        time=now,
        complete_time=deployment.complete_time,
        overview=counts,
        error_code=deployment.error_code,
        error_message=deployment.error_message,
    )
    _stream(session, [change], settings)
    if wanted:
        _enqueue(session, notifications_for(change, triggers, destinations), now)


def deployment_rolled_back(session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
    """A rollback deployment has been made for ``deployment`` (the guide's DeploymentRollback)."""
    deployment_changed_state(session, deployment, deployment.status, now, settings, DeploymentEvent.ROLLBACK)


def targets_in_progress(session: Session, deployment: Deployment, settings: Settings) -> list[int]:
    """The deployment's targets under way, when their ends would be notified (else none: not read)."""
    if (
        not settings.event_stream.enabled
        and not _server_destinations(settings)
        and not _group_has_triggers(session, deployment)
    ):
        return []
    return list(
        session.scalars(
            select(DeploymentTarget.id).where(
                DeploymentTarget.deployment_id == deployment.id,
                DeploymentTarget.status == TargetStatus.IN_PROGRESS,
            )
        )
    )


# What an instance's events need besides its change, in one prepared lookup by target row: its names,
# its deployment's, and whether its group has triggers (``_TRIGGERS_OF_DEPLOYMENT``'s question too).
_CONTEXT = (
    select(
        DeploymentTarget.id.label("row"),
        DeploymentTarget.target_id.label("instance"),
        DeploymentTarget.target_arn.label("arn"),
        Deployment.id.label("deployment_id"),
        Deployment.deployment_group_id.label("group_id"),
        Application.name.label("application"),
        DeploymentGroup.name.label("group"),
        DeploymentGroup.trigger_configurations.label("triggers"),
    )
    .select_from(DeploymentTarget)
    .join(Deployment, Deployment.id == DeploymentTarget.deployment_id)
    .join(Application, Application.id == Deployment.application_id)
    .outerjoin(DeploymentGroup, DeploymentGroup.id == Deployment.deployment_group_id)
)
_TARGET_CONTEXT = Prepared(_CONTEXT.where(DeploymentTarget.id == bindparam("target_id")))
_CONTEXT_CHUNK = 500  # target rows per IN list when a batch of instances starts


def _target_contexts(session: Session, target_ids: Sequence[int]) -> dict[int, Any]:
    """``_TARGET_CONTEXT``'s row for each of ``target_ids`` that exists."""
    if len(target_ids) == 1:
        row = _TARGET_CONTEXT.first(session.connection(), {"target_id": target_ids[0]})
        return {row.row: row} if row is not None else {}
    found: dict[int, Any] = {}
    for start in range(0, len(target_ids), _CONTEXT_CHUNK):
        chunk = list(target_ids[start : start + _CONTEXT_CHUNK])
        found.update(
            (row.row, row) for row in session.execute(_CONTEXT.where(DeploymentTarget.id.in_(chunk)))
        )
    return found


def instances_changed_state(
    session: Session,
    deployment: Deployment | str,
    changes: Sequence[tuple[int, str | None, str]],
    now: float,
    settings: Settings | None = None,
) -> None:
    """Targets of ``deployment`` (or its id) changed status: ``(target row id, previous status, status)``
    each. ``settings``: the installed ones by default (``install``)."""
    settings = settings or installed_settings()
    if settings is None or not changes:
        return
    streamed = settings.event_stream.enabled
    if not streamed and not _server_destinations(settings) and not _group_has_triggers(session, deployment):
        return  # no event log and nobody listening: one prepared lookup
    events = [(target_id, instance_event(previous, status)) for target_id, previous, status in changes]
    events = [(target_id, event) for target_id, event in events if event is not None]
    if not events:
        return
    if streamed:
        contexts = _target_contexts(session, [target_id for target_id, _ in events])
        if not contexts:
            return
        if not _server_destinations(settings) and not any(row.triggers for row in contexts.values()):
            statuses = {target_id: status for target_id, _, status in changes}
            _stream(session, _stream_only(contexts, events, statuses, now, settings), settings)
            return  # the common case, at every instance's start and end
    if isinstance(deployment, str):
        found = session.get(Deployment, deployment)
        if found is None:
            return
        deployment = found
    group, triggers, destinations = _listeners(session, deployment, settings)
    if not _wanted(triggers, destinations) and not streamed:
        return
    application_name, group_name = _names(session, deployment, group)
    notifications = []
    instance_changes = []
    for target_id, event in events:
        target = session.get(DeploymentTarget, target_id)
        if target is None:
            continue
        lifecycle = [
            LifecycleEventState(row.name, row.status, row.start_time, row.end_time)
            for row in session.scalars(
                select(LifecycleEventRecord)
                .where(LifecycleEventRecord.deployment_target_id == target_id)
                .order_by(LifecycleEventRecord.position)
            )
        ]
        change = InstanceChange(
            event=event,
            region=settings.region,
            account_id=settings.account_id,
            deployment_id=deployment.id,
            application_name=application_name,
            deployment_group_name=group_name,
            deployment_group_id=deployment.deployment_group_id or "",
            instance_id=target.target_id,
            instance_arn=target.target_arn
            or instance_arn(settings.region, settings.account_id, target.target_id),
            status=target.status,
            last_updated_at=target.last_updated_at or now,
            time=now,
            lifecycle_events=lifecycle,
        )
        instance_changes.append(change)
        notifications += notifications_for(change, triggers, destinations)
    _stream(session, instance_changes, settings)
    _enqueue(session, notifications, now)


def _stream_only(
    contexts: dict[int, Any],
    events: Sequence[tuple[int, InstanceEvent]],
    statuses: dict[int, str],
    now: float,
    settings: Settings,
) -> list[InstanceChange]:
    """The changes of instances nothing but the event log hears of (EventBridge events need no
    lifecycle events nor counts)."""
    changes = []
    for target_id, event in events:
        row = contexts.get(target_id)
        if row is None:
            continue
        changes.append(
            InstanceChange(
                event=event,
                region=settings.region,
                account_id=settings.account_id,
                deployment_id=row.deployment_id,
                application_name=row.application,
                deployment_group_name=row.group or "",
                deployment_group_id=row.group_id or "",
                instance_id=row.instance,
                instance_arn=row.arn or instance_arn(settings.region, settings.account_id, row.instance),
                status=statuses[target_id],
                last_updated_at=now,
                time=now,
            )
        )
    return changes


def triggers_changed(
    session: Session,
    before: Sequence[dict[str, Any]] | None,
    after: Sequence[dict[str, Any]] | None,
    application_name: str,
    deployment_group_name: str,
    now: float,
    settings: Settings,
) -> None:
    """A deployment group was created (``before`` None) or updated: each trigger that is new or changed
    gets the guide's test notification (L20592–20600)."""
    tests = trigger_test_notifications(
        trigger_configs(before) if before is not None else None,
        trigger_configs(after),
        region=settings.region,
        account_id=settings.account_id,
        application_name=application_name,
        deployment_group_name=deployment_group_name,
    )
    _enqueue(session, tests, now)
