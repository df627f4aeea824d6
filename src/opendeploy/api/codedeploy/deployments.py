"""CreateDeployment, GetDeployment, BatchGetDeployments, ListDeployments, StopDeployment,
ContinueDeployment, SkipWaitTimeForInstanceTermination, DeleteResourcesByExternalId.

CreateDeployment validates every option; the engine's ``create_deployment`` (the one constructor, also
of the engine's own rollbacks and new-instance deployments) records it ``Created`` and the engine
carries it out. A deployment group runs one deployment at a time: a second CreateDeployment while one
is active is refused with ``DeploymentLimitExceededException`` (the only limit error the model lists
for CreateDeployment; the guide's quotas table: "Concurrent deployments per deployment group: 1 ...
prevents concurrent deployments of the same application to the same deployment group"). Stop and
continue requests are validated and recorded on the deployment, and wake the engine to act on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from opendeploy import engine
from opendeploy.api.codedeploy import deployment_group_settings as group_settings
from opendeploy.api.codedeploy.deployment_groups import last_successful_deployments
from opendeploy.api.codedeploy.lookups import (
    application_by_name,
    check_config_platform,
    check_deployment_id,
    deployment_by_id,
    deployment_config_by_name,
    deployment_group_by_name,
)
from opendeploy.api.codedeploy.registry import OperationContext, operation
from opendeploy.api.codedeploy.revisions import (
    check_description,
    normalized_location,
    register_revision,
)
from opendeploy.api.errors import ApiError
from opendeploy.api.pagination import keyset_page
from opendeploy.domain import deployment_config as configs
from opendeploy.domain.statuses import (
    ACTIVE_DEPLOYMENT_STATUSES,
    COMPLETED_DEPLOYMENT_STATUSES,
    NOT_STARTED_DEPLOYMENT_STATUSES,
    OVERVIEW_STATUSES,
    DeploymentCreator,
    DeploymentStatus,
    StopStatus,
)
from opendeploy.store.deployment_names import names_of_deployment
from opendeploy.store.models import (
    Application,
    Deployment,
    DeploymentGroup,
    DeploymentTarget,
    Revision,
)

_ACTIVE = [str(status) for status in ACTIVE_DEPLOYMENT_STATUSES]


# --- CreateDeployment ------------------------------------------------------------------------------


def _group_busy(group: DeploymentGroup, active_id: str | None) -> ApiError:
    return ApiError(
        "DeploymentLimitExceededException",
        f"The Deployment Group '{group.name}' already has an active Deployment '{active_id}'",
    )


def _check_target_instances(ctx: OperationContext, group: DeploymentGroup, targets: dict[str, Any]) -> None:
    """``targetInstances`` name the replacement environment of a blue/green deployment (guide
    L18853–18857); an in-place deployment takes none."""
    exception = "InvalidTargetInstancesException"
    if not group.style.blue_green:
        raise ApiError(
            exception, "targetInstances apply to blue/green deployments; this group deploys in place"
        )
    if targets.get("tagFilters") and (targets.get("ec2TagSet") or {}).get("ec2TagSetList"):
        raise ApiError(
            exception, "Specify either targetInstances.tagFilters or targetInstances.ec2TagSet, not both"
        )
    try:
        group_settings.check_tag_filters(
            targets.get("tagFilters") or [], member="targetInstances.tagFilters", exception=exception
        )
        group_settings.check_tag_set(
            targets.get("ec2TagSet"),
            member="targetInstances.ec2TagSet",
            list_member="ec2TagSetList",
            exception=exception,
        )
    except ApiError as problem:
        raise ApiError(exception, problem.message) from None
    groups = targets.get("autoScalingGroups") or []
    if len(groups) > ctx.settings.quotas.auto_scaling_groups_per_deployment_group:
        raise ApiError(exception, "targetInstances names too many Auto Scaling groups")


def _check_platform_options(params: dict[str, Any], platform: str) -> None:
    if platform == configs.ComputePlatform.SERVER:
        return
    if params.get("updateOutdatedInstancesOnly"):
        raise ApiError(
            "InvalidUpdateOutdatedInstancesOnlyValueException",
            f"updateOutdatedInstancesOnly applies to the Server compute platform, not {platform}",
        )
    if params.get("ignoreApplicationStopFailures"):
        raise ApiError(
            "InvalidIgnoreApplicationStopFailuresValueException",
            f"ignoreApplicationStopFailures applies to the Server compute platform, not {platform}",
        )
    for member in ("ec2DeploymentOptions", "fileExistsBehavior"):
        if params.get(member):
            raise ApiError(
                "InvalidInputException", f"{member} applies to the Server compute platform, not {platform}"
            )


def _revision_to_deploy(
    ctx: OperationContext, application: Application, group: DeploymentGroup, params: dict[str, Any]
) -> Revision:
    if params.get("deploymentMode") == "RESTART":
        # Restart the group's last successful revision without a new download (API model).
        if params.get("revision"):
            raise ApiError(
                "InvalidRevisionException",
                "A RESTART deployment takes no revision: it redeploys the last successful one",
            )
        if application.compute_platform != configs.ComputePlatform.SERVER or not group.style.in_place:
            raise ApiError(
                "InvalidComputePlatformException",
                "RESTART deployments are for EC2/On-Premises in-place deployment groups only",
            )
        last = last_successful_deployments(ctx, [group.id]).get(group.id)
        revision = ctx.session.get(Revision, last.revision_id) if last and last.revision_id else None
        if revision is None:
            raise ApiError(
                "RevisionDoesNotExistException",
                f"Deployment group {group.name} has no successful deployment whose revision could be "
                "restarted",
            )
        return revision
    normalized = normalized_location(application, params.get("revision"))
    return register_revision(ctx, application, normalized)


@operation("CreateDeployment")
def create_deployment(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    session = ctx.session
    application = application_by_name(ctx, params["applicationName"])
    platform = application.compute_platform
    group_name = params.get("deploymentGroupName")
    if not group_name:
        raise ApiError("DeploymentGroupNameRequiredException", "deploymentGroupName is required")
    # Lock the group's row (PostgreSQL) so concurrent creates in one group queue here.
    group = deployment_group_by_name(ctx, application, group_name, for_update=True)
    check_description(params.get("description"))
    _check_platform_options(params, platform)
    config_name = params.get("deploymentConfigName") or group.deployment_config_name
    config_name = config_name or configs.default_config_name(platform)
    config = deployment_config_by_name(ctx, config_name)
    check_config_platform(config, platform)
    if config.zonal_config is not None and group.style.blue_green:
        raise ApiError(
            "InvalidDeploymentConfigNameException",
            f"Deployment configuration {config.name} has a zonal configuration, which supports only in-place "
            "deployments; this group deploys blue/green",
        )
    if params.get("targetInstances"):
        _check_target_instances(ctx, group, params["targetInstances"])
    alarms = params.get("overrideAlarmConfiguration")
    group_settings.check_alarms(alarms, ctx.settings.quotas.alarms_per_deployment_group)
    rollback = params.get("autoRollbackConfiguration")
    if rollback is not None:
        group_settings.check_auto_rollback(
            rollback, alarms if alarms is not None else group.alarm_configuration
        )
    else:
        rollback = group.auto_rollback_configuration
    revision = _revision_to_deploy(ctx, application, group, params)

    active_id = engine.active_deployment_id(session, group.id)
    if active_id is not None:
        raise _group_busy(group, active_id)
    limit = ctx.settings.quotas.concurrent_deployments_per_account
    active_count = session.scalar(
        select(func.count()).select_from(Deployment).where(Deployment.status.in_(_ACTIVE))
    )
    if active_count >= limit:
        raise ApiError(
            "DeploymentLimitExceededException",
            f"The account already has the maximum of {limit} deployments in progress",
        )
    deployment = engine.create_deployment(
        session,
        group,
        revision_id=revision.id,
        creator=DeploymentCreator.USER,
        compute_platform=platform,
        config_name=config_name,
        now=ctx.now,
        file_exists_behavior=params.get("fileExistsBehavior") or "DISALLOW",
        description=params.get("description"),
        ignore_application_stop_failures=bool(params.get("ignoreApplicationStopFailures")),
        update_outdated_instances_only=bool(params.get("updateOutdatedInstancesOnly")),
        deployment_mode=params.get("deploymentMode"),
        target_instances=params.get("targetInstances"),
        auto_rollback_configuration=rollback,
        override_alarm_configuration=alarms,
        ec2_deployment_options=params.get("ec2DeploymentOptions"),
    )
    if deployment is None:  # another request made the group's deployment meanwhile
        raise _group_busy(group, engine.active_deployment_id(session, group.id))
    return {"deploymentId": deployment.id}


# --- DeploymentInfo --------------------------------------------------------------------------------


def deployment_overviews(ctx: OperationContext, deployment_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per deployment, how many of its targets are in each status."""
    overviews = {
        deployment_id: {str(status): 0 for status in OVERVIEW_STATUSES} for deployment_id in deployment_ids
    }
    if deployment_ids:
        rows = ctx.session.execute(
            select(DeploymentTarget.deployment_id, DeploymentTarget.status, func.count())
            .where(DeploymentTarget.deployment_id.in_(list(deployment_ids)))
            .group_by(DeploymentTarget.deployment_id, DeploymentTarget.status)
        )
        for deployment_id, status, count in rows:
            if status in overviews[deployment_id]:
                overviews[deployment_id][status] = count
    return overviews


