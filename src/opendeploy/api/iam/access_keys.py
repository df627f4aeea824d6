"""IAM users' access keys: CreateAccessKey, ListAccessKeys, UpdateAccessKey, DeleteAccessKey.

A key created here is an ordinary opendeploy access key (secret encrypted at rest, never shown again)
whose principal is the user's ARN, and not an administrator key: what it may do is what the server
grants every instance key (read bundles through the S3 API; talk to the command service as the
instance registered with that ARN). A user has at most two keys, IAM's quota. An Inactive key is
refused by every service until it is made Active again; a deleted key is gone. Servers reuse a
looked-up key for a few seconds (``api.server_state.KEY_CACHE_SECONDS``), so a key stops working
within that time on every replica.

Without ``UserName`` these operations act on the caller, the administrator: its keys can be listed,
but they are made and replaced with ``opendeploy init`` on the server, not through IAM.
"""

from __future__ import annotations

from typing import Any

from opendeploy.api.errors import ApiError
from opendeploy.api.iam import markers
from opendeploy.api.iam.registry import IamContext, iam_error, operation
from opendeploy.api.iam.users import find_user
from opendeploy.store import iam_users
from opendeploy.store.models.credentials import AccessKey

MAX_KEYS_PER_USER = 2


def _status(key: AccessKey) -> str:
    return "Active" if key.active else "Inactive"


def _administrator_keys_refused(ctx: IamContext) -> ApiError:
    return iam_error(
        "AccessDenied",
        f"The administrator's access keys ({ctx.principal.arn}) are managed with 'opendeploy init' on the "
        "server, not through IAM; name the user whose keys to change with UserName.",
    )


def _user_key(ctx: IamContext, params: dict[str, Any]) -> AccessKey:
    """The key ``AccessKeyId`` of user ``UserName``, or ``NoSuchEntity``."""
    if "UserName" not in params:
        raise _administrator_keys_refused(ctx)
    user = find_user(ctx, params["UserName"], for_update=True)
    key_id = params["AccessKeyId"]
    key = next((k for k in iam_users.access_keys(ctx.session, user.arn) if k.access_key_id == key_id), None)
    if key is None:
        raise iam_error("NoSuchEntity", f"The Access Key with id {key_id} cannot be found.")
    return key


@operation("CreateAccessKey")
def create_access_key(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    if "UserName" not in params:
        raise _administrator_keys_refused(ctx)
    user = find_user(ctx, params["UserName"], for_update=True)  # the lock keeps the quota under races
    if len(iam_users.access_keys(ctx.session, user.arn)) >= MAX_KEYS_PER_USER:
        raise iam_error("LimitExceeded", f"Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS_PER_USER}")
    key = iam_users.create_user_key(ctx.session, ctx.box, user, now=ctx.now)
    return {
        "AccessKey": {
            "UserName": user.name,
            "AccessKeyId": key.access_key_id,
            "Status": "Active",
            "SecretAccessKey": key.secret_access_key,
            "CreateDate": ctx.now,
        }
    }


@operation("ListAccessKeys")
def list_access_keys(ctx: IamContext, params: dict[str, Any]) -> dict[str, Any]:
    if "UserName" in params:
        user = find_user(ctx, params["UserName"])
        name, keys = user.name, iam_users.access_keys(ctx.session, user.arn)
    else:
        name = ctx.principal.arn.rsplit("/", 1)[-1]
        keys = iam_users.access_keys(ctx.session, ctx.principal.arn, admin=True)
    page, truncation = markers.offset_page(ctx, params, keys)
    metadata = [
        {"UserName": name, "AccessKeyId": k.access_key_id, "Status": _status(k), "CreateDate": k.create_time}
        for k in page
    ]
    return {"AccessKeyMetadata": metadata, **truncation}


@operation("UpdateAccessKey")
def update_access_key(ctx: IamContext, params: dict[str, Any]) -> None:
    if params["Status"] not in ("Active", "Inactive"):
        raise iam_error("InvalidInput", f"Status must be Active or Inactive, not {params['Status']}.")
    _user_key(ctx, params).active = params["Status"] == "Active"


@operation("DeleteAccessKey")
def delete_access_key(ctx: IamContext, params: dict[str, Any]) -> None:
    iam_users.delete_access_key(ctx.session, _user_key(ctx, params))
