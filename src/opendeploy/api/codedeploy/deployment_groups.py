"""CreateDeploymentGroup, GetDeploymentGroup, UpdateDeploymentGroup, DeleteDeploymentGroup,
ListDeploymentGroups, BatchGetDeploymentGroups.

A deployment group belongs to one application and takes its compute platform (guide L16013–16058).
Its last attempted and last successful deployments, and its target revision (the revision of the
last successful deployment, guide L14362–14386), are read from the deployments themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError

from opendeploy import engine
from opendeploy.api.codedeploy import deployment_group_settings as group_settings
from opendeploy.api.codedeploy.lookups import (
    application_by_name,
    deployment_config_by_name,
    deployment_group_by_name,
)
from opendeploy.api.codedeploy.registry import OperationContext, operation
from opendeploy.api.codedeploy.resource_tags import apply_tags
from opendeploy.api.errors import ApiError
from opendeploy.api.pagination import keyset_page
from opendeploy.domain import deployment_config as configs
from opendeploy.domain.ids import new_uuid
from opendeploy.domain.statuses import DeploymentStatus
from opendeploy.store.models import Application, Deployment, DeploymentGroup, Revision
from opendeploy.store.tags import TagKind, delete_tags


def _already_exists(application: Application, name: str) -> ApiError:
    return ApiError(
        "DeploymentGroupAlreadyExistsException",
        f"Deployment group {name} already exists in application {application.name}",
    )


def _requested_settings(params: dict[str, Any]) -> dict[str, Any]:
    return {member: params[member] for member in group_settings.SETTING_COLUMNS if member in params}


def _stored_settings(group: DeploymentGroup) -> dict[str, Any]:
    settings = {}
    for member, column in group_settings.SETTING_COLUMNS.items():
        value = getattr(group, column)
        if value is not None:
            settings[member] = value
    return settings


def _checked_settings(
    ctx: OperationContext,
    application: Application,
    settings: dict[str, Any],
    given: dict[str, Any],
    *,
    exclude_group_id: str | None = None,
) -> dict[str, Any]:
    platform = application.compute_platform
    settings = group_settings.with_defaults(settings, platform)
    settings.setdefault("deploymentConfigName", configs.default_config_name(platform))
    config = deployment_config_by_name(ctx, settings["deploymentConfigName"])
    group_settings.check_settings(
        settings, platform=platform, config=config, given=given, quotas=ctx.settings.quotas
    )
    if platform == configs.ComputePlatform.ECS:
        _check_ecs_service_unused(ctx, settings["ecsServices"][0], exclude_group_id)
    return settings


def _check_ecs_service_unused(
    ctx: OperationContext, service: dict[str, Any], exclude_group_id: str | None
) -> None:
    """One deployment group per ECS service (guide quotas table)."""
    stmt = select(DeploymentGroup).where(DeploymentGroup.ecs_services.is_not(None))
    for other in ctx.session.scalars(stmt):
        if other.id == exclude_group_id:
            continue
        for used in other.ecs_services or []:
            if (used.get("clusterName"), used.get("serviceName")) == (
                service["clusterName"],
                service["serviceName"],
            ):
                raise ApiError(
                    "ECSServiceMappingLimitExceededException",
                    f"ECS service {service['clusterName']}:{service['serviceName']} already belongs to "
                    f"deployment group {other.name}",
                )


def _apply(group: DeploymentGroup, settings: dict[str, Any]) -> None:
    for member, column in group_settings.SETTING_COLUMNS.items():
        setattr(group, column, settings.get(member))


@operation("CreateDeploymentGroup")
def create_deployment_group(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    session = ctx.session
    application = application_by_name(ctx, params["applicationName"])
    name = params["deploymentGroupName"]
    given = _requested_settings(params)
    settings = _checked_settings(ctx, application, given, given)
    if session.scalar(
        select(exists().where(DeploymentGroup.application_id == application.id, DeploymentGroup.name == name))
    ):
        raise _already_exists(application, name)
    limit = ctx.settings.quotas.deployment_groups_per_application
    count = session.scalar(
        select(func.count())
        .select_from(DeploymentGroup)
        .where(DeploymentGroup.application_id == application.id)
    )
    if count >= limit:
        raise ApiError(
            "DeploymentGroupLimitExceededException",
            f"Application {application.name} already has the maximum of {limit} deployment groups",
        )
    group = DeploymentGroup(
        id=new_uuid(), application_id=application.id, name=name, create_time=ctx.now, update_time=ctx.now
    )
    _apply(group, settings)
    try:
        with session.begin_nested():  # a concurrent create of the same name loses cleanly
            session.add(group)
    except IntegrityError:
        raise _already_exists(application, name) from None
    if params.get("tags"):
        apply_tags(ctx, TagKind.DEPLOYMENT_GROUP, group.id, params["tags"], application_id=application.id)
    engine.triggers_changed(
        session, None, group.trigger_configurations, application.name, group.name, ctx.now, ctx.settings
    )
    return {"deploymentGroupId": group.id}


@operation("UpdateDeploymentGroup")
def update_deployment_group(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    """Members given replace the group's; members left out are kept; an empty list clears (guide
    L21074–21075). Giving tag filters replaces a tag set of the same kind and the other way round."""
    session = ctx.session
    application = application_by_name(ctx, params["applicationName"])
    group = deployment_group_by_name(ctx, application, params["currentDeploymentGroupName"], for_update=True)
    given = _requested_settings(params)
    settings = _stored_settings(group)
    for filters, tag_set, list_member in (
        ("ec2TagFilters", "ec2TagSet", "ec2TagSetList"),
        ("onPremisesInstanceTagFilters", "onPremisesTagSet", "onPremisesTagSetList"),
    ):
        if given.get(filters) and tag_set not in given:
            settings.pop(tag_set, None)
        if (given.get(tag_set) or {}).get(list_member) and filters not in given:
            settings.pop(filters, None)
    settings.update(given)
    settings = _checked_settings(ctx, application, settings, given, exclude_group_id=group.id)
    triggers_before = list(group.trigger_configurations or [])
    new_name = params.get("newDeploymentGroupName")
    if new_name and new_name != group.name:
        if session.scalar(
            select(
                exists().where(
                    DeploymentGroup.application_id == application.id, DeploymentGroup.name == new_name
                )
            )
        ):
            raise _already_exists(application, new_name)
        group.name = new_name
    _apply(group, settings)
    group.update_time = ctx.now
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise _already_exists(application, new_name or group.name) from None
    engine.triggers_changed(
        session,
        triggers_before,
        group.trigger_configurations,
        application.name,
        group.name,
        ctx.now,
        ctx.settings,
    )
    # opendeploy installs no Auto Scaling lifecycle hooks, so none is ever left behind.
    return {"hooksNotCleanedUp": []}


@operation("DeleteDeploymentGroup")
def delete_deployment_group(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    """Delete the group and all its deployment details; instances are left as they are (guide
    L17160–17209). Deleting a group (or in an application) that does not exist succeeds: the model
    lists no does-not-exist error for this operation."""
    session = ctx.session
    application = session.scalar(select(Application).where(Application.name == params["applicationName"]))
    if application is not None:
        group = session.scalar(
            select(DeploymentGroup).where(
                DeploymentGroup.application_id == application.id,
                DeploymentGroup.name == params["deploymentGroupName"],
            )
        )
        if group is not None:
            delete_tags(session, TagKind.DEPLOYMENT_GROUP, group.id)
            session.delete(group)  # deployments, targets, events, commands, timers go by cascade
            session.flush()
    return {"hooksNotCleanedUp": []}


@operation("GetDeploymentGroup")
def get_deployment_group(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    application = application_by_name(ctx, params["applicationName"])
    group = deployment_group_by_name(ctx, application, params["deploymentGroupName"])
    return {"deploymentGroupInfo": deployment_group_infos(ctx, application, [group])[0]}


@operation("ListDeploymentGroups")
def list_deployment_groups(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    application = application_by_name(ctx, params["applicationName"])
    stmt = select(DeploymentGroup.name).where(DeploymentGroup.application_id == application.id)
    names, next_token = keyset_page(ctx, params, stmt, [DeploymentGroup.name])
    response: dict[str, Any] = {"applicationName": application.name, "deploymentGroups": names}
    if next_token:
        response["nextToken"] = next_token
    return response


@operation("BatchGetDeploymentGroups")
def batch_get_deployment_groups(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    application = application_by_name(ctx, params["applicationName"])
    names: list[str] = params["deploymentGroupNames"]
    limit = ctx.settings.quotas.batch_get_items
    if len(names) > limit:
        raise ApiError("BatchLimitExceededException", f"At most {limit} deployment group names per call")
    found = {
        group.name: group
        for group in ctx.session.scalars(
            select(DeploymentGroup).where(
                DeploymentGroup.application_id == application.id, DeploymentGroup.name.in_(set(names))
            )
        )
    }
    ordered = [found[name] for name in dict.fromkeys(names) if name in found]
    response: dict[str, Any] = {"deploymentGroupsInfo": deployment_group_infos(ctx, application, ordered)}
    missing = [name for name in dict.fromkeys(names) if name not in found]
    if missing:
        response["errorMessage"] = f"Deployment groups not found: {', '.join(missing)}"
    return response


# --- DeploymentGroupInfo ---------------------------------------------------------------------------


def _last_deployment_info(deployment: Deployment | None) -> dict[str, Any] | None:
    if deployment is None:
        return None
    info: dict[str, Any] = {
        "deploymentId": deployment.id,
        "status": deployment.status,
        "createTime": deployment.create_time,
    }
    if deployment.complete_time is not None:
        info["endTime"] = deployment.complete_time
    return info


def last_successful_deployments(ctx: OperationContext, group_ids: Iterable[str]) -> dict[str, Deployment]:
    """Each group's most recently completed successful deployment."""
    ids = list(group_ids)
    if not ids:
        return {}
    latest = (
        select(Deployment.deployment_group_id, func.max(Deployment.complete_time).label("complete_time"))
        .where(Deployment.deployment_group_id.in_(ids), Deployment.status == DeploymentStatus.SUCCEEDED)
        .group_by(Deployment.deployment_group_id)
        .subquery()
    )
    stmt = (
        select(Deployment)
        .join(
            latest,
            (Deployment.deployment_group_id == latest.c.deployment_group_id)
            & (Deployment.complete_time == latest.c.complete_time),
        )
        .where(Deployment.status == DeploymentStatus.SUCCEEDED)
    )
    return {d.deployment_group_id: d for d in ctx.session.scalars(stmt) if d.deployment_group_id}


