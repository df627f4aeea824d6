"""Managed policies attached to users and groups: AttachUserPolicy, DetachUserPolicy,
ListAttachedUserPolicies, AttachGroupPolicy, DetachGroupPolicy, ListAttachedGroupPolicies.

Any managed policy can be attached: the AWS managed ones the server ships (AdministratorAccess,
AWSCodeDeployFullAccess, …) and customer managed ones. Attaching twice changes nothing, as in IAM.
"""

from __future__ import annotations

from typing import Any

from opendeploy.api.iam import markers
from opendeploy.api.iam.groups import find_group
from opendeploy.api.iam.managed_policies import exists
from opendeploy.api.iam.registry import IamContext, iam_error, operation
from opendeploy.api.iam.users import find_user
from opendeploy.domain import managed_policies
from opendeploy.store import iam_policies

# IAM's quota: managed policies attached to one user or group.
MAX_ATTACHED = 20


def _policy_name(ctx: IamContext, arn: str) -> str:
    if managed_policies.is_managed_policy(arn):
        return managed_policies.policy_name(arn)
    policy = iam_policies.find_policy(ctx.session, arn)
    return policy.name if policy is not None else arn.rsplit("/", 1)[-1]


def _attach(ctx: IamContext, principal_type: str, principal_id: str, arn: str) -> None:
    if not exists(ctx, arn):
        raise iam_error("NoSuchEntity", f"Policy {arn} does not exist or is not attachable.")
    attached = iam_policies.attached(ctx.session, principal_type, principal_id)
    if arn not in attached and len(attached) >= MAX_ATTACHED:
        raise iam_error("LimitExceeded", f"Cannot exceed quota for PoliciesPerUser: {MAX_ATTACHED}")
    iam_policies.attach(ctx.session, principal_type, principal_id, arn, ctx.now)


def _detach(ctx: IamContext, principal_type: str, principal_id: str, arn: str) -> None:
    if not iam_policies.detach(ctx.session, principal_type, principal_id, arn):
        raise iam_error("NoSuchEntity", f"Policy {arn} was not found.")


def _listing(
    ctx: IamContext, params: dict[str, Any], principal_type: str, principal_id: str
) -> dict[str, Any]:
    prefix = params.get("PathPrefix", "/")
    arns = iam_policies.attached(ctx.session, principal_type, principal_id)
    shapes = [
        {"PolicyName": _policy_name(ctx, arn), "PolicyArn": arn}
        for arn in arns
        if arn.split(":policy", 1)[-1].startswith(prefix)
    ]
    page, truncation = markers.offset_page(ctx, params, shapes)
    return {"AttachedPolicies": page, **truncation}


@operation("AttachUserPolicy")
def attach_user_policy(ctx: IamContext, params: dict[str, Any]) -> None:
    user = find_user(ctx, params["UserName"], for_update=True)
    _attach(ctx, iam_policies.USER, user.user_id, params["PolicyArn"])


@operation("DetachUserPolicy")
def detach_user_policy(ctx: IamContext, params: dict[str, Any]) -> None:
    user = find_user(ctx, params["UserName"], for_update=True)
    _detach(ctx, iam_policies.USER, user.user_id, params["PolicyArn"])


@operation("ListAttachedUserPolicies")
def list_attached_user_policies(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    user = find_user(ctx, params["UserName"])
    return _listing(ctx, params, iam_policies.USER, user.user_id)


@operation("AttachGroupPolicy")
def attach_group_policy(ctx: IamContext, params: dict[str, Any]) -> None:
    group = find_group(ctx, params["GroupName"], for_update=True)
    _attach(ctx, iam_policies.GROUP, group.group_id, params["PolicyArn"])


@operation("DetachGroupPolicy")
def detach_group_policy(ctx: IamContext, params: dict[str, Any]) -> None:
    group = find_group(ctx, params["GroupName"], for_update=True)
    _detach(ctx, iam_policies.GROUP, group.group_id, params["PolicyArn"])


@operation("ListAttachedGroupPolicies")
def list_attached_group_policies(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    group = find_group(ctx, params["GroupName"])
    return _listing(ctx, params, iam_policies.GROUP, group.group_id)
