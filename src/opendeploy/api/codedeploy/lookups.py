"""Finding the resources a request names — an application, a deployment group, a deployment, a
deployment configuration — or raising the exception AWS names when it does not exist."""

from __future__ import annotations

from sqlalchemy import select

from opendeploy.api.codedeploy.registry import OperationContext
from opendeploy.api.errors import ApiError
from opendeploy.domain import deployment_config as configs
from opendeploy.domain.ids import is_deployment_id
from opendeploy.store import deployment_configs
from opendeploy.store.models import Application, Deployment, DeploymentGroup


def application_by_name(ctx: OperationContext, name: str) -> Application:
    application = ctx.session.scalar(select(Application).where(Application.name == name))
    if application is None:
        raise ApiError("ApplicationDoesNotExistException", f"No application found for name: {name}")
    return application


def deployment_group_by_name(
    ctx: OperationContext, application: Application, name: str, *, for_update: bool = False
) -> DeploymentGroup:
    """The application's group ``name``; ``for_update`` locks its row (PostgreSQL) for this transaction."""
    stmt = select(DeploymentGroup).where(
        DeploymentGroup.application_id == application.id, DeploymentGroup.name == name
    )
    group = ctx.session.scalar(stmt.with_for_update() if for_update else stmt)
    if group is None:
        raise ApiError(
            "DeploymentGroupDoesNotExistException",
            f"No Deployment Group found for name: {name} in application {application.name}",
        )
    return group


def check_deployment_id(deployment_id: str | None) -> str:
    if not deployment_id:
        raise ApiError("DeploymentIdRequiredException", "Deployment Id is required")
    if not is_deployment_id(deployment_id):
        raise ApiError(
            "InvalidDeploymentIdException",
            f"Specified DeploymentId is not in the valid format: {deployment_id} "
            "(expected d- followed by 9 upper-case letters and digits)",
        )
    return deployment_id


def deployment_by_id(
    ctx: OperationContext, deployment_id: str | None, *, for_update: bool = False
) -> Deployment:
    deployment_id = check_deployment_id(deployment_id)
    stmt = select(Deployment).where(Deployment.id == deployment_id)
    deployment = ctx.session.scalar(stmt.with_for_update() if for_update else stmt)
    if deployment is None:
        raise ApiError("DeploymentDoesNotExistException", f"Deployment {deployment_id} does not exist")
    return deployment


def find_deployment_config(ctx: OperationContext, name: str) -> configs.DeploymentConfig | None:
    """A predefined configuration or a custom one, or None."""
    return deployment_configs.find_deployment_config(ctx.session, name)


def deployment_config_by_name(ctx: OperationContext, name: str) -> configs.DeploymentConfig:
    config = find_deployment_config(ctx, name)
    if config is None:
        raise ApiError(
            "DeploymentConfigDoesNotExistException", f"No deployment configuration found for name: {name}"
        )
    return config


def check_config_platform(config: configs.DeploymentConfig, platform: str) -> None:
    """A deployment configuration serves one compute platform; refuse it for another."""
    if config.compute_platform != platform:
        raise ApiError(
            "InvalidDeploymentConfigNameException",
            f"Deployment configuration {config.name} is for the {config.compute_platform} compute "
            f"platform; this application's compute platform is {platform}",
        )