def _names_by_id(
    session: Session, model: type[Application | DeploymentGroup], ids: set[str]
) -> dict[str, str]:
    if not ids:
        return {}
    return {key: name for key, name in session.execute(select(model.id, model.name).where(model.id.in_(ids)))}


def deployment_infos(ctx: OperationContext, deployments: Sequence[Deployment]) -> list[dict[str, Any]]:
    session = ctx.session
    application_ids = {d.application_id for d in deployments}
    group_ids = {d.deployment_group_id for d in deployments if d.deployment_group_id}
    revision_ids = {r for d in deployments for r in (d.revision_id, d.previous_revision_id) if r}
    names = names_of_deployment(session, deployments[0].id) if len(deployments) == 1 else None
    if names is not None:  # GetDeployment: read with (or already by) the request's authorization
        applications = {deployments[0].application_id: names.application}
        groups = {deployments[0].deployment_group_id or "": names.group}
    else:
        applications = _names_by_id(session, Application, application_ids)
        groups = _names_by_id(session, DeploymentGroup, group_ids)
    revisions = (
        {r.id: r.location for r in session.scalars(select(Revision).where(Revision.id.in_(revision_ids)))}
        if revision_ids
        else {}
    )
    overviews = deployment_overviews(ctx, [d.id for d in deployments])
    return [_deployment_info(d, applications, groups, revisions, overviews[d.id]) for d in deployments]


