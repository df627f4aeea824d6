"""Alarm monitoring: a deployment whose group has alarms is watched for its whole life, and stopped
(``ALARM_ACTIVE``) when one goes off — rolled back too when the group's automatic rollback names
DEPLOYMENT_STOP_ON_ALARM (``engine.rollback``).

- **When**: the guide gives no cadence. An ``alarm_poll`` timer reads the alarms when the deployment
  starts and then every ``AlarmSettings.poll_interval`` (30 s) while it is active, and the timer is
  brought forward to within ``BOUNDARY_DELAY`` of every lifecycle event's end (a zone's monitor wait
  begins at one) and of every step of a canary or linear traffic shift (``check_soon``:
  ``target_progress``, ``strategies.server_blue_green``), so each is followed by a check.
- **How**: the alarms are read outside any transaction (the timer kind's ``observe``: CloudWatch,
  Prometheus — network calls never hold the database), then ``domain.alarm_checks.check_alarms``
  decides with the group's configuration as it is now (``enabled: false`` ignores them,
  ``ignorePollAlarmFailure`` decides what an unreadable alarm does).
- **Stop**: as StopDeployment does (``engine.stop.request_stop``), with ``ALARM_ACTIVE`` and the alarms
  named as the reason; events agents are running finish first. Alarms ignored as unreadable are said
  once in ``deploymentStatusMessages``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from opendeploy.domain.alarm_checks import AlarmReading, check_alarms, watched_alarms
from opendeploy.domain.deployment_style import AlarmConfiguration
from opendeploy.domain.statuses import ACTIVE_DEPLOYMENT_STATUSES
from opendeploy.engine.timers import pull_forward, schedule, timer_kind
from opendeploy.engine.wakeups import wake_engine_on_commit
from opendeploy.integrations.alarms import read_alarms
from opendeploy.settings import Settings
from opendeploy.store.models import Deployment, DeploymentGroup, Timer

ALARM_POLL = "alarm_poll"
BOUNDARY_DELAY = 1.0  # an event boundary's check, at most this long after it (a burst shares one)


def _configuration(session: Session, deployment: Deployment) -> AlarmConfiguration:
    group_id = deployment.deployment_group_id
    group = session.get(DeploymentGroup, group_id) if group_id else None
    return AlarmConfiguration.from_wire(group.alarm_configuration if group is not None else None)


def watch(session: Session, deployment: Deployment, now: float) -> None:
    """A deployment has started: read its group's alarms now, then on the poll timer."""
    if watched_alarms(_configuration(session, deployment)):
        schedule(session, ALARM_POLL, now, deployment_id=deployment.id, now=now)


def check_soon(session: Session, deployment_id: str, now: float) -> None:
    """A lifecycle event ended or traffic moved a step: the deployment's alarms are read within
    ``BOUNDARY_DELAY``."""
    pull_forward(session, ALARM_POLL, deployment_id, now + BOUNDARY_DELAY)


def _observe(session: Session, timer: Timer, now: float, settings: Settings) -> Callable[[], Any] | None:
    deployment = session.get(Deployment, timer.deployment_id) if timer.deployment_id else None
    if deployment is None:
        return None
    names = watched_alarms(_configuration(session, deployment))
    if not names:
        return None
    return lambda: read_alarms(names, settings.alarms)


@timer_kind(ALARM_POLL, observe=_observe)
def alarm_poll(
    session: Session, timer: Timer, now: float, settings: Settings, observed: dict[str, AlarmReading] | None
) -> None:
    """Decide on what the alarms said: stop the deployment, or look again after the poll interval."""
    from opendeploy.engine.stop import lock_running_commands, request_stop  # stop builds on strategies

    deployment = session.get(Deployment, timer.deployment_id) if timer.deployment_id else None
    active = deployment is not None and deployment.status in ACTIVE_DEPLOYMENT_STATUSES
    if deployment is None or not active or deployment.stop_requested_at is not None:
        session.execute(delete(Timer).where(Timer.id == timer.id))
        return
    configuration = _configuration(session, deployment)
    if not watched_alarms(configuration):  # disabled or emptied since: nothing to watch any more
        session.execute(delete(Timer).where(Timer.id == timer.id))
        return
    verdict = check_alarms(configuration, observed or {})
    if not verdict.stops:
        notice = verdict.notice
        messages = deployment.deployment_status_messages or []
        if notice and notice not in messages:
            deployment.deployment_status_messages = [*messages, notice]
        session.execute(
            update(Timer).where(Timer.id == timer.id).values(due_at=now + settings.alarms.poll_interval)
        )
        return
    session.execute(delete(Timer).where(Timer.id == timer.id))
    # The lock order of StopDeployment (running commands, then the deployment), so completions in
    # flight finish first and anything they started is called off.
    lock_running_commands(session, deployment.id)
    session.refresh(deployment, with_for_update=True)
    if deployment.status not in ACTIVE_DEPLOYMENT_STATUSES or deployment.stop_requested_at is not None:
        return
    request_stop(
        session, deployment, None, now, settings, error_code=verdict.error_code, error_message=verdict.message
    )
    wake_engine_on_commit(session)