def last_attempted_deployments(ctx: OperationContext, group_ids: Iterable[str]) -> dict[str, Deployment]:
    """Each group's most recently created deployment."""
    ids = list(group_ids)
    if not ids:
        return {}
    latest = (
        select(Deployment.deployment_group_id, func.max(Deployment.create_time).label("create_time"))
        .where(Deployment.deployment_group_id.in_(ids))
        .group_by(Deployment.deployment_group_id)
        .subquery()
    )
    stmt = select(Deployment).join(
        latest,
        (Deployment.deployment_group_id == latest.c.deployment_group_id)
        & (Deployment.create_time == latest.c.create_time),
    )
    return {d.deployment_group_id: d for d in ctx.session.scalars(stmt) if d.deployment_group_id}


def deployment_group_infos(
    ctx: OperationContext, application: Application, groups: Sequence[DeploymentGroup]
) -> list[dict[str, Any]]:
    ids = [group.id for group in groups]
    successful = last_successful_deployments(ctx, ids)
    attempted = last_attempted_deployments(ctx, ids)
    revision_ids = {d.revision_id for d in successful.values() if d.revision_id}
    revisions = (
        {r.id: r for r in ctx.session.scalars(select(Revision).where(Revision.id.in_(revision_ids)))}
        if revision_ids
        else {}
    )
    infos = []
    for group in groups:
        info: dict[str, Any] = {
            "applicationName": application.name,
            "deploymentGroupId": group.id,
            "deploymentGroupName": group.name,
            "deploymentConfigName": group.deployment_config_name,
            "ec2TagFilters": group.ec2_tag_filters or [],
            "onPremisesInstanceTagFilters": group.on_premises_instance_tag_filters or [],
            "autoScalingGroups": [{"name": name} for name in group.auto_scaling_groups or []],
            "triggerConfigurations": group.trigger_configurations or [],
            "alarmConfiguration": group.alarm_configuration
            or {"enabled": False, "ignorePollAlarmFailure": False, "alarms": []},
            "deploymentStyle": group.deployment_style,
            "outdatedInstancesStrategy": group.outdated_instances_strategy,
            "computePlatform": application.compute_platform,
            "terminationHookEnabled": group.termination_hook_enabled,
        }
        optional = {
            "serviceRoleArn": group.service_role_arn,
            "autoRollbackConfiguration": group.auto_rollback_configuration,
            "blueGreenDeploymentConfiguration": group.blue_green_deployment_configuration,
            "loadBalancerInfo": group.load_balancer_info,
            "ec2TagSet": group.ec2_tag_set,
            "onPremisesTagSet": group.on_premises_tag_set,
            "ecsServices": group.ecs_services,
            "ec2DeploymentOptions": group.ec2_deployment_options,
            "lastSuccessfulDeployment": _last_deployment_info(successful.get(group.id)),
            "lastAttemptedDeployment": _last_deployment_info(attempted.get(group.id)),
        }
        last = successful.get(group.id)
        if last is not None and last.revision_id in revisions:
            optional["targetRevision"] = revisions[last.revision_id].location
        info.update({key: value for key, value in optional.items() if value is not None})
        infos.append(info)
    return infos
