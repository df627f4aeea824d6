"""EC2 Auto Scaling for blue/green deployments that copy a deployment group's Auto Scaling group
(``greenFleetProvisioningOption`` COPY_AUTO_SCALING_GROUP, guide L603–613, L3134–3152).

I/O only, through the botocore ``autoscaling`` client the server makes like every AWS client
(``integrations.aws_clients``: the standard SDK configuration; ``AWS_ENDPOINT_URL_AUTO_SCALING`` points
it elsewhere, e.g. at moto). What to do with the answers is the engine's business
(``engine.strategies.server_blue_green``):

- :func:`describe_group`: the group to copy (:class:`AutoScalingGroup`);
- :func:`create_copy`: its copy under a new name, sized to the original's healthy in-service
  instances — idempotent by name: a group of that name that already exists is the copy (a restarted
  engine must not launch a second fleet);
- :func:`in_service_instances`: the ids of a group's InService instances;
- :func:`delete_group`: force-delete a group (its instances are terminated); one already gone is fine.

Every failure is an :class:`AutoScalingError` naming the group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from opendeploy.integrations import aws_clients

# Members of an Auto Scaling group that a copy takes over as they are. The load balancers and target
# groups are left out on purpose: the deployment's AllowTraffic registers the replacements itself.
_COPIED = (
    "LaunchConfigurationName",
    "LaunchTemplate",
    "MixedInstancesPolicy",
    "HealthCheckType",
    "HealthCheckGracePeriod",
    "DefaultCooldown",
    "TerminationPolicies",
    "PlacementGroup",
    "NewInstancesProtectedFromScaleIn",
    "CapacityRebalance",
)


class AutoScalingError(Exception):
    """An Auto Scaling call about a group failed, or the group cannot be copied."""


@dataclass(frozen=True)
class AutoScalingGroup:
    """What a copy is made from: the group's name, its settings as DescribeAutoScalingGroups gives them,
    and its instances' ids — all of them, and those InService and Healthy."""

    name: str
    description: Mapping[str, Any]
    instance_ids: tuple[str, ...]
    healthy_instance_ids: tuple[str, ...]


def default_client() -> Any:
    """The server's ``autoscaling`` client (standard SDK configuration, ``integrations.aws_clients``)."""
    return aws_clients.client("autoscaling")


def _describe(client: Any, name: str) -> Mapping[str, Any] | None:
    try:
        answer = client.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise AutoScalingError(f"Auto Scaling group '{name}' could not be described: {error}") from error
    found = [g for g in answer.get("AutoScalingGroups") or [] if g.get("AutoScalingGroupName") == name]
    return found[0] if found else None


def describe_group(name: str, client: Any = None) -> AutoScalingGroup:
    """The Auto Scaling group ``name``; :class:`AutoScalingError` if it does not exist."""
    description = _describe(client or default_client(), name)
    if description is None:
        raise AutoScalingError(f"Auto Scaling group '{name}' does not exist.")
    instances = description.get("Instances") or []
    return AutoScalingGroup(
        name,
        description,
        tuple(i["InstanceId"] for i in instances),
        tuple(
            i["InstanceId"]
            for i in instances
            if i.get("LifecycleState") == "InService" and i.get("HealthStatus") == "Healthy"
        ),
    )


