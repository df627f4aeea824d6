"""What comes next for a target once one of its lifecycle events has ended, whoever ran it.

- A success (or a failure ``ignoreApplicationStopFailures`` forgives: ApplicationStop, BeforeBlockTraffic,
  AfterBlockTraffic run from the last successful revision; troubleshooting L26916–26969, decision D-16)
  starts the target's next pending event, handed to the runner the event catalogue names
  (``engine.runners``); with no next event the target has Succeeded.
- A failure fails the target and skips its remaining events.
- While the deployment is being stopped no new event starts: the target fails as stopped (``engine.stop``).
- A blue/green replacement instance that has installed and validated the revision waits before
  BeforeAllowTraffic: it becomes Ready (the guide's InstanceReady) and its strategy starts its traffic
  events when traffic is rerouted (``strategies.server_blue_green``).

A target that ends asks the engine to look at its deployment; its strategy decides what runs next. These
run on every event's end, so they are prepared Core statements (``store.prepared``), like
``host_commands``'.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from opendeploy.appspec.lifecycle_events import (
    AFTER_BLOCK_TRAFFIC,
    APPLICATION_STOP,
    BEFORE_ALLOW_TRAFFIC,
    BEFORE_BLOCK_TRAFFIC,
    BLUE_GREEN,
    EventRunner,
    event_runner,
)
from opendeploy.domain.statuses import LifecycleErrorCode, LifecycleEventStatus, TargetStatus
from opendeploy.engine import alarm_monitoring, notifying
from opendeploy.engine.runners import EventStart, runner_for
from opendeploy.engine.wakeups import deployment_changed
from opendeploy.settings import EngineSettings
from opendeploy.store.models import Deployment, DeploymentTarget, LifecycleEventRecord
from opendeploy.store.prepared import Prepared

# Events whose failure ignoreApplicationStopFailures forgives: those run from the last successful revision.
STOP_EVENTS = frozenset({APPLICATION_STOP, BEFORE_BLOCK_TRAFFIC, AFTER_BLOCK_TRAFFIC})

# Why a target failed (DeploymentTarget.failure_cause; ``deployment_end.CAUSE_INTERNAL`` besides).
CAUSE_EVENT = "event"  # the event's runner reported it failed
CAUSE_AGENT = "agent"  # no agent picked the event up in time
CAUSE_TIMEOUT = "timeout"  # the event ran past its deadline
CAUSE_STOPPED = "stopped"  # the deployment was stopped before the target finished (engine.stop)
CAUSE_NO_RUNNER = "internal"  # this server cannot run the event (no runner for its kind)

# (Bound names in UPDATE statements must not be column names.)
_TOUCH_TARGET = Prepared(
    update(DeploymentTarget)
    .where(DeploymentTarget.id == bindparam("b_target"))
    .values(last_updated_at=bindparam("b_now"))
)
_NEXT_EVENT = Prepared(
    select(LifecycleEventRecord.id, LifecycleEventRecord.name, LifecycleEventRecord.position)
    .where(
        LifecycleEventRecord.deployment_target_id == bindparam("target_id"),
        LifecycleEventRecord.position > bindparam("position"),
        LifecycleEventRecord.status == LifecycleEventStatus.PENDING,
    )
    .order_by(LifecycleEventRecord.position)
    .limit(1)
)
_SKIP_EVENTS = Prepared(
    update(LifecycleEventRecord)
    .where(
        LifecycleEventRecord.deployment_target_id == bindparam("b_target"),
        LifecycleEventRecord.position > bindparam("b_position"),
        LifecycleEventRecord.status == LifecycleEventStatus.PENDING,
    )
    .values(status=LifecycleEventStatus.SKIPPED)
)
_TARGET_AND_DEPLOYMENT = Prepared(
    select(
        DeploymentTarget.status,
        DeploymentTarget.target_id,
        DeploymentTarget.target_arn,
        Deployment.compute_platform,
        Deployment.ignore_application_stop_failures,
        Deployment.stop_requested_at,
        Deployment.deployment_style,
    )
    .join(Deployment, Deployment.id == DeploymentTarget.deployment_id)
    .where(DeploymentTarget.id == bindparam("target_id"))
)
_TARGET_ENDS = Prepared(
    update(DeploymentTarget)
    .where(DeploymentTarget.id == bindparam("b_target"))
    .values(
        status=bindparam("b_status"), failure_cause=bindparam("b_cause"), last_updated_at=bindparam("b_now")
    )
)
_EVENT_CANNOT_RUN = Prepared(
    update(LifecycleEventRecord)
    .where(
        LifecycleEventRecord.id == bindparam("b_event"),
        LifecycleEventRecord.status == LifecycleEventStatus.PENDING,
    )
    .values(
        status=LifecycleEventStatus.FAILED,
        start_time=bindparam("b_now"),
        end_time=bindparam("b_now"),
        diagnostics_error_code=LifecycleErrorCode.UNKNOWN_ERROR,
        diagnostics_message=bindparam("b_message"),
    )
)


def touch_target(session: Session, target_id: int, now: float) -> None:
    """The target changed (its event started, ended): its ``last_updated_at`` says when."""
    _TOUCH_TARGET.execute(session.connection(), {"b_target": target_id, "b_now": now})


def skip_remaining_events(session: Session, target_id: int, *, after: int = -1) -> None:
    """Mark the target's events after position ``after`` that have not started Skipped."""
    _SKIP_EVENTS.execute(session.connection(), {"b_target": target_id, "b_position": after})


