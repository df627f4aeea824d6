"""``opendeploy targets``: which registered instances a deployment group's tags select right now.

It reads the group (GetDeploymentGroup) and the registered instances with their tags
(ListOnPremisesInstances, BatchGetOnPremisesInstances 25 at a time) through the public API, and applies
the guide's tag rules (``opendeploy.domain.tag_matching``): a filter list is one tag group, a tag set is
up to three, an instance needs one tag of every group. These are the instances a deployment to the
group would target now. As the engine does, the group's EC2 tag filters or tag set select among the
registered instances too (opendeploy has no EC2 inventory: every host is a registered instance), and
the group's instances are the union of both selections; Auto Scaling groups select none. Deregistered
instances never match.

Output: a table (instance, which of the group's criteria matched it, its tags) after a line per
criterion, or ``--output json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click

from opendeploy.cli.codedeploy_client import api_error_text, client_options, codedeploy_client
from opendeploy.domain.tag_matching import (
    NO_TAGS,
    TagFilter,
    TagFilterError,
    TagFilterType,
    TaggedInstance,
    TagSet,
    matching_instances,
)

BATCH_SIZE = 25  # BatchGetOnPremisesInstances returns at most 25 instances (API model)
# criterion key (in --output json) -> its name in the table
CRITERIA_NAMES = {"onPremises": "on-premises tags", "ec2": "EC2 tags"}


@dataclass(frozen=True)
class GroupCriteria:
    """A deployment group's tag criteria: one tag set per kind of instance (empty if none)."""

    on_premises: TagSet
    ec2: TagSet
    auto_scaling_groups: tuple[str, ...]

    def items(self) -> tuple[tuple[str, TagSet], ...]:
        """``(criterion key, tag set)`` for both kinds of instance."""
        return (("onPremises", self.on_premises), ("ec2", self.ec2))


def _tag_set(
    filters: Sequence[Mapping[str, str]] | None, tag_set: Mapping[str, Any] | None, member: str
) -> TagSet:
    # A group has a filter list or a tag set, not both (the API refuses both); the tag set wins if set.
    groups = (tag_set or {}).get(member) or []
    if groups:
        return TagSet.from_wire(groups)
    return TagSet.single_group(TagFilter.from_wire(f) for f in filters or ()) if filters else NO_TAGS


def group_criteria(group: Mapping[str, Any]) -> GroupCriteria:
    """The criteria of a ``deploymentGroupInfo`` (GetDeploymentGroup's answer)."""
    return GroupCriteria(
        on_premises=_tag_set(
            group.get("onPremisesInstanceTagFilters"), group.get("onPremisesTagSet"), "onPremisesTagSetList"
        ),
        ec2=_tag_set(group.get("ec2TagFilters"), group.get("ec2TagSet"), "ec2TagSetList"),
        auto_scaling_groups=tuple(g.get("name", "?") for g in group.get("autoScalingGroups") or ()),
    )


def tagged_instance(info: Mapping[str, Any]) -> TaggedInstance:
    """An ``InstanceInfo`` as tag matching sees it."""
    tags = {tag.get("Key", ""): tag.get("Value") or "" for tag in info.get("tags") or ()}
    return TaggedInstance(info["instanceName"], tags, registered="deregisterTime" not in info)


def matches(criteria: GroupCriteria, instances: Sequence[TaggedInstance]) -> dict[str, list[str]]:
    """Instance name -> the keys of the criteria that select it, for every instance selected (by name)."""
    selected: dict[str, list[str]] = {}
    for name, tag_set in criteria.items():
        for instance_name in matching_instances(tag_set, instances):
            selected.setdefault(instance_name, []).append(name)
    return dict(sorted(selected.items()))


def describe_filter(tag_filter: TagFilter) -> str:
    if tag_filter.type is TagFilterType.KEY_ONLY:
        return f"{tag_filter.key} (any value)"
    if tag_filter.type is TagFilterType.VALUE_ONLY:
        return f"(any key)={tag_filter.value}"
    return f"{tag_filter.key}={tag_filter.value}"


