"""Stopping a deployment (StopDeployment; guide L19314–19369, §2.6 for health), and the other requests
that interrupt a running one (ContinueDeployment: ``continue_deployment``).

- **request** (in StopDeployment's own transaction, so nothing new starts once it has answered): the
  stop is recorded; every lifecycle event not yet handed to an agent is cancelled — its host command
  ends Failed (an agent that asks about it is told so), the event is Skipped — and so are the instances
  not yet started. An instance whose next event was cancelled before any of its events ran is Skipped;
  one that had begun is Failed: it was deployed to and did not finish, so it counts as attempted. When
  no event is running on an agent, the deployment is Stopped in that same transaction and
  StopDeployment answers ``Succeeded``.
- **drain** (the deployment's strategy; for agents' events ``drain_host_commands``): events already
  handed to agents cannot be interrupted; they finish (or run into their
  deadline) and are recorded as usual, but an instance goes no further (``target_progress``).
  Meanwhile StopDeployment answers ``Pending`` and the deployment stays InProgress.
- **stopped**: once no event runs, the deployment is ``Stopped`` with errorInformation ``MANUAL_STOP``
  (or the reason the request gave: ``ALARM_ACTIVE`` for an alarm, ``engine.alarm_monitoring``) through
  the one end transition (``deployment_end``): instances still under way fail as stopped, then
  health, the rollback if asked for, new instances.
"""

from __future__ import annotations

from sqlalchemy import and_, delete, exists, select, update
from sqlalchemy.orm import Session

from opendeploy.domain.statuses import (
    DeploymentStatus,
    ErrorCode,
    HostCommandStatus,
    LifecycleEventStatus,
    TargetStatus,
)
from opendeploy.engine.deployment_end import end_deployment
from opendeploy.engine.strategies import StrategyKey, find_strategy
from opendeploy.engine.target_progress import CAUSE_STOPPED
from opendeploy.engine.wakeups import deployment_changed
from opendeploy.settings import Settings
from opendeploy.store.models import Deployment, DeploymentTarget, HostCommand, LifecycleEventRecord, Timer

STOPPED_MESSAGE = "The deployment was stopped by a StopDeployment request."


def request_stop(
    session: Session,
    deployment: Deployment,
    auto_rollback_enabled: bool | None,
    now: float,
    settings: Settings,
    *,
    error_code: ErrorCode | None = None,
    error_message: str | None = None,
) -> bool:
    """Stop ``deployment`` (active, locked): cancel everything not yet handed out and, when no event is
    running on an agent, end it Stopped right away. True if it is Stopped now, False while events drain
    (the engine ends it when they have finished). ``error_code`` / ``error_message``: why, when it is not
    a StopDeployment request (an alarm: ALARM_ACTIVE)."""
    if deployment.stop_requested_at is None:  # a repeated request keeps the first one's reason and choice
        deployment.stop_requested_at = now
        deployment.stop_auto_rollback_enabled = auto_rollback_enabled
        deployment.stop_error_code = error_code
        deployment.stop_error_message = error_message
        deployment.updated_at = now
    if continue_stop(session, deployment, now, settings):
        return True
    deployment_changed(session, deployment.id, now)
    return False


def lock_running_commands(session: Session, deployment_id: str) -> None:
    """Lock the deployment's commands that agents are running (PostgreSQL; SQLite has one writer).

    A completion locks its command before it looks at the deployment and issues the instance's next
    event. Taking these locks before the deployment's own, a stop waits for completions in flight, so the
    events they issue are visible to its cancellation, and later completions see the stop.
    """
    session.execute(
        select(HostCommand.id)
        .where(
            HostCommand.deployment_id == deployment_id, HostCommand.status == HostCommandStatus.IN_PROGRESS
        )
        .order_by(HostCommand.id)
        .with_for_update()
    ).all()


