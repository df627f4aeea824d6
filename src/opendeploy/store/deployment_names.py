"""The application and deployment group names of a deployment, read once per transaction.

Both sides of a request that names a deployment need them: authorization, because a deployment's
permissions are asked on its group's ARN (``api/authorization``), and the answer, because
``deploymentInfo`` carries both names. The first to ask reads them with one prepared query and keeps
them in the session (``Session.info``; ``Database.transaction`` makes a session per transaction), so the
second asks nothing. Only requests that rename nothing ask: a rename later in the same transaction
would not be seen.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from opendeploy.store.models.applications import Application
from opendeploy.store.models.deployment_groups import DeploymentGroup
from opendeploy.store.models.deployments import Deployment
from opendeploy.store.prepared import Prepared

_KEPT = "deployment_names"  # the key of this transaction's names in Session.info


class DeploymentNames(NamedTuple):
    application: str
    group: str


_NAMES_OF_DEPLOYMENT = Prepared(
    select(Application.name.label("application"), DeploymentGroup.name.label("group"))
    .select_from(Deployment)
    .join(Application, Application.id == Deployment.application_id)
    .join(DeploymentGroup, DeploymentGroup.id == Deployment.deployment_group_id)
    .where(Deployment.id == bindparam("deployment_id"))
)


def names_of_deployment(session: Session, deployment_id: str) -> DeploymentNames | None:
    """The names of the application and deployment group of ``deployment_id``; None when no such
    deployment exists, or it has no deployment group."""
    kept: dict[str, DeploymentNames | None] = session.info.setdefault(_KEPT, {})
    if deployment_id in kept:
        return kept[deployment_id]
    row = _NAMES_OF_DEPLOYMENT.first(session.connection(), {"deployment_id": deployment_id})
    names = None if row is None else DeploymentNames(row.application, row.group)
    kept[deployment_id] = names
    return names
