"""Resource tags: TagResource, UntagResource, ListTagsForResource, and the check every tagged create uses.

Applications, deployment groups and custom deployment configurations can be tagged; a resource is
named by its ARN (``domain.arns``) and its tags are stored by internal id (``store.tags``), so they
follow the resource through renames. An ARN of another region or account names nothing on this
server, so it gets the resource type's does-not-exist exception. A well-formed ARN of a CodeDeploy
resource that cannot be tagged (an instance, a deployment, a predefined deployment configuration) is
``ArnNotSupportedException``; anything that is not a CodeDeploy ARN at all is ``InvalidArnException``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from opendeploy.api.codedeploy.registry import OperationContext, operation
from opendeploy.api.errors import ApiError
from opendeploy.api.pagination import read_position
from opendeploy.api.validation import modeled_error
from opendeploy.domain.arns import parse_arn
from opendeploy.store.models import Application
from opendeploy.store.tags import TagKind, TagLimitExceeded, list_tags, put_tags, remove_tags

MAX_KEY_LENGTH = 128  # guide quotas: size of tag key
MAX_VALUE_LENGTH = 256  # guide quotas: size of tag value
RESERVED_PREFIX = "aws:"
# A deployment's ARN: domain.arns does not parse it, as nothing can be tagged with it.
_UNTAGGABLE_ARN = re.compile(r"arn:[^:]+:codedeploy:[^:]+:[^:]+:deployment/[^/]+")


def check_tags(ctx: OperationContext, tags: Sequence[dict[str, Any]], member: str = "tags") -> None:
    """Refuse tags with a missing, over-long or reserved key or an over-long value."""
    code = modeled_error(ctx.operation, "InvalidTagsToAddException", "InvalidTagException")
    for index, tag in enumerate(tags):
        key, value = tag.get("Key"), tag.get("Value") or ""
        where = f"{member}[{index}]"
        if not key:
            raise ApiError(code, f"{where}: a tag needs a Key")
        if len(key) > MAX_KEY_LENGTH:
            raise ApiError(code, f"{where}: the Key is longer than {MAX_KEY_LENGTH} characters")
        if len(value) > MAX_VALUE_LENGTH:
            raise ApiError(code, f"{where}: the Value is longer than {MAX_VALUE_LENGTH} characters")
        if key.lower().startswith(RESERVED_PREFIX):
            raise ApiError(code, f"{where}: keys starting with {RESERVED_PREFIX!r} are reserved")


def apply_tags(
    ctx: OperationContext,
    kind: TagKind,
    resource_id: str,
    tags: Sequence[dict[str, Any]],
    *,
    application_id: str | None = None,
    member: str = "tags",
) -> None:
    """Check ``tags`` and add them to the resource, within the tags-per-resource quota."""
    check_tags(ctx, tags, member)
    try:
        put_tags(
            ctx.session,
            kind,
            resource_id,
            tags,
            application_id=application_id,
            limit=ctx.settings.quotas.tags_per_resource,
        )
    except TagLimitExceeded as error:
        code = modeled_error(ctx.operation, "InvalidTagsToAddException", "TagLimitExceededException")
        raise ApiError(code, str(error)) from None


def _resolve(ctx: OperationContext, arn: str) -> tuple[TagKind, str, str | None]:
    """(kind, internal id, owning application id) of the resource ``arn`` names, or raise."""
    parsed = parse_arn(arn)
    if parsed is None and _UNTAGGABLE_ARN.fullmatch(arn):
        raise ApiError("ArnNotSupportedException", f"{arn} names a deployment; deployments cannot be tagged")
    if parsed is None:
        raise ApiError(
            modeled_error(ctx.operation, "InvalidArnException"), f"{arn} is not a valid CodeDeploy ARN"
        )
    elsewhere = (parsed.region, parsed.account_id) != (ctx.settings.region, ctx.settings.account_id)
    if parsed.resource_type == "application":
        application = None if elsewhere else _application(ctx, parsed.names[0])
        if application is None:
            raise ApiError("ApplicationDoesNotExistException", f"No application found for ARN: {arn}")
        return TagKind.APPLICATION, application.id, application.id
    if parsed.resource_type == "deploymentgroup":
        from opendeploy.store.models import DeploymentGroup

        application = None if elsewhere else _application(ctx, parsed.names[0])
        group = (
            None
            if application is None
            else ctx.session.scalar(
                select(DeploymentGroup).where(
                    DeploymentGroup.application_id == application.id, DeploymentGroup.name == parsed.names[1]
                )
            )
        )
        if group is None:
            raise ApiError(
                "DeploymentGroupDoesNotExistException", f"No deployment group found for ARN: {arn}"
            )
        return TagKind.DEPLOYMENT_GROUP, group.id, group.application_id
    if parsed.resource_type == "deploymentconfig":
        from opendeploy.store.models import DeploymentConfigRecord

        record = (
            None
            if elsewhere
            else ctx.session.scalar(
                select(DeploymentConfigRecord).where(DeploymentConfigRecord.name == parsed.names[0])
            )
        )
        if record is None:
            if parsed.names[0].startswith("CodeDeployDefault."):
                raise ApiError(
                    "ArnNotSupportedException",
                    f"Predefined deployment configurations cannot be tagged: {arn}",
                )
            raise ApiError(
                "DeploymentConfigDoesNotExistException", f"No deployment configuration found for ARN: {arn}"
            )
        return TagKind.DEPLOYMENT_CONFIG, record.id, None
    raise ApiError(
        "ArnNotSupportedException",
        f"{arn} cannot be tagged with TagResource; "
        "tag on-premises instances with AddTagsToOnPremisesInstances",
    )


def _application(ctx: OperationContext, name: str) -> Application | None:
    return ctx.session.scalar(select(Application).where(Application.name == name))


@operation("TagResource")
def tag_resource(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    kind, resource_id, application_id = _resolve(ctx, params["ResourceArn"])
    if not params["Tags"]:
        raise ApiError("TagRequiredException", "Tags must name at least one tag")
    apply_tags(ctx, kind, resource_id, params["Tags"], application_id=application_id, member="Tags")
    return {}


@operation("UntagResource")
def untag_resource(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    kind, resource_id, _ = _resolve(ctx, params["ResourceArn"])
    if not params["TagKeys"]:
        raise ApiError("TagRequiredException", "TagKeys must name at least one tag key")
    remove_tags(ctx.session, kind, resource_id, params["TagKeys"])
    return {}


@operation("ListTagsForResource")
def list_tags_for_resource(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    kind, resource_id, _ = _resolve(ctx, params["ResourceArn"])
    # A resource has at most tags_per_resource (50) tags and botocore has no paginator for this
    # call, so every tag comes in one answer and no NextToken is ever handed out.
    read_position(ctx, params)  # a NextToken given anyway must still be one of ours
    return {"Tags": list_tags(ctx.session, kind, resource_id)}
