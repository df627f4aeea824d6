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

With no trigger and no destination nothing is read or written: a deployment nobody listens to pays one
lookup of its group (kept in the session). Payloads are ``domain.notifications``'.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Session

from opendeploy.domain.arns import instance_arn
from opendeploy.domain.notifications import (
    DeploymentChange,
    DeploymentEvent,
    Destinations,
    InstanceChange,
    LifecycleEventState,
    Notification,
    TriggerConfig,
    deployment_event,
    instance_event,
    notifications_for,
    trigger_configs,
    trigger_test_notifications,
)
from opendeploy.domain.statuses import TargetStatus
from opendeploy.settings import Settings
from opendeploy.store import outbox
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
    if not _wanted(triggers, destinations):
        return
    counts = dict(
        session.execute(
            select(DeploymentTarget.status, func.count())
            .where(DeploymentTarget.deployment_id == deployment.id)
            .group_by(DeploymentTarget.status)
        ).all()
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
    _enqueue(session, notifications_for(change, triggers, destinations), now)


def deployment_rolled_back(session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
    """A rollback deployment has been made for ``deployment`` (the guide's DeploymentRollback)."""
    deployment_changed_state(session, deployment, deployment.status, now, settings, DeploymentEvent.ROLLBACK)


def targets_in_progress(session: Session, deployment: Deployment, settings: Settings) -> list[int]:
    """The deployment's targets under way, when their ends would be notified (else none: not read)."""
    if not _server_destinations(settings) and not _group_has_triggers(session, deployment):
        return []
    return list(
        session.scalars(
            select(DeploymentTarget.id).where(
                DeploymentTarget.deployment_id == deployment.id,
                DeploymentTarget.status == TargetStatus.IN_PROGRESS,
            )
        )
    )


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
    if not _server_destinations(settings) and not _group_has_triggers(session, deployment):
        return  # the common case, at every instance's start and end: one prepared lookup
    if isinstance(deployment, str):
        found = session.get(Deployment, deployment)
        if found is None:
            return
        deployment = found
    events = [(target_id, instance_event(previous, status)) for target_id, previous, status in changes]
    events = [(target_id, event) for target_id, event in events if event is not None]
    if not events:
        return
    group, triggers, destinations = _listeners(session, deployment, settings)
    if not _wanted(triggers, destinations):
        return
    application_name, group_name = _names(session, deployment, group)
    notifications = []
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
        notifications += notifications_for(change, triggers, destinations)
    _enqueue(session, notifications, now)


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