def copy_request(original: AutoScalingGroup, name: str) -> dict[str, Any]:
    """The CreateAutoScalingGroup parameters of a copy of ``original`` called ``name``: its launch
    template or configuration, subnets (else Availability Zones), health checks and propagated tags,
    with as many instances as ``original`` has healthy ones in service."""
    source = original.description
    size = len(original.healthy_instance_ids)
    if size == 0:
        raise AutoScalingError(
            f"Auto Scaling group '{original.name}' has no healthy instance in service: its copy would "
            "have none to deploy to."
        )
    request: dict[str, Any] = {
        "AutoScalingGroupName": name,
        "MinSize": min(int(source.get("MinSize") or 0), size),
        "MaxSize": max(int(source.get("MaxSize") or 0), size),
        "DesiredCapacity": size,
    }
    for member in _COPIED:
        value = source.get(member)
        if value not in (None, "", []):
            request[member] = value
    if "LaunchTemplate" in request:
        request["LaunchTemplate"] = _by_id(request["LaunchTemplate"])
    if "MixedInstancesPolicy" in request:
        policy = dict(request["MixedInstancesPolicy"])
        template = dict(policy.get("LaunchTemplate") or {})
        if template.get("LaunchTemplateSpecification"):
            template["LaunchTemplateSpecification"] = _by_id(template["LaunchTemplateSpecification"])
            policy["LaunchTemplate"] = template
        request["MixedInstancesPolicy"] = policy
    if source.get("VPCZoneIdentifier"):
        request["VPCZoneIdentifier"] = source["VPCZoneIdentifier"]
    elif source.get("AvailabilityZones"):
        request["AvailabilityZones"] = list(source["AvailabilityZones"])
    tags = [
        {
            "Key": tag["Key"],
            "Value": tag.get("Value", ""),
            "PropagateAtLaunch": bool(tag.get("PropagateAtLaunch")),
            "ResourceId": name,
            "ResourceType": "auto-scaling-group",
        }
        for tag in source.get("Tags") or []
        if not str(tag.get("Key", "")).startswith("aws:")
    ]
    if tags:
        request["Tags"] = tags
    return request


def _by_id(template: Mapping[str, Any]) -> dict[str, Any]:
    """A launch template specification as a request takes it: DescribeAutoScalingGroups gives its id and
    its name, CreateAutoScalingGroup wants one of them."""
    spec = dict(template)
    if spec.get("LaunchTemplateId"):
        spec.pop("LaunchTemplateName", None)
    return spec


def create_copy(original: AutoScalingGroup, name: str, client: Any = None) -> bool:
    """Create ``name`` as a copy of ``original`` unless a group ``name`` exists already; True if this
    call created it."""
    client = client or default_client()
    if _describe(client, name) is not None:
        return False
    try:
        client.create_auto_scaling_group(**copy_request(original, name))
    except botocore.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") == "AlreadyExists":
            return False
        raise AutoScalingError(
            f"Auto Scaling group '{name}' (a copy of '{original.name}') could not be created: {error}"
        ) from error
    except botocore.exceptions.BotoCoreError as error:
        raise AutoScalingError(
            f"Auto Scaling group '{name}' (a copy of '{original.name}') could not be created: {error}"
        ) from error
    return True


@dataclass(frozen=True)
class Capacity:
    """A group's desired capacity and the ids of its InService instances."""

    desired: int
    in_service: tuple[str, ...]


def in_service_instances(name: str, client: Any = None) -> Capacity:
    """The group ``name``'s desired capacity and InService instance ids; :class:`AutoScalingError` if the
    group does not exist."""
    description = _describe(client or default_client(), name)
    if description is None:
        raise AutoScalingError(f"Auto Scaling group '{name}' does not exist.")
    return Capacity(
        int(description.get("DesiredCapacity") or 0),
        tuple(
            i["InstanceId"]
            for i in description.get("Instances") or []
            if i.get("LifecycleState") == "InService"
        ),
    )


def delete_group(name: str, client: Any = None) -> bool:
    """Force-delete the group ``name`` (terminating its instances); False if it did not exist."""
    client = client or default_client()
    if _describe(client, name) is None:
        return False
    try:
        client.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise AutoScalingError(f"Auto Scaling group '{name}' could not be deleted: {error}") from error
    return True


def names(groups: Sequence[Any] | None) -> tuple[str, ...]:
    """A deployment group's ``autoScalingGroups`` as stored (names, or ``{"name": …}`` items)."""
    return tuple(g if isinstance(g, str) else str(g.get("name", "")) for g in groups or () if g)
