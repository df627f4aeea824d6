"""On-premises instances: register (with an IAM user or session ARN), deregister, get, list, batch get,
and add or remove their tags (the tags deployment groups select instances by).

Rules from the guide (§2.4): an instance name is unique and may not contain a colon; one IAM user or
session identifies one registered instance; a deregistered instance stays listed as
``Deregistered``, keeps its tags (the API call does not remove them) and is never deployed to, and
its name can be registered again at once, which starts a fresh record.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from opendeploy.api.codedeploy.registry import OperationContext, operation
from opendeploy.api.errors import ApiError
from opendeploy.api.pagination import offset_page
from opendeploy.domain.arns import instance_arn
from opendeploy.domain.tag_matching import TagFilter, TagFilterError, TagSet
from opendeploy.engine import forget_instances, instances_changed
from opendeploy.store.models import OnPremisesInstance, OnPremisesInstanceTag

# The guide defers the allowed characters to its quotas page, which does not list them; we allow
# what application names allow (no colon, as the guide requires, and no spaces or slashes).
INSTANCE_NAME = re.compile(r"[A-Za-z0-9+=,.@_-]{1,100}")
IAM_USER_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:user/[\w+=,.@/-]{1,512}")
IAM_SESSION_ARN = re.compile(r"arn:aws[a-z-]*:sts::\d{12}:assumed-role/[\w+=,.@-]{1,64}/[\w+=,.@-]{2,64}")
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256


def _check_name(name: str) -> str:
    if not name:
        raise ApiError("InstanceNameRequiredException", "An on-premises instance name is required")
    if not INSTANCE_NAME.fullmatch(name):
        raise ApiError(
            "InvalidInstanceNameException",
            f"On-premises instance name {name!r} is not valid: use 1-100 letters, digits and +=,.@_- "
            "(no colons or spaces)",
        )
    return name


def _check_names(ctx: OperationContext, names: Sequence[str], limit_code: str) -> list[str]:
    names = list(dict.fromkeys(names))
    if not names:
        raise ApiError("InstanceNameRequiredException", "instanceNames must name at least one instance")
    limit = ctx.settings.quotas.batch_get_items
    if len(names) > limit:
        raise ApiError(limit_code, f"At most {limit} on-premises instances can be named in one call")
    return [_check_name(name) for name in names]


def instance_info(ctx: OperationContext, instance: OnPremisesInstance) -> dict[str, Any]:
    """The API's ``InstanceInfo`` for ``instance``."""
    info: dict[str, Any] = {
        "instanceName": instance.name,
        "instanceArn": instance_arn(ctx.settings.region, ctx.settings.account_id, instance.name),
        "registerTime": instance.register_time,
        "tags": [{"Key": tag.key, "Value": tag.value} for tag in instance.tags],
    }
    if instance.iam_user_arn:
        info["iamUserArn"] = instance.iam_user_arn
    if instance.iam_session_arn:
        info["iamSessionArn"] = instance.iam_session_arn
    if instance.deregister_time is not None:
        info["deregisterTime"] = instance.deregister_time
    return info


def _load(ctx: OperationContext, names: Sequence[str]) -> dict[str, OnPremisesInstance]:
    rows = ctx.session.scalars(
        select(OnPremisesInstance)
        .where(OnPremisesInstance.name.in_(list(names)))
        .options(selectinload(OnPremisesInstance.tags))
    )
    return {row.name: row for row in rows}


@operation("RegisterOnPremisesInstance")
def register_on_premises_instance(ctx: OperationContext, params: dict[str, Any]) -> None:
    name = _check_name(params["instanceName"])
    user_arn, session_arn = params.get("iamUserArn"), params.get("iamSessionArn")
    if user_arn and session_arn:
        raise ApiError(
            "MultipleIamArnsProvidedException", "Give either iamUserArn or iamSessionArn, not both"
        )
    if not user_arn and not session_arn:
        raise ApiError("IamArnRequiredException", "An IAM user ARN or IAM session ARN is required")
    if user_arn and not IAM_USER_ARN.fullmatch(user_arn):
        raise ApiError(
            "InvalidIamUserArnException",
            f"{user_arn!r} is not an IAM user ARN (arn:aws:iam::<account-id>:user/<user-name>)",
        )
    if session_arn and not IAM_SESSION_ARN.fullmatch(session_arn):
        raise ApiError(
            "InvalidIamSessionArnException",
            f"{session_arn!r} is not an IAM session ARN "
            "(arn:aws:sts::<account-id>:assumed-role/<role-name>/<session-name>)",
        )
    existing = ctx.session.get(OnPremisesInstance, name)
    if existing is not None and existing.registered:
        raise ApiError(
            "InstanceNameAlreadyRegisteredException",
            f"An on-premises instance named {name} is already registered",
        )
    column = OnPremisesInstance.iam_user_arn if user_arn else OnPremisesInstance.iam_session_arn
    holder = ctx.session.scalar(
        select(OnPremisesInstance.name).where(
            column == (user_arn or session_arn), OnPremisesInstance.deregister_time.is_(None)
        )
    )
    if holder is not None:
        code = (
            "IamUserArnAlreadyRegisteredException" if user_arn else "IamSessionArnAlreadyRegisteredException"
        )
        raise ApiError(
            code, f"{user_arn or session_arn} is already registered to on-premises instance {holder}"
        )
    if existing is not None:
        # Registering a deregistered name again starts a fresh record: a new instance, no old tags,
        # and no deployment group knows it any more.
        ctx.session.delete(existing)
        ctx.session.flush()
        forget_instances(ctx.session, [name])
    ctx.session.add(
        OnPremisesInstance(
            name=name, iam_user_arn=user_arn, iam_session_arn=session_arn, register_time=ctx.now
        )
    )
    try:
        ctx.session.flush()
    except IntegrityError:  # a concurrent registration of the same name or ARN won the race
        raise ApiError(
            "InstanceNameAlreadyRegisteredException",
            f"On-premises instance {name} (or its IAM ARN) was registered by a concurrent request",
        ) from None
    # A group that selects an instance without tags (none by default) deploys its revision to it now.
    instances_changed(ctx.session, [name], ctx.now, ctx.settings)