def _deployment_info(
    deployment: Deployment,
    applications: dict[str, str],
    groups: dict[str, str],
    revisions: dict[str, dict[str, Any]],
    overview: dict[str, int],
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "applicationName": applications.get(deployment.application_id),
        "deploymentGroupName": groups.get(deployment.deployment_group_id or ""),
        "deploymentConfigName": deployment.deployment_config_name,
        "deploymentId": deployment.id,
        "revision": revisions.get(deployment.revision_id or ""),
        "previousRevision": revisions.get(deployment.previous_revision_id or ""),
        "status": deployment.status,
        "createTime": deployment.create_time,
        "startTime": deployment.start_time,
        "completeTime": deployment.complete_time,
        "deploymentOverview": overview,
        "description": deployment.description,
        "creator": deployment.creator,
        "ignoreApplicationStopFailures": deployment.ignore_application_stop_failures,
        "autoRollbackConfiguration": deployment.auto_rollback_configuration,
        "updateOutdatedInstancesOnly": deployment.update_outdated_instances_only,
        "deploymentStyle": deployment.deployment_style,
        "targetInstances": deployment.target_instances,
        "instanceTerminationWaitTimeStarted": deployment.instance_termination_wait_time_started,
        "blueGreenDeploymentConfiguration": deployment.blue_green_deployment_configuration,
        "loadBalancerInfo": deployment.load_balancer_info,
        "additionalDeploymentStatusInfo": deployment.additional_deployment_status_info,
        "fileExistsBehavior": deployment.file_exists_behavior,
        "deploymentStatusMessages": deployment.deployment_status_messages or [],
        "computePlatform": deployment.compute_platform,
        "externalId": deployment.external_id,
        "overrideAlarmConfiguration": deployment.override_alarm_configuration,
        "deploymentMode": deployment.deployment_mode,
        "ec2DeploymentOptions": deployment.ec2_deployment_options,
    }
    if deployment.error_code:
        info["errorInformation"] = {"code": deployment.error_code, "message": deployment.error_message or ""}
    rollback = {
        "rollbackDeploymentId": deployment.rollback_deployment_id,
        "rollbackTriggeringDeploymentId": deployment.rollback_triggering_deployment_id,
        "rollbackMessage": deployment.rollback_message,
    }
    if any(rollback.values()):
        info["rollbackInfo"] = {key: value for key, value in rollback.items() if value is not None}
    root_id = deployment.auto_update_outdated_instances_root_deployment_id
    related = {
        "autoUpdateOutdatedInstancesRootDeploymentId": root_id,
        "autoUpdateOutdatedInstancesDeploymentIds": deployment.auto_update_outdated_instances_deployment_ids,
    }
    if any(related.values()):
        info["relatedDeployments"] = {key: value for key, value in related.items() if value is not None}
    return {key: value for key, value in info.items() if value is not None}


