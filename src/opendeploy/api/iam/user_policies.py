"""IAM users' inline policies: PutUserPolicy, GetUserPolicy, ListUserPolicies, DeleteUserPolicy.

The document is stored exactly as given once the policy evaluator's parser accepts it (IAM's size quota
for a user's inline policies applies) and returned URL-encoded, as IAM returns it (boto3 decodes it
back into a dict). ``aws deploy register`` and ``opendeploy register`` put the read-bundles policy on an
instance's user here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from opendeploy.api.errors import ApiError
from opendeploy.api.iam import markers
from opendeploy.api.iam.managed_policies import checked_inline_document
from opendeploy.api.iam.registry import IamContext, iam_error, operation
from opendeploy.api.iam.users import find_user
from opendeploy.store import iam_users

# IAM's quota: a user's inline policies together hold at most this many characters, whitespace
# not counted.
MAX_INLINE_POLICY_CHARACTERS = 2048


def _no_such_policy(name: str) -> ApiError:
    return iam_error("NoSuchEntity", f"The user policy with name {name} cannot be found.")


@operation("PutUserPolicy")
def put_user_policy(ctx: IamContext, params: dict[str, Any]) -> None:
    user = find_user(ctx, params["UserName"], for_update=True)
    name = params["PolicyName"]
    document = checked_inline_document(
        params["PolicyDocument"],
        (policy.document for policy in user.policies if policy.name != name),
        MAX_INLINE_POLICY_CHARACTERS,
        f"user {user.name}",
    )
    iam_users.put_policy(ctx.session, user, name, document)


@operation("GetUserPolicy")
def get_user_policy(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    user = find_user(ctx, params["UserName"])
    policy = iam_users.find_policy(user, params["PolicyName"])
    if policy is None:
        raise _no_such_policy(params["PolicyName"])
    return {
        "UserName": user.name,
        "PolicyName": policy.name,
        "PolicyDocument": quote(policy.document, safe=""),
    }


@operation("ListUserPolicies")
def list_user_policies(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    user = find_user(ctx, params["UserName"])
    page, truncation = markers.offset_page(ctx, params, [policy.name for policy in user.policies])
    return {"PolicyNames": page, **truncation}


@operation("DeleteUserPolicy")
def delete_user_policy(ctx: IamContext, params: dict[str, Any]) -> None:
    user = find_user(ctx, params["UserName"], for_update=True)
    policy = iam_users.find_policy(user, params["PolicyName"])
    if policy is None:
        raise _no_such_policy(params["PolicyName"])
    iam_users.delete_policy(ctx.session, user, policy)