@operation("DeregisterOnPremisesInstance")
def deregister_on_premises_instance(ctx: OperationContext, params: dict[str, Any]) -> None:
    # Deregistering an unknown or already deregistered instance succeeds (the model lists no
    # not-found error here), so retries are harmless. Tags are kept, as the guide says of this call.
    instance = ctx.session.get(OnPremisesInstance, _check_name(params["instanceName"]))
    if instance is not None and instance.registered:
        instance.deregister_time = ctx.now


@operation("GetOnPremisesInstance")
def get_on_premises_instance(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    name = _check_name(params["instanceName"])
    instance = _load(ctx, [name]).get(name)
    if instance is None:
        raise ApiError(
            "InstanceNotRegisteredException", f"No on-premises instance named {name} is registered"
        )
    return {"instanceInfo": instance_info(ctx, instance)}


@operation("BatchGetOnPremisesInstances")
def batch_get_on_premises_instances(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    names = _check_names(ctx, params["instanceNames"], "BatchLimitExceededException")
    found = _load(ctx, names)
    # Unknown names are left out of the answer: the model lists no not-found error for this call.
    return {"instanceInfos": [instance_info(ctx, found[name]) for name in names if name in found]}


def _tag_filters(params: dict[str, Any]) -> TagSet | None:
    filters = params.get("tagFilters")
    if not filters:
        return None
    try:
        return TagSet.single_group(TagFilter.from_wire(f) for f in filters)
    except TagFilterError as error:
        raise ApiError("InvalidTagFilterException", f"tagFilters: {error}") from None


@operation("ListOnPremisesInstances")
def list_on_premises_instances(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    stmt = select(OnPremisesInstance).options(selectinload(OnPremisesInstance.tags))
    status = params.get("registrationStatus")
    if status == "Registered":
        stmt = stmt.where(OnPremisesInstance.deregister_time.is_(None))
    elif status == "Deregistered":
        stmt = stmt.where(OnPremisesInstance.deregister_time.is_not(None))
    tag_set = _tag_filters(params)
    names = [
        instance.name
        for instance in ctx.session.scalars(stmt.order_by(OnPremisesInstance.name))
        if tag_set is None or tag_set.matches({tag.key: tag.value for tag in instance.tags})
    ]
    page, next_token = offset_page(ctx, params, names)
    result: dict[str, Any] = {"instanceNames": page}
    if next_token:
        result["nextToken"] = next_token
    return result


def _check_instance_tags(tags: Sequence[dict[str, Any]]) -> None:
    if not tags:
        raise ApiError("TagRequiredException", "tags must name at least one tag")
    for index, tag in enumerate(tags):
        key, value = tag.get("Key"), tag.get("Value") or ""
        if not key:
            # The guide: CodeDeploy does not allow on-premises instance tags that have values only.
            raise ApiError("InvalidTagException", f"tags[{index}]: an on-premises instance tag needs a Key")
        if len(key) > MAX_TAG_KEY or len(value) > MAX_TAG_VALUE:
            raise ApiError(
                "InvalidTagException",
                f"tags[{index}]: keys are at most {MAX_TAG_KEY} characters, values at most {MAX_TAG_VALUE}",
            )


def _instances_for_tagging(
    ctx: OperationContext, params: dict[str, Any], *, registered_only: bool
) -> list[OnPremisesInstance]:
    names = _check_names(ctx, params["instanceNames"], "InstanceLimitExceededException")
    _check_instance_tags(params["tags"])
    found = _load(ctx, names)
    absent = [n for n in names if n not in found or (registered_only and not found[n].registered)]
    if absent:
        raise ApiError(
            "InstanceNotRegisteredException",
            f"These on-premises instances are not registered: {', '.join(absent)}",
        )
    return [found[name] for name in names]


@operation("AddTagsToOnPremisesInstances")
def add_tags_to_on_premises_instances(ctx: OperationContext, params: dict[str, Any]) -> None:
    instances = _instances_for_tagging(ctx, params, registered_only=True)
    wanted = {tag["Key"]: tag.get("Value") or "" for tag in params["tags"]}
    limit = ctx.settings.quotas.tags_per_on_premises_instance
    for instance in instances:
        current = {tag.key: tag for tag in instance.tags}
        if len(current.keys() | wanted.keys()) > limit:
            raise ApiError(
                "TagLimitExceededException",
                f"On-premises instance {instance.name} would have more than {limit} tags",
            )
        for key, value in wanted.items():
            if key in current:
                current[key].value = value
            else:
                instance.tags.append(OnPremisesInstanceTag(key=key, value=value))
    ctx.session.flush()
    # Instances these tags bring into a deployment group get its revision (engine.new_instances).
    instances_changed(ctx.session, [instance.name for instance in instances], ctx.now, ctx.settings)


@operation("RemoveTagsFromOnPremisesInstances")
def remove_tags_from_on_premises_instances(ctx: OperationContext, params: dict[str, Any]) -> None:
    # A tag is removed when its key matches and, if a Value is given, its value matches too.
    instances = _instances_for_tagging(ctx, params, registered_only=False)
    for instance in instances:
        for tag in list(instance.tags):
            for wanted in params["tags"]:
                if tag.key == wanted["Key"] and wanted.get("Value") in (None, tag.value):
                    instance.tags.remove(tag)
                    break
