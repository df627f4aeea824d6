"""RegisterApplicationRevision, GetApplicationRevision, ListApplicationRevisions,
BatchGetApplicationRevisions.

A revision is registered once per application under its location's identity (domain.revision_location);
registering it again keeps its registration time and updates its description. CreateDeployment
registers the revision it deploys if needed and stamps its first and last use. A revision's
``deploymentGroups`` are the groups whose target revision (last successful deployment) it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.exc import IntegrityError

from opendeploy.api.codedeploy.lookups import application_by_name
from opendeploy.api.codedeploy.registry import OperationContext, operation
from opendeploy.api.errors import ApiError
from opendeploy.api.pagination import keyset_page
from opendeploy.domain import revision_location
from opendeploy.domain.ids import new_uuid
from opendeploy.domain.statuses import DeploymentStatus
from opendeploy.store.models import Application, Deployment, DeploymentGroup, Revision

# Longest description of a revision or a deployment (decision: the guide sets none; 1 KiB of text).
MAX_DESCRIPTION = 1024


def check_description(description: str | None) -> None:
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise ApiError(
            "DescriptionTooLongException",
            f"The description is {len(description)} characters long; the limit is {MAX_DESCRIPTION}",
        )


def normalized_location(application: Application, location: dict[str, Any] | None) -> dict[str, Any]:
    if not location:
        raise ApiError("RevisionRequiredException", "A revision location is required")
    try:
        return revision_location.normalize(location, application.compute_platform)
    except revision_location.InvalidRevision as problem:
        raise ApiError("InvalidRevisionException", str(problem)) from None


def find_revision(
    ctx: OperationContext, application: Application, normalized: dict[str, Any]
) -> Revision | None:
    return ctx.session.scalar(
        select(Revision).where(
            Revision.application_id == application.id,
            Revision.location_key == revision_location.identity(normalized),
        )
    )


def register_revision(
    ctx: OperationContext,
    application: Application,
    normalized: dict[str, Any],
    *,
    description: str | None = None,
) -> Revision:
    """The application's revision at ``normalized``, registered now if it was not yet."""
    session = ctx.session
    revision = find_revision(ctx, application, normalized)
    if revision is None:
        s3 = normalized.get("s3Location") or {}
        revision = Revision(
            id=new_uuid(),
            application_id=application.id,
            location_key=revision_location.identity(normalized),
            revision_type=normalized["revisionType"],
            location=normalized,
            s3_bucket=s3.get("bucket"),
            s3_key=s3.get("key"),
            description=description,
            register_time=ctx.now,
        )
        try:
            with session.begin_nested():  # registered concurrently: use that one
                session.add(revision)
        except IntegrityError:
            revision = find_revision(ctx, application, normalized)
            if revision is None:
                raise
    if description is not None:
        revision.description = description
    return revision


def target_revision_groups(ctx: OperationContext, application_id: str) -> dict[str, list[str]]:
    """Revision id -> names of the application's groups whose target revision it is (the revision of
    each group's most recent successful deployment)."""
    latest = (
        select(Deployment.deployment_group_id, func.max(Deployment.complete_time).label("complete_time"))
        .where(Deployment.application_id == application_id, Deployment.status == DeploymentStatus.SUCCEEDED)
        .group_by(Deployment.deployment_group_id)
        .subquery()
    )
    rows = ctx.session.execute(
        select(Deployment.revision_id, DeploymentGroup.name)
        .join(
            latest,
            and_(
                Deployment.deployment_group_id == latest.c.deployment_group_id,
                Deployment.complete_time == latest.c.complete_time,
            ),
        )
        .join(DeploymentGroup, DeploymentGroup.id == Deployment.deployment_group_id)
        .where(Deployment.status == DeploymentStatus.SUCCEEDED)
    )
    groups: dict[str, list[str]] = {}
    for revision_id, group_name in rows:
        if revision_id is not None:
            groups.setdefault(revision_id, []).append(group_name)
    return {revision_id: sorted(set(names)) for revision_id, names in groups.items()}


def _revision_info(revision: Revision, target_groups: dict[str, list[str]]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "deploymentGroups": target_groups.get(revision.id, []),
        "registerTime": revision.register_time,
    }
    for member, value in (
        ("description", revision.description),
        ("firstUsedTime", revision.first_used_time),
        ("lastUsedTime", revision.last_used_time),
    ):
        if value is not None:
            info[member] = value
    return info


