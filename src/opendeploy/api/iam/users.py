"""IAM users: CreateUser, GetUser, ListUsers, DeleteUser, and their tags (TagUser, UntagUser,
ListUserTags).

A user is ``arn:aws:iam::<account>:user<path><name>`` with an ``AIDA…`` user id; names are unique
regardless of case. DeleteUser is refused (``DeleteConflict``) while the user has access keys, inline
or attached policies, or belongs to a group, as IAM refuses it. GetUser without ``UserName`` describes
the caller. The administrator ``opendeploy init`` makes is a user like any other (``opendeploy-admin``,
with AdministratorAccess attached); only its access keys are managed on the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opendeploy.api.iam import markers
from opendeploy.api.iam.registry import IamContext, iam_error, no_such_user, operation
from opendeploy.store import iam_policies, iam_users
from opendeploy.store.models.iam_users import IamUser

DEFAULT_PATH = "/"
MAX_TAGS_PER_USER = 50


def user_shape(user: IamUser, *, with_tags: bool = True) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "Path": user.path,
        "UserName": user.name,
        "UserId": user.user_id,
        "Arn": user.arn,
        "CreateDate": user.create_time,
    }
    if with_tags and user.tags:
        shape["Tags"] = list(user.tags)
    return shape


def find_user(ctx: IamContext, name: str, *, for_update: bool = False) -> IamUser:
    """The user called ``name``, or ``NoSuchEntity``."""
    user = iam_users.find_user(ctx.session, name, for_update=for_update)
    if user is None:
        raise no_such_user(name)
    return user


def _checked_tags(tags: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    keys = [tag["Key"] for tag in tags]
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    if duplicated:
        raise iam_error("InvalidInput", f"Duplicate tag keys found: {', '.join(duplicated)}")
    return [{"Key": tag["Key"], "Value": tag["Value"]} for tag in tags]


@operation("CreateUser")
def create_user(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    name, path = params["UserName"], params.get("Path", DEFAULT_PATH)
    if params.get("PermissionsBoundary"):
        raise iam_error(
            "NoSuchEntity",
            f"Scope ARN: {params['PermissionsBoundary']} does not exist or is not attachable "
            "(opendeploy keeps no managed policies).",
        )
    tags = _checked_tags(params.get("Tags", []))
    arn = iam_users.user_arn(ctx.settings.account_id, path, name)
    if iam_users.is_administrator(ctx.session, arn):
        raise iam_error("EntityAlreadyExists", f"User with name {name} already exists (the administrator).")
    try:
        user = iam_users.create_user(
            ctx.session, account_id=ctx.settings.account_id, name=name, path=path, tags=tags, now=ctx.now
        )
    except iam_users.UserExists:
        raise iam_error("EntityAlreadyExists", f"User with name {name} already exists.") from None
    return {"User": user_shape(user)}


@operation("GetUser")
def get_user(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    if "UserName" not in params:
        # The caller: only an IAM user's policies can allow this, so the caller is one.
        own = iam_users.find_user_by_arn(ctx.session, ctx.principal.arn)
        if own is None:
            raise no_such_user(ctx.principal.arn.rpartition("/")[2])
        return {"User": user_shape(own)}
    return {"User": user_shape(find_user(ctx, params["UserName"]))}


@operation("ListUsers")
def list_users(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    after = markers.position(ctx, params)
    if after is not None and not isinstance(after, str):
        raise iam_error("ValidationError", "The marker is not valid for this listing")
    limit = markers.max_items(params)
    users = iam_users.list_users(
        ctx.session, path_prefix=params.get("PathPrefix", DEFAULT_PATH), after=after, limit=limit + 1
    )
    page = users[:limit]
    more = page[-1].name_key if len(users) > limit else None
    # Like IAM's listings, ListUsers leaves tags out (ListUserTags has them).
    return {
        "Users": [user_shape(user, with_tags=False) for user in page],
        **markers.truncation(ctx, params, more),
    }


@operation("DeleteUser")
def delete_user(ctx: IamContext, params: dict[str, Any]) -> None:
    user = find_user(ctx, params["UserName"], for_update=True)
    if iam_users.access_keys(ctx.session, user.arn) or iam_users.access_keys(
        ctx.session, user.arn, admin=True
    ):
        raise iam_error("DeleteConflict", "Cannot delete entity, must delete access keys first.")
    if user.policies:
        raise iam_error("DeleteConflict", "Cannot delete entity, must delete policies first.")
    if iam_policies.attached(ctx.session, iam_policies.USER, user.user_id):
        raise iam_error("DeleteConflict", "Cannot delete entity, must detach all policies first.")
    if iam_policies.groups_of_user(ctx.session, user):
        raise iam_error("DeleteConflict", "Cannot delete entity, must remove user from all groups first.")
    iam_users.delete_user(ctx.session, user)


@operation("TagUser")
def tag_user(ctx: IamContext, params: dict[str, Any]) -> None:
    user = find_user(ctx, params["UserName"], for_update=True)
    added = _checked_tags(params["Tags"])
    new_keys = {tag["Key"] for tag in added}
    tags = [tag for tag in user.tags if tag["Key"] not in new_keys] + added
    if len(tags) > MAX_TAGS_PER_USER:
        raise iam_error(
            "LimitExceeded", f"The number of tags has reached the maximum limit of {MAX_TAGS_PER_USER}."
        )
    user.tags = tags  # replaced, not mutated: the JSON column does not track changes inside it


@operation("UntagUser")
def untag_user(ctx: IamContext, params: dict[str, Any]) -> None:
    user = find_user(ctx, params["UserName"], for_update=True)
    removed = set(params["TagKeys"])
    user.tags = [tag for tag in user.tags if tag["Key"] not in removed]


@operation("ListUserTags")
def list_user_tags(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    user = find_user(ctx, params["UserName"])
    page, truncation = markers.offset_page(ctx, params, list(user.tags))
    return {"Tags": page, **truncation}