def describe_tag_set(tag_set: TagSet) -> str:
    """``(Name=A OR Name=B) AND (Region=North)``: OR within a tag group, AND across groups."""
    groups = [" OR ".join(describe_filter(f) for f in group) for group in tag_set.groups]
    if len(groups) == 1:
        return groups[0]
    return " AND ".join(f"({group})" for group in groups)


def registered_instances(client: Any) -> list[dict[str, Any]]:
    """Every registered on-premises instance's ``InstanceInfo``."""
    names: list[str] = []
    for page in client.get_paginator("list_on_premises_instances").paginate(registrationStatus="Registered"):
        names.extend(page.get("instanceNames") or ())
    infos: list[dict[str, Any]] = []
    for start in range(0, len(names), BATCH_SIZE):
        answer = client.batch_get_on_premises_instances(instanceNames=names[start : start + BATCH_SIZE])
        infos.extend(answer.get("instanceInfos") or ())
    return infos


def _tags_text(info: Mapping[str, Any]) -> str:
    return ", ".join(f"{tag.get('Key', '')}={tag.get('Value') or ''}" for tag in info.get("tags") or ())


def _print_table(
    application: str,
    group: str,
    criteria: GroupCriteria,
    selected: Mapping[str, list[str]],
    infos: Mapping[str, Any],
) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=100_000)  # rows stay one line each in files and pipes
    console.print(f"Deployment group {application}/{group} selects:", markup=False)
    for key, tag_set in criteria.items():
        if tag_set.groups:
            console.print(f"  {CRITERIA_NAMES[key]}: {describe_tag_set(tag_set)}", markup=False)
    if not criteria.on_premises.groups and not criteria.ec2.groups:
        console.print("  no instances by tag: the group has no tag filters and no tag set", markup=False)
    if criteria.auto_scaling_groups:
        console.print(
            f"  Auto Scaling groups {', '.join(criteria.auto_scaling_groups)}: no instances "
            "(opendeploy selects registered instances by their tags only)",
            markup=False,
        )
    console.print(
        f"{len(selected)} of {len(infos)} registered instance{'s' if len(infos) != 1 else ''} match.",
        markup=False,
    )
    if not selected:
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("Instance", no_wrap=True)
    table.add_column("Matched by", no_wrap=True)
    table.add_column("Tags")
    for name, matched_by in selected.items():
        table.add_row(name, ", ".join(CRITERIA_NAMES[key] for key in matched_by), _tags_text(infos[name]))
    console.print(table)


@click.command("targets")
@click.option("--application-name", required=True, help="The deployment group's application.")
@click.option("--deployment-group-name", required=True, help="The deployment group.")
@click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, or JSON for scripts.",
)
@client_options
def targets(
    application_name: str,
    deployment_group_name: str,
    output: str,
    profile: str,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """Show which registered instances a deployment group's tags select now."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = codedeploy_client(profile, region, endpoint_url)
    try:
        group = client.get_deployment_group(
            applicationName=application_name, deploymentGroupName=deployment_group_name
        )["deploymentGroupInfo"]
        criteria = group_criteria(group)
        infos = {info["instanceName"]: info for info in registered_instances(client)}
    except (BotoCoreError, ClientError) as error:
        raise click.ClickException(api_error_text(error)) from None
    except TagFilterError as error:
        raise click.ClickException(f"the deployment group's tags cannot be read: {error}") from None
    selected = matches(criteria, [tagged_instance(info) for info in infos.values()])
    if output == "json":
        document = {
            "applicationName": application_name,
            "deploymentGroupName": deployment_group_name,
            "registeredInstances": len(infos),
            "instances": [
                {
                    "instanceName": name,
                    "instanceArn": infos[name].get("instanceArn"),
                    "tags": infos[name].get("tags") or [],
                    "matchedBy": matched_by,
                }
                for name, matched_by in selected.items()
            ],
        }
        click.echo(json.dumps(document, indent=2))
        return
    _print_table(application_name, deployment_group_name, criteria, selected, infos)
