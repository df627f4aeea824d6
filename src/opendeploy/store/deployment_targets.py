"""Deployment targets repository: what the engine calls to put a deployment's targets on record.

``add_target`` creates one target (an instance, a Lambda function, an ECS service) with its lifecycle
events, all ``Pending``, in the order given; the engine then moves them along. The API reads them back
for GetDeploymentTarget and its relatives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from opendeploy.domain.statuses import DeploymentTargetType, LifecycleEventStatus, TargetStatus
from opendeploy.store.models import DeploymentTarget, LifecycleEventRecord


def add_target(
    session: Session,
    *,
    deployment_id: str,
    target_id: str,
    lifecycle_event_names: Sequence[str],
    now: float,
    target_type: str = DeploymentTargetType.INSTANCE,
    target_arn: str | None = None,
    instance_label: str | None = None,
    details: dict[str, Any] | None = None,
) -> DeploymentTarget:
    target = DeploymentTarget(
        deployment_id=deployment_id,
        target_id=target_id,
        target_type=str(target_type),
        target_arn=target_arn,
        status=TargetStatus.PENDING,
        instance_label=instance_label,
        last_updated_at=now,
        details=details,
    )
    session.add(target)
    session.flush()  # the events need the target's id
    for position, name in enumerate(lifecycle_event_names):
        session.add(
            LifecycleEventRecord(
                deployment_target_id=target.id,
                position=position,
                name=name,
                status=LifecycleEventStatus.PENDING,
            )
        )
    session.flush()
    return target
