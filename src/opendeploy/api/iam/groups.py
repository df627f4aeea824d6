"""IAM groups: CreateGroup, GetGroup, ListGroups, DeleteGroup, members (AddUserToGroup,
RemoveUserFromGroup, ListGroupsForUser) and inline policies (PutGroupPolicy, GetGroupPolicy,
ListGroupPolicies, DeleteGroupPolicy).

A group holds users and policies and cannot sign requests (guide L21352–21356): its members get its
inline and attached policies. DeleteGroup is refused (``DeleteConflict``) while the group has members
or policies, as IAM refuses it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from opendeploy.api.iam import markers
from opendeploy.api.iam.managed_policies import checked_inline_document
from opendeploy.api.iam.registry import IamContext, iam_error, operation
from opendeploy.api.iam.users import find_user, user_shape
from opendeploy.store import iam_policies
from opendeploy.store.models.iam_policies import IamGroup

DEFAULT_PATH = "/"
# IAM's quota for a group's inline policies together, whitespace not counted.
MAX_GROUP_POLICY_CHARACTERS = 5120


def group_shape(group: IamGroup) -> dict[str, Any]:
    return {
        "Path": group.path,
        "GroupName": group.name,
        "GroupId": group.group_id,
        "Arn": group.arn,
        "CreateDate": group.create_time,
    }


def find_group(ctx: IamContext, name: str, *, for_update: bool = False) -> IamGroup:
    group = iam_policies.find_group(ctx.session, name, for_update=for_update)
    if group is None:
        raise iam_error("NoSuchEntity", f"The group with name {name} cannot be found.")
    return group


@operation("CreateGroup")
def create_group(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["GroupName"]
    try:
        group = iam_policies.create_group(
            ctx.session,
            account_id=ctx.settings.account_id,
            name=name,
            path=params.get("Path", DEFAULT_PATH),
            now=ctx.now,
        )
    except iam_policies.NameTaken:
        raise iam_error("EntityAlreadyExists", f"Group with name {name} already exists.") from None
    return {"Group": group_shape(group)}


@operation("GetGroup")
def get_group(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    group = find_group(ctx, params["GroupName"])
    users = [user_shape(user, with_tags=False) for user in iam_policies.members(ctx.session, group)]
    page, truncation = markers.offset_page(ctx, params, users)
    return {"Group": group_shape(group), "Users": page, **truncation}


@operation("ListGroups")
def list_groups(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    groups = iam_policies.list_groups(ctx.session, path_prefix=params.get("PathPrefix", DEFAULT_PATH))
    page, truncation = markers.offset_page(ctx, params, [group_shape(group) for group in groups])
    return {"Groups": page, **truncation}


@operation("DeleteGroup")
def delete_group(ctx: IamContext, params: dict[str, Any]) -> None:
    group = find_group(ctx, params["GroupName"], for_update=True)
    if iam_policies.members(ctx.session, group):
        raise iam_error("DeleteConflict", "Cannot delete entity, must remove users from group first.")
    if group.policies:
        raise iam_error("DeleteConflict", "Cannot delete entity, must delete policies first.")
    if iam_policies.attached(ctx.session, iam_policies.GROUP, group.group_id):
        raise iam_error("DeleteConflict", "Cannot delete entity, must detach all policies first.")
    iam_policies.delete_group(ctx.session, group)


@operation("AddUserToGroup")
def add_user_to_group(ctx: IamContext, params: dict[str, Any]) -> None:
    group = find_group(ctx, params["GroupName"], for_update=True)
    user = find_user(ctx, params["UserName"])
    iam_policies.add_member(ctx.session, group, user)


@operation("RemoveUserFromGroup")
def remove_user_from_group(ctx: IamContext, params: dict[str, Any]) -> None:
    group = find_group(ctx, params["GroupName"], for_update=True)
    user = find_user(ctx, params["UserName"])
    if not iam_policies.remove_member(ctx.session, group, user):
        raise iam_error("NoSuchEntity", f"User {user.name} is not in group {group.name}.")


@operation("ListGroupsForUser")
def list_groups_for_user(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    user = find_user(ctx, params["UserName"])
    groups = [group_shape(group) for group in iam_policies.groups_of_user(ctx.session, user)]
    page, truncation = markers.offset_page(ctx, params, groups)
    return {"Groups": page, **truncation}


@operation("PutGroupPolicy")
def put_group_policy(ctx: IamContext, params: dict[str, Any]) -> None:
    group = find_group(ctx, params["GroupName"], for_update=True)
    name = params["PolicyName"]
    document = checked_inline_document(
        params["PolicyDocument"],
        (policy.document for policy in group.policies if policy.name != name),
        MAX_GROUP_POLICY_CHARACTERS,
        f"group {group.name}",
    )
    iam_policies.put_group_policy(ctx.session, group, name, document)


@operation("GetGroupPolicy")
def get_group_policy(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    group = find_group(ctx, params["GroupName"])
    policy = iam_policies.find_group_policy(group, params["PolicyName"])
    if policy is None:
        raise iam_error("NoSuchEntity", f"The group policy with name {params['PolicyName']} cannot be found.")
    return {
        "GroupName": group.name,
        "PolicyName": policy.name,
        "PolicyDocument": quote(policy.document, safe=""),
    }


@operation("ListGroupPolicies")
def list_group_policies(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    group = find_group(ctx, params["GroupName"])
    page, truncation = markers.offset_page(ctx, params, [policy.name for policy in group.policies])
    return {"PolicyNames": page, **truncation}


@operation("DeleteGroupPolicy")
def delete_group_policy(ctx: IamContext, params: dict[str, Any]) -> None:
    group = find_group(ctx, params["GroupName"], for_update=True)
    policy = iam_policies.find_group_policy(group, params["PolicyName"])
    if policy is None:
        raise iam_error("NoSuchEntity", f"The group policy with name {params['PolicyName']} cannot be found.")
    iam_policies.delete_group_policy(ctx.session, group, policy)
