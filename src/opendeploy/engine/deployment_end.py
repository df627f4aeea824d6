"""What happens when a deployment ends (Succeeded, Failed or Stopped), in the transaction that ends it.

1. Its instances' health moves on (``instance_health_records``; guide §2.6).
2. A failure or a stop that asks for it starts the automatic rollback (``rollback``).
3. Instances that joined the group while it ran get the group's revision (``new_instances``).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from opendeploy.engine import new_instances, rollback
from opendeploy.engine.automatic_deployments import last_successful_deployment
from opendeploy.engine.instance_health_records import record_deployment_end
from opendeploy.settings import Settings
from opendeploy.store.models import Deployment, DeploymentGroup


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
    new_instances.after_deployment(session, deployment, group, started is not None, now, settings)
