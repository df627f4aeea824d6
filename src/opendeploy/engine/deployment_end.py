"""Ending a deployment (Succeeded, Failed or Stopped): the one transition every strategy, a stop and the
reconciler's retry policy go through, in the transaction that ends it (``end_deployment``).

1. What it leaves waiting is called off: host commands no agent has picked up end Failed (an agent that
   asks about one is told so), instances not started are Skipped, instances still under way Failed,
   their events not started Skipped, and its timers deleted — except the run deadlines of events that
   agents are still running, which close those events if their agents never report (a deployment ends
   with events running only when the engine gives up on it: ``reconciler``). A strategy normally ends a
   deployment once nothing runs and nothing waits, and a stop has already called its work off, so for
   them this step finds nothing.
2. Its status, times, error information and ``deploymentStatusMessages`` are set, and the engine stops
   looking at it (``engine_due_at``); the instances it failed and its own end go to the notification
   outbox (``notifying``).
3. What follows (``deployment_ended``): its instances' health moves on (``instance_health_records``;
   guide §2.6); a failure, or a stop or an alarm that asks for it, starts the automatic rollback
   (``rollback``, notified as DeploymentRollback); instances that joined the group while it ran get the
   group's revision (``new_instances``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from opendeploy.domain.statuses import (
    DeploymentStatus,
    ErrorCode,
    HostCommandStatus,
    LifecycleEventStatus,
    TargetStatus,
)
from opendeploy.engine import new_instances, notifying, rollback
from opendeploy.engine.deployment_creation import last_successful_deployment
from opendeploy.engine.instance_health_records import record_deployment_end
from opendeploy.settings import Settings
from opendeploy.store.models import (
    Deployment,
    DeploymentGroup,
    DeploymentTarget,
    HostCommand,
    LifecycleEventRecord,
    Timer,
)

# DeploymentTarget.failure_cause of an instance still under way when its deployment ended on an internal
# error (the other causes are host_commands').
CAUSE_INTERNAL = "internal"


def end_deployment(
    session: Session,
    deployment: Deployment,
    status: DeploymentStatus,
    now: float,
    settings: Settings,
    *,
    error_code: ErrorCode | None = None,
    error_message: str | None = None,
    status_messages: Sequence[str] | None = None,
    cause: str = CAUSE_INTERNAL,
    follow_ups: bool = True,
) -> None:
    """End ``deployment`` (locked) with ``status``: call off what waits (an instance still under way
    fails with ``cause``), record the outcome (``error_code`` and ``error_message`` as
    ``errorInformation``; ``status_messages``, when given, as ``deploymentStatusMessages``), then carry
    out what follows from it unless ``follow_ups`` is False (a last resort when those raise)."""
    previous = deployment.status
    # Read only when someone listens: most deployments end with nothing under way and nobody told.
    running = notifying.targets_in_progress(session, deployment, settings)
    _call_off_waiting_work(session, deployment.id, cause, now)
    notifying.instances_changed_state(
        session,
        deployment,
        [(t, TargetStatus.IN_PROGRESS, TargetStatus.FAILED) for t in running],
        now,
        settings,
    )
    deployment.status = status
    deployment.complete_time = now
    deployment.updated_at = now
    if error_code is not None:
        deployment.error_code = error_code
        deployment.error_message = error_message
    if status_messages is not None:
        deployment.deployment_status_messages = list(status_messages)
    deployment.engine_due_at = None
    notifying.deployment_changed_state(session, deployment, previous, now, settings)
    if follow_ups:
        deployment_ended(session, deployment, now, settings)


def _call_off_waiting_work(session: Session, deployment_id: str, cause: str, now: float) -> None:
    session.execute(
        update(HostCommand)
        .where(HostCommand.deployment_id == deployment_id, HostCommand.status == HostCommandStatus.PENDING)
        .values(status=HostCommandStatus.FAILED, completed_at=now, updated_at=now)
    )
    session.execute(
        update(DeploymentTarget)
        .where(
            DeploymentTarget.deployment_id == deployment_id, DeploymentTarget.status == TargetStatus.PENDING
        )
        .values(status=TargetStatus.SKIPPED, last_updated_at=now)
    )
    session.execute(
        update(DeploymentTarget)
        .where(
            DeploymentTarget.deployment_id == deployment_id,
            # Ready: a blue/green replacement waiting for the reroute the ending deployment will not do
            DeploymentTarget.status.in_((TargetStatus.IN_PROGRESS, TargetStatus.READY)),
        )
        .values(status=TargetStatus.FAILED, failure_cause=cause, last_updated_at=now)
    )
    session.execute(
        update(LifecycleEventRecord)
        .where(
            LifecycleEventRecord.status == LifecycleEventStatus.PENDING,
            LifecycleEventRecord.deployment_target_id.in_(
                select(DeploymentTarget.id).where(DeploymentTarget.deployment_id == deployment_id)
            ),
        )
        .values(status=LifecycleEventStatus.SKIPPED)
    )
    running = select(HostCommand.id).where(
        HostCommand.deployment_id == deployment_id, HostCommand.status == HostCommandStatus.IN_PROGRESS
    )
    session.execute(
        delete(Timer).where(
            Timer.deployment_id == deployment_id,
            or_(Timer.host_command_id.is_(None), Timer.host_command_id.not_in(running)),
        )
    )


def deployment_ended(session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
    """``deployment``'s status has just become final: carry out what follows from it."""
    group = (
        session.get(DeploymentGroup, deployment.deployment_group_id)
        if deployment.deployment_group_id
        else None
    )
    if group is None:
        return
    before = last_successful_deployment(session, group.id, excluding=deployment.id)
    record_deployment_end(session, deployment, before.revision_id if before else None, now)
    started = rollback.roll_back(session, deployment, group, before, now)
    if started is not None:
        notifying.deployment_rolled_back(session, deployment, now, settings)
    new_instances.after_deployment(session, deployment, group, started is not None, now, settings)
