"""Automatic rollback: when a deployment fails, or is stopped on request, redeploy the group's last
successful revision as a new deployment (guide: "Redeploy and roll back", L19370–19496).

- Whether to roll back: the deployment's ``autoRollbackConfiguration`` (its own override, or the group's
  when it was created) names ``DEPLOYMENT_FAILURE`` for a failure and ``DEPLOYMENT_STOP_ON_REQUEST`` for
  a stop; StopDeployment's ``autoRollbackEnabled``, when given, decides for that stop either way. A
  rollback is never rolled back itself, nor is a deployment of the group's revision to new instances.
- What: a new deployment (creator ``codeDeployRollback``) of the revision of the group's last successful
  deployment, with that deployment's ``fileExistsBehavior`` (L19494–19496) and the failed deployment's
  configuration — never zone by zone (L15007–15011: the engine deploys a rollback without the zonal
  configuration).
- ``rollbackInfo`` as AWS fills it: the failed deployment gets ``rollbackDeploymentId`` and the message
  "Deployment <failed> terminated. Automatic rollback is triggered with a DeploymentId <rollback>.";
  the rollback gets ``rollbackTriggeringDeploymentId`` and "Deployment <rollback> is triggered to roll
  back deployment <failed>."
- No rollback, with a ``rollbackMessage`` saying why, when the group has no earlier successful revision,
  or when the deployment ended before any lifecycle event ran on any instance (nothing was changed, and
  a rollback would meet the same missing agents or invalid health constraints).
"""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from opendeploy.domain.deployment_style import RollbackEvent
from opendeploy.domain.statuses import DeploymentCreator, DeploymentStatus, ErrorCode
from opendeploy.engine.deployment_creation import create_deployment
from opendeploy.store.models import Deployment, DeploymentGroup, DeploymentTarget, LifecycleEventRecord

# A failed rollback is not rolled back again; nor is a deployment of the group's own revision to new
# instances (engine.new_instances), which a rollback would only repeat across the whole group.
_NOT_ROLLED_BACK = frozenset(
    {
        DeploymentCreator.CODEDEPLOY_ROLLBACK,
        DeploymentCreator.AUTOSCALING,
        DeploymentCreator.CODEDEPLOY_AUTO_UPDATE,
    }
)


def rollback_wanted(deployment: Deployment) -> bool:
    """Whether ``deployment``, which has just ended, asks for an automatic rollback."""
    if deployment.creator in _NOT_ROLLED_BACK:
        return False
    if deployment.status == DeploymentStatus.FAILED:
        return deployment.auto_rollback.rolls_back_on(RollbackEvent.DEPLOYMENT_FAILURE)
    if deployment.status == DeploymentStatus.STOPPED and deployment.stop_requested_at is not None:
        if deployment.stop_error_code == ErrorCode.ALARM_ACTIVE:
            return deployment.auto_rollback.rolls_back_on(RollbackEvent.DEPLOYMENT_STOP_ON_ALARM)
        if deployment.stop_auto_rollback_enabled is not None:
            return deployment.stop_auto_rollback_enabled
        return deployment.auto_rollback.rolls_back_on(RollbackEvent.DEPLOYMENT_STOP_ON_REQUEST)
    return False


def _any_event_ran(session: Session, deployment_id: str) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    DeploymentTarget.deployment_id == deployment_id,
                    LifecycleEventRecord.deployment_target_id == DeploymentTarget.id,
                    LifecycleEventRecord.start_time.is_not(None),
                )
            )
        )
    )


def roll_back(
    session: Session,
    deployment: Deployment,
    group: DeploymentGroup,
    last_successful: Deployment | None,
    now: float,
) -> Deployment | None:
    """Start the rollback of ``deployment`` (ended Failed or Stopped) if it asks for one; the rollback
    deployment, or None (with ``rollbackMessage`` saying why when one was asked for)."""
    if not rollback_wanted(deployment):
        return None
    if last_successful is None or last_successful.revision_id is None:
        deployment.rollback_message = (
            f"Deployment {deployment.id} terminated. Automatic rollback was not performed: deployment "
            f"group {group.name} has no earlier successful revision to roll back to."
        )
        return None
    if not _any_event_ran(session, deployment.id):
        deployment.rollback_message = (
            f"Deployment {deployment.id} terminated before any instance was deployed to. Automatic "
            "rollback was not performed: nothing was changed."
        )
        return None
    rollback = create_deployment(
        session,
        group,
        compute_platform=deployment.compute_platform,
        auto_rollback_configuration=deployment.auto_rollback_configuration,
        revision_id=last_successful.revision_id,
        creator=DeploymentCreator.CODEDEPLOY_ROLLBACK,
        config_name=deployment.deployment_config_name,
        file_exists_behavior=last_successful.file_exists_behavior,
        now=now,
        rollback_triggering_deployment_id=deployment.id,
    )
    if rollback is None:  # the group is busy: cannot happen while this deployment was its active one
        deployment.rollback_message = (
            f"Deployment {deployment.id} terminated. Automatic rollback was not performed: deployment "
            f"group {group.name} already has an active deployment."
        )
        return None
    rollback.rollback_message = (
        f"Deployment {rollback.id} is triggered to roll back deployment {deployment.id}."
    )
    deployment.rollback_deployment_id = rollback.id
    deployment.rollback_message = (
        f"Deployment {deployment.id} terminated. Automatic rollback is triggered with a DeploymentId "
        f"{rollback.id}."
    )
    return rollback