def start_events(
    session: Session,
    deployment_id: str,
    compute_platform: str,
    events: Sequence[EventStart],
    now: float,
    settings: EngineSettings,
) -> None:
    """Hand each event to its runner (in bulk per runner); an event no runner can run fails its target."""
    by_runner: dict[EventRunner, list[EventStart]] = defaultdict(list)
    for event in events:
        by_runner[event_runner(compute_platform, event.event_name)].append(event)
    for kind, starts in by_runner.items():
        runner = runner_for(kind)
        if runner is not None:
            runner.start(session, deployment_id, starts, now, settings)
        else:
            _cannot_run(session, deployment_id, kind, starts, now)


def _cannot_run(
    session: Session, deployment_id: str, kind: EventRunner, events: Sequence[EventStart], now: float
) -> None:
    connection = session.connection()
    for event in events:
        message = (
            f"This server cannot run the {event.event_name} lifecycle event: it has no runner for "
            f"{kind} events yet."
        )
        _EVENT_CANNOT_RUN.execute(connection, {"b_event": event.event_id, "b_now": now, "b_message": message})
        skip_remaining_events(session, event.target_id, after=event.position)
        _TARGET_ENDS.execute(
            connection,
            {
                "b_target": event.target_id,
                "b_status": TargetStatus.FAILED,
                "b_cause": CAUSE_NO_RUNNER,
                "b_now": now,
            },
        )
    deployment_changed(session, deployment_id, now)


def _waits_for_reroute(following: str, style: Mapping[str, Any] | None) -> bool:
    """A blue/green replacement instance stops before BeforeAllowTraffic until traffic is rerouted (an
    original instance in a rollback starts there, so never reaches this from an earlier event)."""
    return following == BEFORE_ALLOW_TRAFFIC and (style or {}).get("deploymentType") == BLUE_GREEN


def event_ended(
    session: Session,
    *,
    deployment_id: str,
    target_id: int,
    event_name: str,
    position: int,
    succeeded: bool,
    cause: str,
    now: float,
    settings: EngineSettings,
) -> None:
    """The target's event at ``position`` has ended (recorded by its runner): move the target on."""
    alarm_monitoring.check_soon(session, deployment_id, now)  # every event boundary is followed by a check
    connection = session.connection()
    target = _TARGET_AND_DEPLOYMENT.first(connection, {"target_id": target_id})
    if target is None:
        return
    if target.status != TargetStatus.IN_PROGRESS:
        touch_target(session, target_id, now)
        return
    forgiven = event_name in STOP_EVENTS and target.ignore_application_stop_failures
    ends: tuple[str, str | None]
    if succeeded or forgiven:
        following = _NEXT_EVENT.first(connection, {"target_id": target_id, "position": position})
        if following is None:
            ends = (TargetStatus.SUCCEEDED, None)
        elif target.stop_requested_at is None and _waits_for_reroute(following.name, target.deployment_style):
            _TARGET_ENDS.execute(
                connection,
                {"b_target": target_id, "b_status": TargetStatus.READY, "b_cause": None, "b_now": now},
            )
            notifying.instances_changed_state(
                session, deployment_id, [(target_id, TargetStatus.IN_PROGRESS, TargetStatus.READY)], now
            )
            deployment_changed(session, deployment_id, now)
            return
        elif target.stop_requested_at is None:
            touch_target(session, target_id, now)
            host = target.target_arn or target.target_id
            start_events(
                session,
                deployment_id,
                target.compute_platform,
                [EventStart(target_id, host, following.id, following.name, following.position)],
                now,
                settings,
            )
            return
        else:  # the deployment is being stopped: no new event starts (engine.stop)
            ends = (TargetStatus.FAILED, CAUSE_STOPPED)
            skip_remaining_events(session, target_id, after=position)
    else:
        ends = (TargetStatus.FAILED, cause)
        skip_remaining_events(session, target_id, after=position)
    _TARGET_ENDS.execute(
        connection, {"b_target": target_id, "b_status": ends[0], "b_cause": ends[1], "b_now": now}
    )
    notifying.instances_changed_state(
        session, deployment_id, [(target_id, TargetStatus.IN_PROGRESS, ends[0])], now
    )
    deployment_changed(session, deployment_id, now)