@operation("GetDeployment")
def get_deployment(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    deployment = deployment_by_id(ctx, params.get("deploymentId"))
    return {"deploymentInfo": deployment_infos(ctx, [deployment])[0]}


@operation("BatchGetDeployments")
def batch_get_deployments(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    """Deployments that do not exist are left out of the answer."""
    ids: list[str] = params["deploymentIds"]
    limit = ctx.settings.quotas.batch_get_items
    if len(ids) > limit:
        raise ApiError("BatchLimitExceededException", f"At most {limit} deployment ids per call")
    ids = [check_deployment_id(deployment_id) for deployment_id in dict.fromkeys(ids)]
    found = (
        {d.id: d for d in ctx.session.scalars(select(Deployment).where(Deployment.id.in_(ids)))}
        if ids
        else {}
    )
    return {"deploymentsInfo": deployment_infos(ctx, [found[i] for i in ids if i in found])}


@operation("ListDeployments")
def list_deployments(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    """Newest first. Both names or neither, as botocore's model documents both members: an application
    without a deployment group is ``DeploymentGroupNameRequiredException``, a deployment group without
    an application ``ApplicationNameRequiredException``."""
    stmt: Select[Any] = select(Deployment.id, Deployment.create_time)
    application_name, group_name = params.get("applicationName"), params.get("deploymentGroupName")
    if group_name and not application_name:
        raise ApiError("ApplicationNameRequiredException", "deploymentGroupName needs applicationName")
    if application_name and not group_name:
        raise ApiError("DeploymentGroupNameRequiredException", "applicationName needs deploymentGroupName")
    if application_name:
        application = application_by_name(ctx, application_name)
        stmt = stmt.where(Deployment.application_id == application.id)
        if group_name:
            group = deployment_group_by_name(ctx, application, group_name)
            stmt = stmt.where(Deployment.deployment_group_id == group.id)
    if params.get("externalId"):
        stmt = stmt.where(Deployment.external_id == params["externalId"])
    statuses = params.get("includeOnlyStatuses")
    if statuses:
        stmt = stmt.where(Deployment.status.in_(statuses))
    time_range = params.get("createTimeRange") or {}
    start, end = time_range.get("start"), time_range.get("end")
    if start is not None and end is not None and start > end:
        raise ApiError("InvalidTimeRangeException", "createTimeRange.start is after createTimeRange.end")
    if start is not None:
        stmt = stmt.where(Deployment.create_time >= start)
    if end is not None:
        stmt = stmt.where(Deployment.create_time <= end)
    rows, next_token = keyset_page(
        ctx,
        params,
        stmt,
        [Deployment.create_time, Deployment.id],
        descending=True,
        key=lambda row: [row.create_time, row.id],
    )
    response: dict[str, Any] = {"deployments": [row.id for row in rows]}
    if next_token:
        response["nextToken"] = next_token
    return response


# --- stop, continue, skip wait ---------------------------------------------------------------------


def _check_not_completed(deployment: Deployment) -> None:
    if deployment.status in COMPLETED_DEPLOYMENT_STATUSES:
        raise ApiError(
            "DeploymentAlreadyCompletedException",
            f"Deployment {deployment.id} has already completed with status {deployment.status}",
        )


def _check_blue_green(deployment: Deployment, action: str) -> None:
    if not deployment.style.blue_green:
        raise ApiError(
            "UnsupportedActionForDeploymentTypeException",
            f"{action} applies to blue/green deployments; {deployment.id} is an in-place deployment",
        )


@operation("StopDeployment")
def stop_deployment(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    """Stop the deployment (guide L19314–19369; ``engine.stop``): in this transaction every lifecycle
    event not yet handed to an agent is cancelled, so none starts after the answer. With no event running
    on an agent the deployment is Stopped at once (and rolled back if asked): ``Succeeded``. Otherwise
    the running events finish first and the answer is ``Pending``; GetDeployment shows it Stopped once
    they have (a repeated StopDeployment then answers DeploymentAlreadyCompletedException)."""
    deployment = deployment_by_id(ctx, params.get("deploymentId"))
    _check_not_completed(deployment)
    if deployment.creator in (DeploymentCreator.CLOUDFORMATION, DeploymentCreator.CLOUDFORMATION_ROLLBACK):
        raise ApiError(
            "UnsupportedActionForDeploymentTypeException",
            "A deployment started by CloudFormation is stopped by cancelling the stack update",
        )
    # Locks in the order completions take them (their command, then the deployment): a completion in
    # flight finishes first, so any next event it issued is seen here and cancelled.
    engine.lock_running_commands(ctx.session, deployment.id)
    ctx.session.refresh(deployment, with_for_update=True)
    _check_not_completed(deployment)
    if engine.request_stop(ctx.session, deployment, params.get("autoRollbackEnabled"), ctx.now, ctx.settings):
        return {"status": str(StopStatus.SUCCEEDED), "statusMessage": f"Deployment {deployment.id} stopped"}
    return {
        "status": str(StopStatus.PENDING),
        "statusMessage": f"Stopping deployment {deployment.id}: waiting for the lifecycle events that "
        "agents are running to finish",
    }


@operation("ContinueDeployment")
def continue_deployment(ctx: OperationContext, params: dict[str, Any]) -> None:
    """Blue/green: reroute traffic now (READY_WAIT; during a canary or linear shift: shift the rest at
    once) or terminate the original instances now (TERMINATION_WAIT), without waiting out the configured
    time."""
    deployment = deployment_by_id(ctx, params.get("deploymentId"), for_update=True)
    _check_blue_green(deployment, "ContinueDeployment")
    _check_not_completed(deployment)
    wait_type = params.get("deploymentWaitType") or "READY_WAIT"
    if wait_type == "READY_WAIT":
        # Beyond AWS: while a canary or linear shift is under way, READY_WAIT promotes it (skips the rest).
        if deployment.status != DeploymentStatus.READY and not engine.promotable(deployment):
            raise ApiError(
                "DeploymentIsNotInReadyStateException",
                f"Deployment {deployment.id} is {deployment.status}, not Ready: it cannot reroute traffic "
                "yet",
            )
    elif not deployment.instance_termination_wait_time_started:
        raise ApiError(
            "InvalidDeploymentStatusException",
            f"Deployment {deployment.id} is not waiting to terminate its original instances",
        )
    engine.continue_deployment(ctx.session, deployment, wait_type, ctx.now)
    return None


@operation("SkipWaitTimeForInstanceTermination")
def skip_wait_time_for_instance_termination(ctx: OperationContext, params: dict[str, Any]) -> None:
    """Deprecated form of ContinueDeployment(TERMINATION_WAIT): terminate the originals as soon as traffic
    is rerouted. Recorded even before the wait starts, so the wait is skipped when it comes."""
    deployment = deployment_by_id(ctx, params.get("deploymentId"), for_update=True)
    _check_blue_green(deployment, "SkipWaitTimeForInstanceTermination")
    _check_not_completed(deployment)
    if deployment.status in NOT_STARTED_DEPLOYMENT_STATUSES:
        raise ApiError("DeploymentNotStartedException", f"Deployment {deployment.id} has not started")
    engine.continue_deployment(ctx.session, deployment, "TERMINATION_WAIT", ctx.now)
    return None


@operation("DeleteResourcesByExternalId")
def delete_resources_by_external_id(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    """Delete the deployments linked to an external resource (a CloudFormation stack)."""
    external_id = params.get("externalId")
    if external_id:
        ctx.session.execute(delete(Deployment).where(Deployment.external_id == external_id))
    return {}