def cancel_waiting_work(session: Session, deployment_id: str, now: float) -> None:
    """Cancel the commands no agent has picked up, and skip the instances not started."""
    cancelled = session.execute(
        update(HostCommand)
        .where(HostCommand.deployment_id == deployment_id, HostCommand.status == HostCommandStatus.PENDING)
        .values(status=HostCommandStatus.FAILED, completed_at=now, updated_at=now)
        .returning(HostCommand.id, HostCommand.deployment_target_id)
    ).all()
    if cancelled:
        command_ids = [command_id for command_id, _ in cancelled]
        session.execute(delete(Timer).where(Timer.host_command_id.in_(command_ids)))
        target_ids = sorted({target_id for _, target_id in cancelled})
        begun = set(
            session.scalars(
                select(LifecycleEventRecord.deployment_target_id)
                .where(
                    LifecycleEventRecord.deployment_target_id.in_(target_ids),
                    LifecycleEventRecord.start_time.is_not(None),
                )
                .distinct()
            )
        )
        if begun:
            session.execute(
                update(DeploymentTarget)
                .where(DeploymentTarget.id.in_(sorted(begun)))
                .values(status=TargetStatus.FAILED, failure_cause=CAUSE_STOPPED, last_updated_at=now)
            )
        untouched = [target_id for target_id in target_ids if target_id not in begun]
        if untouched:
            session.execute(
                update(DeploymentTarget)
                .where(DeploymentTarget.id.in_(untouched))
                .values(status=TargetStatus.SKIPPED, last_updated_at=now)
            )
    session.execute(
        update(DeploymentTarget)
        .where(
            DeploymentTarget.deployment_id == deployment_id, DeploymentTarget.status == TargetStatus.PENDING
        )
        .values(status=TargetStatus.SKIPPED, last_updated_at=now)
    )
    _skip_waiting_events(session, deployment_id)


def _skip_waiting_events(session: Session, deployment_id: str) -> None:
    """Every event still waiting on an instance that will go no further is Skipped."""
    session.execute(
        update(LifecycleEventRecord)
        .where(
            LifecycleEventRecord.status == LifecycleEventStatus.PENDING,
            LifecycleEventRecord.deployment_target_id.in_(
                select(DeploymentTarget.id).where(
                    DeploymentTarget.deployment_id == deployment_id,
                    DeploymentTarget.status != TargetStatus.IN_PROGRESS,
                )
            ),
        )
        .values(status=LifecycleEventStatus.SKIPPED)
    )


def _events_running(session: Session, deployment_id: str) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    and_(
                        HostCommand.deployment_id == deployment_id,
                        HostCommand.status == HostCommandStatus.IN_PROGRESS,
                    )
                )
            )
        )
    )


def drain_host_commands(session: Session, deployment_id: str, now: float) -> bool:
    """Cancel what waits for an agent; True once no agent runs any of the deployment's events."""
    cancel_waiting_work(session, deployment_id, now)  # again in the engine: anything issued since
    return not _events_running(session, deployment_id)


def continue_stop(session: Session, deployment: Deployment, now: float, settings: Settings) -> bool:
    """A step of a deployment being stopped: its strategy calls off what waits; end it Stopped once
    nothing runs any more (True); False while something still does (an agent's event: its completion or
    deadline brings the engine back). A deployment no strategy runs has only agents' work to call off."""
    strategy = find_strategy(StrategyKey.of_deployment(deployment))
    if strategy is not None:
        drained = strategy.drain(session, deployment, now, settings)
    else:
        drained = drain_host_commands(session, deployment.id, now)
    if not drained:
        return False
    # Instances still under way (their events ended, the stop let them go no further) fail as stopped.
    end_deployment(
        session,
        deployment,
        DeploymentStatus.STOPPED,
        now,
        settings,
        error_code=ErrorCode(deployment.stop_error_code or ErrorCode.MANUAL_STOP),
        error_message=deployment.stop_error_message or STOPPED_MESSAGE,
        cause=CAUSE_STOPPED,
    )
    return True


def continue_deployment(session: Session, deployment: Deployment, wait_type: str, now: float) -> None:
    """ContinueDeployment / SkipWaitTimeForInstanceTermination (validated by the API): record the request
    on ``deployment`` (locked) — reroute traffic now (``READY_WAIT``) or terminate the original instances
    without waiting out the termination wait (``TERMINATION_WAIT``) — and wake the engine to act on it."""
    if wait_type == "READY_WAIT":
        deployment.ready_wait_continue_requested_at = now
    else:
        deployment.termination_wait_skip_requested_at = now
    deployment.updated_at = now
    deployment_changed(session, deployment.id, now)
