"""CreateDeploymentConfig, GetDeploymentConfig, ListDeploymentConfigs, DeleteDeploymentConfig.

The predefined configurations (``CodeDeployDefault.*``) are constants: listed, readable, never created,
changed or deleted. Custom ones are rows; one still named by a deployment group or by a deployment
that has not finished cannot be deleted (guide L15145–15160).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError

from opendeploy.api.codedeploy.lookups import find_deployment_config
from opendeploy.api.codedeploy.registry import OperationContext, operation
from opendeploy.api.errors import ApiError
from opendeploy.api.pagination import offset_page
from opendeploy.domain import deployment_config as configs
from opendeploy.domain.ids import new_uuid
from opendeploy.domain.statuses import ACTIVE_DEPLOYMENT_STATUSES
from opendeploy.store.models import Deployment, DeploymentConfigRecord, DeploymentGroup
from opendeploy.store.tags import TagKind, delete_tags

_PROBLEM_EXCEPTIONS = {
    configs.ConfigProblem.NAME: "InvalidDeploymentConfigNameException",
    configs.ConfigProblem.COMPUTE_PLATFORM: "InvalidComputePlatformException",
    configs.ConfigProblem.MINIMUM_HEALTHY_HOSTS: "InvalidMinimumHealthyHostValueException",
    configs.ConfigProblem.TRAFFIC_ROUTING: "InvalidTrafficRoutingConfigurationException",
    configs.ConfigProblem.ZONAL_CONFIG: "InvalidZonalDeploymentConfigurationException",
}


def _already_exists(name: str) -> ApiError:
    return ApiError(
        "DeploymentConfigAlreadyExistsException", f"Deployment configuration already exists: {name}"
    )


@operation("CreateDeploymentConfig")
def create_deployment_config(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["deploymentConfigName"]
    if configs.is_predefined(name):
        raise _already_exists(name)
    try:
        config = configs.config_from_wire(
            name,
            compute_platform=params.get("computePlatform"),
            minimum_healthy_hosts=params.get("minimumHealthyHosts"),
            traffic_routing_config=params.get("trafficRoutingConfig"),
            zonal_config=params.get("zonalConfig"),
        )
    except configs.InvalidDeploymentConfig as problem:
        raise ApiError(_PROBLEM_EXCEPTIONS[problem.problem], problem.message) from None
    session = ctx.session
    if session.scalar(select(exists().where(DeploymentConfigRecord.name == name))):
        raise _already_exists(name)
    limit = ctx.settings.quotas.custom_deployment_configs_per_account
    if session.scalar(select(func.count()).select_from(DeploymentConfigRecord)) >= limit:
        raise ApiError(
            "DeploymentConfigLimitExceededException",
            f"The limit of {limit} custom deployment configurations has been reached",
        )
    wire = configs.config_to_wire(config)
    record = DeploymentConfigRecord(
        id=new_uuid(),
        name=name,
        compute_platform=str(config.compute_platform),
        minimum_healthy_hosts=wire.get("minimumHealthyHosts"),
        traffic_routing_config=wire.get("trafficRoutingConfig"),
        zonal_config=wire.get("zonalConfig"),
        create_time=ctx.now,
    )
    try:
        with session.begin_nested():  # a concurrent create of the same name loses cleanly
            session.add(record)
    except IntegrityError:
        raise _already_exists(name) from None
    return {"deploymentConfigId": record.id}


@operation("GetDeploymentConfig")
def get_deployment_config(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["deploymentConfigName"]
    config = find_deployment_config(ctx, name)
    if config is None:
        raise ApiError(
            "DeploymentConfigDoesNotExistException", f"No deployment configuration found for name: {name}"
        )
    if config.predefined:
        config_id, create_time = configs.predefined_config_id(name), configs.PREDEFINED_CREATE_TIME
    else:
        record = ctx.session.scalars(
            select(DeploymentConfigRecord).where(DeploymentConfigRecord.name == name)
        ).one()
        config_id, create_time = record.id, record.create_time
    info = {"deploymentConfigId": config_id, "createTime": create_time, **configs.config_to_wire(config)}
    return {"deploymentConfigInfo": info}


@operation("ListDeploymentConfigs")
def list_deployment_configs(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    custom = ctx.session.scalars(select(DeploymentConfigRecord.name)).all()
    names = sorted([*configs.PREDEFINED_CONFIGS, *custom])
    page, next_token = offset_page(ctx, params, names)
    response: dict[str, Any] = {"deploymentConfigsList": page}
    if next_token:
        response["nextToken"] = next_token
    return response


@operation("DeleteDeploymentConfig")
def delete_deployment_config(ctx: OperationContext, params: dict[str, Any]) -> None:
    """Delete a custom configuration. Deleting one that does not exist succeeds (the model lists no
    does-not-exist error for this operation)."""
    name = params["deploymentConfigName"]
    if configs.is_predefined(name):
        raise ApiError(
            "InvalidOperationException",
            f"{name} is a predefined deployment configuration and cannot be deleted",
        )
    session = ctx.session
    record = session.scalar(
        select(DeploymentConfigRecord).where(DeploymentConfigRecord.name == name).with_for_update()
    )
    if record is None:
        return None
    group_names = session.scalars(
        select(DeploymentGroup.name).where(DeploymentGroup.deployment_config_name == name).limit(5)
    ).all()
    if group_names:
        raise ApiError(
            "DeploymentConfigInUseException",
            f"Deployment configuration {name} is in use by deployment group(s): {', '.join(group_names)}",
        )
    active = session.scalars(
        select(Deployment.id)
        .where(
            Deployment.deployment_config_name == name,
            Deployment.status.in_([str(s) for s in ACTIVE_DEPLOYMENT_STATUSES]),
        )
        .limit(5)
    ).all()
    if active:
        raise ApiError(
            "DeploymentConfigInUseException",
            f"Deployment configuration {name} is in use by deployment(s) still running: {', '.join(active)}",
        )
    delete_tags(session, TagKind.DEPLOYMENT_CONFIG, record.id)
    session.delete(record)
    return None
