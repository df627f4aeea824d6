"""Which instances a deployment targets: the deployment group's tag filters and tag sets, evaluated over
the registered instances when the deployment starts (and a blue/green deployment's ``targetInstances``, its
replacement environment, the same way).

opendeploy has no EC2 inventory: every host is a registered (on-premises) instance. A group's EC2 tag
filters and EC2 tag set therefore select among the registered instances too, by their tags, exactly as
the on-premises ones do; the group's instances are the union of both selections (the guide's rule for
groups that have both, L11365–11638). Deregistered instances are never selected. Auto Scaling groups
select nothing by themselves; an EC2 instance an Auto Scaling group launched takes part once it is
registered under its EC2 instance id as its instance name (``registered_names``: a blue/green deployment
that copies the group's Auto Scaling group finds its replacement and original instances that way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opendeploy.domain.tag_matching import (
    NO_TAGS,
    TagFilter,
    TaggedInstance,
    TagSet,
    deployment_group_instances,
)
from opendeploy.store.models import DeploymentGroup, OnPremisesInstance, OnPremisesInstanceTag


def _filters(filters: Sequence[Mapping[str, Any]] | None) -> TagSet:
    return TagSet.single_group(TagFilter.from_wire(f) for f in filters or ())


def _tag_set(tag_set: Mapping[str, Any] | None, list_member: str) -> TagSet:
    groups = (tag_set or {}).get(list_member) or []
    return TagSet.from_wire(groups) if groups else NO_TAGS


def _either(filters: TagSet, tag_set: TagSet) -> TagSet:
    # The API lets a group have a filter list or a tag set, not both; take whichever is there.
    return tag_set if tag_set.groups else filters


def registered_instances(session: Session, names: Sequence[str] | None = None) -> list[TaggedInstance]:
    """Every registered instance (or those of ``names``) with its tags (two queries)."""
    chosen = select(OnPremisesInstance.name).where(OnPremisesInstance.deregister_time.is_(None))
    tag_rows = (
        select(OnPremisesInstanceTag.instance_name, OnPremisesInstanceTag.key, OnPremisesInstanceTag.value)
        .join(OnPremisesInstance, OnPremisesInstance.name == OnPremisesInstanceTag.instance_name)
        .where(OnPremisesInstance.deregister_time.is_(None))
    )
    if names is not None:
        chosen = chosen.where(OnPremisesInstance.name.in_(list(names)))
        tag_rows = tag_rows.where(OnPremisesInstance.name.in_(list(names)))
    found = list(session.scalars(chosen))
    tags: dict[str, dict[str, str]] = {name: {} for name in found}
    rows = session.execute(tag_rows)
    for name, key, value in rows:
        tags[name][key] = value or ""
    return [TaggedInstance(name, tags[name]) for name in found]


def group_instances(session: Session, group: DeploymentGroup) -> tuple[str, ...]:
    """The names of the registered instances ``group`` selects now, sorted."""
    if not selects_by_tags(group):
        return ()
    return selected_among(group, registered_instances(session))


def selects_by_tags(group: DeploymentGroup) -> bool:
    """Whether ``group`` names any tag filter or tag set (otherwise it selects no instance)."""
    return any(
        (
            group.on_premises_instance_tag_filters,
            group.ec2_tag_filters,
            group.on_premises_tag_set,
            group.ec2_tag_set,
        )
    )


def selected_among(group: DeploymentGroup, instances: Sequence[TaggedInstance]) -> tuple[str, ...]:
    """The names of those of ``instances`` (registered ones, with their tags) that ``group`` selects."""
    on_premises = _either(
        _filters(group.on_premises_instance_tag_filters),
        _tag_set(group.on_premises_tag_set, "onPremisesTagSetList"),
    )
    ec2 = _either(_filters(group.ec2_tag_filters), _tag_set(group.ec2_tag_set, "ec2TagSetList"))
    if not on_premises.groups and not ec2.groups:
        return ()
    return deployment_group_instances(
        ec2_tag_set=ec2,
        ec2_instances=instances,
        on_premises_tag_set=on_premises,
        on_premises_instances=instances,
    )


def replacement_instances(session: Session, target_instances: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The registered instances a blue/green deployment's ``targetInstances`` name as its replacement
    environment (their ``tagFilters`` or ``ec2TagSet``, matched against every registered instance's tags,
    as a group's EC2 filters are), sorted; Auto Scaling groups name none here."""
    wire = target_instances or {}
    tags = _either(_filters(wire.get("tagFilters")), _tag_set(wire.get("ec2TagSet"), "ec2TagSetList"))
    if not tags.groups:
        return ()
    return deployment_group_instances(ec2_tag_set=tags, ec2_instances=registered_instances(session))


def registered_names(session: Session, names: Sequence[str]) -> tuple[str, ...]:
    """Those of ``names`` (e.g. an Auto Scaling group's EC2 instance ids) that are registered instances,
    in the order given."""
    if not names:
        return ()
    found = set(
        session.scalars(
            select(OnPremisesInstance.name).where(
                OnPremisesInstance.name.in_(list(names)), OnPremisesInstance.deregister_time.is_(None)
            )
        )
    )
    return tuple(name for name in names if name in found)
