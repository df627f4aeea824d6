"""Applications: CreateApplication, GetApplication, UpdateApplication (rename), DeleteApplication,
ListApplications and BatchGetApplications.

An application is a name, unique in this server's account and region, with a compute platform
(Server, Lambda or ECS). Deleting it deletes its deployment groups, revisions, deployments and all
their tags (by the database's ON DELETE CASCADE); it does not touch instances or bundles.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from opendeploy.api.codedeploy.registry import OperationContext, operation
from opendeploy.api.codedeploy.resource_tags import apply_tags
from opendeploy.api.errors import ApiError
from opendeploy.api.pagination import keyset_page
from opendeploy.domain.ids import new_uuid
from opendeploy.store.models import Application
from opendeploy.store.tags import TagKind

DEFAULT_COMPUTE_PLATFORM = "Server"


def application_info(application: Application) -> dict[str, Any]:
    """The API's ``ApplicationInfo`` for ``application``."""
    info: dict[str, Any] = {
        "applicationId": application.id,
        "applicationName": application.name,
        "createTime": application.create_time,
        "linkedToGitHub": application.linked_to_github,
        "computePlatform": application.compute_platform,
    }
    if application.github_account_name:
        info["gitHubAccountName"] = application.github_account_name
    return info


def _find(ctx: OperationContext, name: str) -> Application | None:
    return ctx.session.scalar(select(Application).where(Application.name == name))


def _get(ctx: OperationContext, name: str) -> Application:
    application = _find(ctx, name)
    if application is None:
        raise ApiError("ApplicationDoesNotExistException", f"No application found for name: {name}")
    return application


def _already_exists(name: str) -> ApiError:
    return ApiError(
        "ApplicationAlreadyExistsException", f"An application named {name} already exists in this account"
    )


@operation("CreateApplication")
def create_application(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    name = params["applicationName"]
    if _find(ctx, name) is not None:
        raise _already_exists(name)
    limit = ctx.settings.quotas.applications_per_account
    if ctx.session.scalar(select(func.count()).select_from(Application)) >= limit:
        raise ApiError(
            "ApplicationLimitExceededException",
            f"This account already has the maximum of {limit} applications",
        )
    application = Application(
        id=new_uuid(),
        name=name,
        compute_platform=params.get("computePlatform") or DEFAULT_COMPUTE_PLATFORM,
        create_time=ctx.now,
        linked_to_github=False,
    )
    ctx.session.add(application)
    try:
        ctx.session.flush()
    except IntegrityError:  # created by a concurrent request since the check above
        raise _already_exists(name) from None
    if params.get("tags"):
        apply_tags(ctx, TagKind.APPLICATION, application.id, params["tags"], application_id=application.id)
    return {"applicationId": application.id}


@operation("GetApplication")
def get_application(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    return {"application": application_info(_get(ctx, params["applicationName"]))}


@operation("UpdateApplication")
def update_application(ctx: OperationContext, params: dict[str, Any]) -> None:
    name, new_name = params.get("applicationName"), params.get("newApplicationName")
    if not name:
        raise ApiError("ApplicationNameRequiredException", "applicationName is required")
    if not new_name:
        raise ApiError("ApplicationNameRequiredException", "newApplicationName is required")
    application = _get(ctx, name)
    if new_name == name:
        return
    if _find(ctx, new_name) is not None:
        raise _already_exists(new_name)
    application.name = new_name
    try:
        ctx.session.flush()
    except IntegrityError:
        raise _already_exists(new_name) from None


@operation("DeleteApplication")
def delete_application(ctx: OperationContext, params: dict[str, Any]) -> None:
    # Like AWS, deleting an application that does not exist succeeds (the model lists no
    # ApplicationDoesNotExistException here), so a retried delete is harmless.
    ctx.session.execute(delete(Application).where(Application.name == params["applicationName"]))


@operation("ListApplications")
def list_applications(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    names, next_token = keyset_page(ctx, params, select(Application.name), [Application.name])
    result: dict[str, Any] = {"applications": names}
    if next_token:
        result["nextToken"] = next_token
    return result


@operation("BatchGetApplications")
def batch_get_applications(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    names = list(dict.fromkeys(params["applicationNames"]))
    if not names:
        raise ApiError(
            "ApplicationNameRequiredException", "applicationNames must name at least one application"
        )
    limit = ctx.settings.quotas.batch_get_items
    if len(names) > limit:
        raise ApiError(
            "BatchLimitExceededException", f"At most {limit} applications can be requested at once"
        )
    found = {a.name: a for a in ctx.session.scalars(select(Application).where(Application.name.in_(names)))}
    missing = [name for name in names if name not in found]
    if missing:
        raise ApiError(
            "ApplicationDoesNotExistException", f"No application found for name: {', '.join(missing)}"
        )
    return {"applicationsInfo": [application_info(found[name]) for name in names]}