@operation("RegisterApplicationRevision")
def register_application_revision(ctx: OperationContext, params: dict[str, Any]) -> None:
    application = application_by_name(ctx, params["applicationName"])
    check_description(params.get("description"))
    normalized = normalized_location(application, params.get("revision"))
    register_revision(ctx, application, normalized, description=params.get("description"))
    return None


@operation("GetApplicationRevision")
def get_application_revision(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    application = application_by_name(ctx, params["applicationName"])
    normalized = normalized_location(application, params.get("revision"))
    revision = find_revision(ctx, application, normalized)
    if revision is None:
        raise ApiError(
            "RevisionDoesNotExistException",
            f"No application revision found for this location in application {application.name}",
        )
    return {
        "applicationName": application.name,
        "revision": revision.location,
        "revisionInfo": _revision_info(revision, target_revision_groups(ctx, application.id)),
    }


@operation("BatchGetApplicationRevisions")
def batch_get_application_revisions(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    application = application_by_name(ctx, params["applicationName"])
    locations: list[dict[str, Any]] = params["revisions"]
    limit = ctx.settings.quotas.batch_get_items
    if len(locations) > limit:
        raise ApiError("BatchLimitExceededException", f"At most {limit} revisions per call")
    target_groups = target_revision_groups(ctx, application.id)
    found, missing = [], []
    for index, location in enumerate(locations):
        revision = find_revision(ctx, application, normalized_location(application, location))
        if revision is None:
            missing.append(str(index))
            continue
        found.append(
            {
                "revisionLocation": revision.location,
                "genericRevisionInfo": _revision_info(revision, target_groups),
            }
        )
    response: dict[str, Any] = {"applicationName": application.name, "revisions": found}
    if missing:
        response["errorMessage"] = f"Revisions not found (positions in the request): {', '.join(missing)}"
    return response


_SORT_COLUMNS = {
    "registerTime": Revision.register_time,
    "firstUsedTime": Revision.first_used_time,
    "lastUsedTime": Revision.last_used_time,
}


@operation("ListApplicationRevisions")
def list_application_revisions(ctx: OperationContext, params: dict[str, Any]) -> dict[str, Any]:
    """Revisions filtered by S3 bucket and key prefix and by whether they are some group's target
    revision ("deployed"), sorted by a time column. Without sortBy the order is by registration time;
    a time never set (a revision not used yet) sorts first in ascending order."""
    application = application_by_name(ctx, params["applicationName"])
    bucket, prefix = params.get("s3Bucket"), params.get("s3KeyPrefix")
    if prefix is not None and not bucket:
        raise ApiError("BucketNameFilterRequiredException", "s3KeyPrefix needs s3Bucket")
    stmt: Select[Any] = select(Revision).where(Revision.application_id == application.id)
    if bucket:
        stmt = stmt.where(Revision.revision_type == "S3", Revision.s3_bucket == bucket)
    if prefix:
        stmt = stmt.where(func.substr(Revision.s3_key, 1, len(prefix)) == prefix)
    deployed = params.get("deployed") or "ignore"
    target_groups = target_revision_groups(ctx, application.id)
    if deployed == "include":
        stmt = stmt.where(Revision.id.in_(list(target_groups)))
    elif deployed == "exclude":
        stmt = stmt.where(Revision.id.not_in(list(target_groups)))
    descending = params.get("sortOrder") == "descending"
    column = _SORT_COLUMNS[params.get("sortBy") or "registerTime"]
    # Keyset order over (time with unset times as -1, id): unique, and stable across pages.
    sort_key = func.coalesce(column, -1.0)
    page, next_token = keyset_page(
        ctx,
        params,
        stmt,
        [sort_key, Revision.id],
        descending=descending,
        key=lambda revision: _sort_values(revision, params.get("sortBy") or "registerTime"),
    )
    response: dict[str, Any] = {"revisions": [revision.location for revision in page]}
    if next_token:
        response["nextToken"] = next_token
    return response


def _sort_values(revision: Revision, sort_by: str) -> Iterable[Any]:
    value = {
        "registerTime": revision.register_time,
        "firstUsedTime": revision.first_used_time,
        "lastUsedTime": revision.last_used_time,
    }[sort_by]
    return [-1.0 if value is None else value, revision.id]
