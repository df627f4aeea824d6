"""Resource tags repository: the tags of applications, deployment groups and deployment configurations.

Handlers call these with a resource's *internal id* (never its name, so renames keep tags):

- ``put_tags(session, kind, resource_id, tags, *, application_id=None)``: add tags, replacing the value
  of keys already present. ``tags`` is wire form: ``[{"Key": ..., "Value": ...}]``. Pass the owning
  application's id (the application itself, or a deployment group's application) so deleting the
  application deletes the tags by cascade.
- ``remove_tags(session, kind, resource_id, keys)``: remove the named keys (absent keys are ignored).
- ``delete_tags(session, kind, resource_id)``: remove every tag, e.g. when the resource is deleted.
- ``list_tags(session, kind, resource_id)``: wire-form tags in the order they were first added.

``kind`` is a ``TagKind`` (the resource type word of the resource's ARN).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from opendeploy.store.models.tags import ResourceTag


class TagKind(StrEnum):
    APPLICATION = "application"
    DEPLOYMENT_GROUP = "deploymentgroup"
    DEPLOYMENT_CONFIG = "deploymentconfig"


class TagLimitExceeded(ValueError):
    """Adding the tags would give the resource more than the allowed number."""


def list_tags(session: Session, kind: str, resource_id: str) -> list[dict[str, str]]:
    rows = session.scalars(
        select(ResourceTag)
        .where(ResourceTag.resource_kind == str(kind), ResourceTag.resource_id == resource_id)
        .order_by(ResourceTag.id)
    )
    return [{"Key": row.key, "Value": row.value} for row in rows]


def count_tags(session: Session, kind: str, resource_id: str) -> int:
    return session.scalar(
        select(func.count())
        .select_from(ResourceTag)
        .where(ResourceTag.resource_kind == str(kind), ResourceTag.resource_id == resource_id)
    )


def put_tags(
    session: Session,
    kind: str,
    resource_id: str,
    tags: Iterable[Mapping[str, str]],
    *,
    application_id: str | None = None,
    limit: int | None = None,
) -> None:
    """Add ``tags`` to the resource; a key already present gets the new value.

    Raises ``TagLimitExceeded`` (and changes nothing) if the resource would end up with more than
    ``limit`` tags.
    """
    wanted: dict[str, str] = {}
    for tag in tags:
        wanted[tag["Key"]] = tag.get("Value", "") or ""
    existing = {
        row.key: row
        for row in session.scalars(
            select(ResourceTag).where(
                ResourceTag.resource_kind == str(kind), ResourceTag.resource_id == resource_id
            )
        )
    }
    if limit is not None and len(existing.keys() | wanted.keys()) > limit:
        raise TagLimitExceeded(f"a resource can have at most {limit} tags")
    for key, value in wanted.items():
        if key in existing:
            existing[key].value = value
        else:
            session.add(
                ResourceTag(
                    resource_kind=str(kind),
                    resource_id=resource_id,
                    application_id=application_id,
                    key=key,
                    value=value,
                )
            )
    session.flush()


def remove_tags(session: Session, kind: str, resource_id: str, keys: Iterable[str]) -> None:
    keys = list(keys)
    if keys:
        session.execute(
            delete(ResourceTag).where(
                ResourceTag.resource_kind == str(kind),
                ResourceTag.resource_id == resource_id,
                ResourceTag.key.in_(keys),
            )
        )


def delete_tags(session: Session, kind: str, resource_id: str) -> None:
    session.execute(
        delete(ResourceTag).where(
            ResourceTag.resource_kind == str(kind), ResourceTag.resource_id == resource_id
        )
    )
