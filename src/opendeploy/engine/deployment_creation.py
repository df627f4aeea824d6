"""Creating a deployment: the one constructor for CreateDeployment and the deployments the engine starts
itself, and the group facts they are made from.

CodeDeploy starts deployments of its own (the API's ``creator``): a rollback (``codeDeployRollback``)
redeploys the last successful revision after a deployment failed or was stopped; a deployment to
instances that appeared in a group (``autoscaling``, as for Auto Scaling launches) or that a deployment
missed because they joined while it ran (``CodeDeployAutoUpdate``) brings them to the group's revision.
Each is an ordinary deployment, made here like a user's (the API validates a request, then calls
``create_deployment``): recorded ``Created`` with the group's settings of the moment, and started by the
engine once the transaction commits, so the one-active-deployment-per-group rule holds for all of them
(when the group is busy, none is created).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from opendeploy.domain.ids import new_deployment_id
from opendeploy.domain.statuses import ACTIVE_DEPLOYMENT_STATUSES, DeploymentCreator, DeploymentStatus
from opendeploy.engine.wakeups import deployment_changed
from opendeploy.store.models import Deployment, DeploymentGroup, Revision

_ACTIVE = [str(status) for status in ACTIVE_DEPLOYMENT_STATUSES]


def last_successful_deployment(
    session: Session, group_id: str, *, excluding: str | None = None
) -> Deployment | None:
    """The group's most recently completed successful deployment (its revision is the group's)."""
    stmt = select(Deployment).where(
        Deployment.deployment_group_id == group_id, Deployment.status == DeploymentStatus.SUCCEEDED
    )
    if excluding is not None:
        stmt = stmt.where(Deployment.id != excluding)
    return session.scalar(stmt.order_by(Deployment.complete_time.desc(), Deployment.id.desc()).limit(1))


def active_deployment_id(session: Session, group_id: str) -> str | None:
    """The group's active deployment, if it has one (at most one: a partial unique index)."""
    return session.scalar(
        select(Deployment.id).where(
            Deployment.deployment_group_id == group_id, Deployment.status.in_(_ACTIVE)
        )
    )


def create_deployment(
    session: Session,
    group: DeploymentGroup,
    *,
    revision_id: str,
    creator: DeploymentCreator,
    compute_platform: str,
    config_name: str,
    now: float,
    file_exists_behavior: str = "DISALLOW",
    instance_names: Sequence[str] | None = None,
    **fields: Any,
) -> Deployment | None:
    """A new ``Created`` deployment of ``revision_id`` to ``group`` with the group's style, load balancer
    and blue/green settings (the engine starts it once this commits), or None when the group already has
    an active deployment. ``instance_names`` limits it to those instances; ``fields`` set other columns
    (a request's options, ``auto_rollback_configuration`` — the group's unless given)."""
    previous = last_successful_deployment(session, group.id)
    deployment_id = new_deployment_id()
    while session.get(Deployment, deployment_id) is not None:  # 36^9 ids: a clash is near impossible
        deployment_id = new_deployment_id()
    values: dict[str, Any] = {
        "ignore_application_stop_failures": False,
        "update_outdated_instances_only": False,
        "auto_rollback_configuration": group.auto_rollback_configuration,
        **fields,
    }
    deployment = Deployment(
        id=deployment_id,
        application_id=group.application_id,
        deployment_group_id=group.id,
        revision_id=revision_id,
        previous_revision_id=previous.revision_id if previous else None,
        status=DeploymentStatus.CREATED,
        creator=str(creator),
        compute_platform=compute_platform,
        deployment_config_name=config_name,
        file_exists_behavior=file_exists_behavior,
        deployment_style=group.deployment_style,
        blue_green_deployment_configuration=group.blue_green_deployment_configuration,
        load_balancer_info=group.load_balancer_info,
        create_time=now,
        updated_at=now,
        instance_termination_wait_time_started=False,
        instance_names=sorted(instance_names) if instance_names is not None else None,
        **values,
    )
    try:
        with session.begin_nested():  # the partial unique index has the last word on "one at a time"
            session.add(deployment)
    except IntegrityError:
        return None
    revision = session.get(Revision, revision_id)
    if revision is not None:
        if revision.first_used_time is None:
            revision.first_used_time = now
        revision.last_used_time = now
    deployment_changed(session, deployment.id, now)  # the engine starts it once this commits
    return deployment
