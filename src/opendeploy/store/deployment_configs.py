"""Deployment configurations by name: the predefined ones (``domain.deployment_config``) or a custom one
on record (CreateDeploymentConfig). The one lookup the API and the engine share."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from opendeploy.domain import deployment_config as configs
from opendeploy.store.models import DeploymentConfigRecord


def find_deployment_config(session: Session, name: str) -> configs.DeploymentConfig | None:
    """The predefined configuration called ``name``, or the stored custom one, or None."""
    predefined = configs.PREDEFINED_CONFIGS.get(name)
    if predefined is not None:
        return predefined
    record = session.scalar(select(DeploymentConfigRecord).where(DeploymentConfigRecord.name == name))
    if record is None:
        return None
    return configs.config_from_stored(
        record.name,
        record.compute_platform,
        record.minimum_healthy_hosts,
        record.traffic_routing_config,
        record.zonal_config,
    )
