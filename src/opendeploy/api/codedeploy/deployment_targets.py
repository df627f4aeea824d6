"""A deployment's targets and their lifecycle events: GetDeploymentTarget, ListDeploymentTargets,
BatchGetDeploymentTargets, the deprecated GetDeploymentInstance, ListDeploymentInstances and
BatchGetDeploymentInstances, and PutLifecycleEventHookExecutionStatus.

Targets are put on record by the engine when it starts a deployment; before that a deployment has
none, and the list calls answer with an empty list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select

from opendeploy.api.codedeploy.lookups import deployment_by_id
from opendeploy.api.codedeploy.registry import OperationContext, operation
from opendeploy.api.errors import ApiError
from opendeploy.api.pagination import keyset_page
from opendeploy.domain.statuses import (
    COMPLETED_LIFECYCLE_EVENT_STATUSES,
    DeploymentTargetType,
    LifecycleEventStatus,
    TargetLabel,
    TargetStatus,
)
from opendeploy.store.models import Deployment, DeploymentTarget, LifecycleEventRecord

MAX_TARGETS_PER_BATCH = 25  # BatchGetDeploymentTargets / BatchGetDeploymentInstances (API model docs)
_TARGET_MEMBERS = {
    DeploymentTargetType.INSTANCE: "instanceTarget",
    DeploymentTargetType.LAMBDA: "lambdaTarget",
    DeploymentTargetType.ECS: "ecsTarget",
    DeploymentTargetType.CLOUDFORMATION: "cloudFormationTarget",
}
_STATUSES = {str(status) for status in TargetStatus}
_LABELS = {str(label) for label in TargetLabel}


def _lifecycle_events(
    ctx: OperationContext, targets: Sequence[DeploymentTarget]
) -> dict[int, list[dict[str, Any]]]:
    events: dict[int, list[dict[str, Any]]] = {target.id: [] for target in targets}
    if not targets:
        return events
    rows = ctx.session.scalars(
        select(LifecycleEventRecord)
        .where(LifecycleEventRecord.deployment_target_id.in_(list(events)))
        .order_by(LifecycleEventRecord.deployment_target_id, LifecycleEventRecord.position)
    )
    for row in rows:
        event: dict[str, Any] = {"lifecycleEventName": row.name, "status": row.status}
        if row.start_time is not None:
            event["startTime"] = row.start_time
        if row.end_time is not None:
            event["endTime"] = row.end_time
        diagnostics = {
            "errorCode": row.diagnostics_error_code,
            "scriptName": row.diagnostics_script_name,
            "message": row.diagnostics_message,
            "logTail": row.diagnostics_log_tail,
        }
        if any(value is not None for value in diagnostics.values()):
            event["diagnostics"] = {key: value for key, value in diagnostics.items() if value is not None}
        events[row.deployment_target_id].append(event)
    return events


def _target_wire(target: DeploymentTarget, events: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "deploymentId": target.deployment_id,
        "targetId": target.target_id,
        "status": target.status,
        "lastUpdatedAt": target.last_updated_at,
        "lifecycleEvents": events,
    }
    if target.target_arn and target.target_type != DeploymentTargetType.CLOUDFORMATION:
        body["targetArn"] = target.target_arn
    if target.instance_label and target.target_type == DeploymentTargetType.INSTANCE:
        body["instanceLabel"] = target.instance_label
    body.update(target.details or {})  # lambdaFunctionInfo, taskSetsInfo, resourceType ...
    member = _TARGET_MEMBERS.get(DeploymentTargetType(target.target_type), "instanceTarget")
    return {"deploymentTargetType": target.target_type, member: body}


def _instance_summary(target: DeploymentTarget, events: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "deploymentId": target.deployment_id,
        "instanceId": target.target_id,
        "status": target.status,
        "lastUpdatedAt": target.last_updated_at,
        "lifecycleEvents": events,
    }
    if target.instance_label:
        summary["instanceType"] = target.instance_label
    return summary


def _targets(
    ctx: OperationContext, deployment: Deployment, target_ids: Sequence[str]
) -> dict[str, DeploymentTarget]:
    if not target_ids:
        return {}
    return {
        target.target_id: target
        for target in ctx.session.scalars(
            select(DeploymentTarget).where(
                DeploymentTarget.deployment_id == deployment.id,
                DeploymentTarget.target_id.in_(list(target_ids)),
            )
        )
    }


def _check_server(deployment: Deployment) -> None:
    """The deprecated instance calls serve EC2/On-Premises and Lambda deployments only (API model)."""
    if deployment.compute_platform not in ("Server", "Lambda"):
        raise ApiError(
            "InvalidComputePlatformException",
            f"The instance calls serve Server and Lambda deployments; {deployment.id} is "
            f"{deployment.compute_platform}. Use the deployment target calls.",
        )


def _check_statuses(statuses: Sequence[str]) -> None:
    unknown = [status for status in statuses if status not in _STATUSES]
    if unknown:
        raise ApiError(
            "InvalidInstanceStatusException",
            f"Unknown target status {unknown[0]!r}; use one of {', '.join(sorted(_STATUSES))}",
        )


def _check_labels(labels: Sequence[str]) -> None:
    unknown = [label for label in labels if label not in _LABELS]
    if unknown:
        raise ApiError(
            "InvalidInstanceTypeException", f"Unknown instance label {unknown[0]!r}; use Blue or Green"
        )


def _list_page(
    ctx: OperationContext,
    params: dict[str, Any],
    deployment: Deployment,
    statuses: Sequence[str],
    labels: Sequence[str],
) -> tuple[list[str], str | None]:
    stmt: Select[Any] = select(DeploymentTarget.target_id).where(
        DeploymentTarget.deployment_id == deployment.id
    )
    if statuses:
        stmt = stmt.where(DeploymentTarget.status.in_(list(statuses)))
    if labels:
        stmt = stmt.where(DeploymentTarget.instance_label.in_(list(labels)))
    return keyset_page(ctx, params, stmt, [DeploymentTarget.target_id])


@operation("GetDeploymentTarget")
def get_deployment_target(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    deployment = deployment_by_id(ctx, params.get("deploymentId"))
    target_id = params.get("targetId")
    if not target_id:
        raise ApiError("DeploymentTargetIdRequiredException", "targetId is required")
    target = _targets(ctx, deployment, [target_id]).get(target_id)
    if target is None:
        raise ApiError(
            "DeploymentTargetDoesNotExistException", f"Deployment {deployment.id} has no target {target_id}"
        )
    return {"deploymentTarget": _target_wire(target, _lifecycle_events(ctx, [target])[target.id])}


@operation("BatchGetDeploymentTargets")
def batch_get_deployment_targets(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    deployment = deployment_by_id(ctx, params.get("deploymentId"))
    target_ids = list(dict.fromkeys(params.get("targetIds") or []))
    if not target_ids:
        raise ApiError("DeploymentTargetIdRequiredException", "targetIds names no target")
    if len(target_ids) > MAX_TARGETS_PER_BATCH:
        raise ApiError(
            "DeploymentTargetListSizeExceededException",
            f"At most {MAX_TARGETS_PER_BATCH} target ids per call",
        )
    found = _targets(ctx, deployment, target_ids)
    missing = [target_id for target_id in target_ids if target_id not in found]
    if missing:
        raise ApiError(
            "DeploymentTargetDoesNotExistException",
            f"Deployment {deployment.id} has no target(s): {', '.join(missing)}",
        )
    targets = [found[target_id] for target_id in target_ids]
    events = _lifecycle_events(ctx, targets)
    return {"deploymentTargets": [_target_wire(target, events[target.id]) for target in targets]}


@operation("ListDeploymentTargets")
def list_deployment_targets(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    deployment = deployment_by_id(ctx, params.get("deploymentId"))
    filters: dict[str, list[str]] = params.get("targetFilters") or {}
    unknown = [name for name in filters if name not in ("TargetStatus", "ServerInstanceLabel")]
    if unknown:
        raise ApiError(
            "InvalidTargetFilterNameException",
            f"Unknown target filter {unknown[0]!r}; use TargetStatus or ServerInstanceLabel",
        )
    statuses, labels = filters.get("TargetStatus") or [], filters.get("ServerInstanceLabel") or []
    _check_statuses(statuses)
    _check_labels(labels)
    target_ids, next_token = _list_page(ctx, params, deployment, statuses, labels)
    response: dict[str, Any] = {"targetIds": target_ids}
    if next_token:
        response["nextToken"] = next_token
    return response


@operation("GetDeploymentInstance")
def get_deployment_instance(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    deployment = deployment_by_id(ctx, params.get("deploymentId"))
    instance_id = params.get("instanceId")
    if not instance_id:
        raise ApiError("InstanceIdRequiredException", "instanceId is required")
    _check_server(deployment)
    target = _targets(ctx, deployment, [instance_id]).get(instance_id)
    if target is None:
        raise ApiError(
            "InstanceDoesNotExistException", f"Deployment {deployment.id} has no instance {instance_id}"
        )
    return {"instanceSummary": _instance_summary(target, _lifecycle_events(ctx, [target])[target.id])}


@operation("BatchGetDeploymentInstances")
def batch_get_deployment_instances(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    deployment = deployment_by_id(ctx, params.get("deploymentId"))
    instance_ids = list(dict.fromkeys(params.get("instanceIds") or []))
    if not instance_ids:
        raise ApiError("InstanceIdRequiredException", "instanceIds names no instance")
    if len(instance_ids) > MAX_TARGETS_PER_BATCH:
        raise ApiError(
            "BatchLimitExceededException", f"At most {MAX_TARGETS_PER_BATCH} instance ids per call"
        )
    _check_server(deployment)
    found = _targets(ctx, deployment, instance_ids)
    targets = [found[instance_id] for instance_id in instance_ids if instance_id in found]
    events = _lifecycle_events(ctx, targets)
    response: dict[str, Any] = {"instancesSummary": [_instance_summary(t, events[t.id]) for t in targets]}
    missing = [instance_id for instance_id in instance_ids if instance_id not in found]
    if missing:
        response["errorMessage"] = f"Instances not found in deployment {deployment.id}: {', '.join(missing)}"
    return response


@operation("ListDeploymentInstances")
def list_deployment_instances(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    deployment = deployment_by_id(ctx, params.get("deploymentId"))
    _check_server(deployment)
    statuses = params.get("instanceStatusFilter") or []
    labels = params.get("instanceTypeFilter") or []
    _check_statuses(statuses)
    _check_labels(labels)
    if labels and not deployment.style.blue_green:
        raise ApiError(
            "InvalidDeploymentInstanceTypeException",
            "instanceTypeFilter (Blue/Green) applies to blue/green deployments only",
        )
    instance_ids, next_token = _list_page(ctx, params, deployment, statuses, labels)
    response: dict[str, Any] = {"instancesList": instance_ids}
    if next_token:
        response["nextToken"] = next_token
    return response


@operation("PutLifecycleEventHookExecutionStatus")
def put_lifecycle_event_hook_execution_status(
    ctx: OperationContext, params: dict[str, Any]
) -> dict[str, Any]:
    """A Lambda or ECS hook function reports its validation result (Succeeded or Failed). Recorded on the
    lifecycle event for the engine; the first report wins, a second is refused."""
    deployment = deployment_by_id(ctx, params.get("deploymentId"))
    if deployment.compute_platform not in ("Lambda", "ECS"):
        raise ApiError(
            "UnsupportedActionForDeploymentTypeException",
            "Lifecycle hook functions report their status for Lambda and ECS deployments only",
        )
    status = params.get("status")
    if status not in (LifecycleEventStatus.SUCCEEDED, LifecycleEventStatus.FAILED):
        raise ApiError(
            "InvalidLifecycleEventHookExecutionStatusException",
            f"A hook reports Succeeded or Failed, got {status!r}",
        )
    execution_id = params.get("lifecycleEventHookExecutionId")
    event = None
    if execution_id:
        event = ctx.session.scalar(
            select(LifecycleEventRecord)
            .join(DeploymentTarget, DeploymentTarget.id == LifecycleEventRecord.deployment_target_id)
            .where(
                DeploymentTarget.deployment_id == deployment.id,
                LifecycleEventRecord.hook_execution_id == execution_id,
            )
            .with_for_update()
        )
    if event is None:
        raise ApiError(
            "InvalidLifecycleEventHookExecutionIdException",
            f"Deployment {deployment.id} has no lifecycle hook execution {execution_id!r}",
        )
    if event.hook_reported_status is not None or event.status in COMPLETED_LIFECYCLE_EVENT_STATUSES:
        raise ApiError(
            "LifecycleEventAlreadyCompletedException",
            f"Lifecycle event {event.name} of deployment {deployment.id} has already completed",
        )
    event.hook_reported_status = status
    event.hook_reported_at = ctx.now
    return {"lifecycleEventHookExecutionId": execution_id}
