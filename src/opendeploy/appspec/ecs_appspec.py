"""The Amazon ECS AppSpec: parse YAML or JSON and check it into an EcsAppSpec (guide L23155–L23188,
L23567–L23711, L23996–L24130).

Keys match whatever their case, as for Lambda; values (the resource type, ENABLED/DISABLED) are exact.
"""

from __future__ import annotations

import re

from opendeploy.appspec.aws_shapes import enum_values, integer_range
from opendeploy.appspec.checks import Checker, describe, item
from opendeploy.appspec.document import Node, Scalar
from opendeploy.appspec.lifecycle_events import ECS_ALL_EVENTS, ECS_HOOK_EVENTS
from opendeploy.appspec.model import (
    AwsVpcConfiguration,
    CapacityProviderStrategyItem,
    EcsAppSpec,
    EcsServiceResource,
)
from opendeploy.appspec.resources import check_single_resource, key_path, present
from opendeploy.appspec.serverless_appspec import load_top_level

RESOURCE_KEYS = ("Type", "Properties")
PROPERTY_KEYS = (
    "TaskDefinition",
    "LoadBalancerInfo",
    "PlatformVersion",
    "NetworkConfiguration",
    "CapacityProviderStrategy",
)
LOAD_BALANCER_INFO_KEYS = ("ContainerName", "ContainerPort")
NETWORK_KEYS = ("AwsvpcConfiguration",)
AWSVPC_KEYS = ("Subnets", "SecurityGroups", "AssignPublicIp")
CAPACITY_PROVIDER_KEYS = ("Base", "CapacityProvider", "Weight")
ECS_SERVICE_TYPE = "AWS::ECS::Service"
TARGET_SERVICE = "TargetService"
MAX_SUBNETS = 16
MAX_SECURITY_GROUPS = 5
"""ECS's AwsVpcConfiguration limits (ECS API reference, as botocore's model documents them)."""

# arn:aws:ecs:region:account-id:task-definition/family[:revision] (guide L23642–L23651); a family is up to
# 255 letters, digits, hyphens and underscores.
TASK_DEFINITION_ARN = re.compile(
    r"arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition/[A-Za-z0-9_-]{1,255}(:[1-9]\d*)?"
)
CONTAINER_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")


def load_ecs_appspec(text: str, source_name: str = "appspec.yml") -> EcsAppSpec:
    """Parse and check an Amazon ECS AppSpec (YAML or JSON). Raises AppSpecError naming every problem."""
    top = load_top_level(
        text,
        source_name,
        platform="Amazon ECS",
        check_resources=_check_service,
        all_events=ECS_ALL_EVENTS,
        hook_events=ECS_HOOK_EVENTS,
    )
    return EcsAppSpec(
        version=top.version, target_service=top.resource, hooks=top.hooks, source_name=source_name
    )


def _check_service(checker: Checker, node: Node, path: str) -> EcsServiceResource | None:
    resource = check_single_resource(
        checker, node, path, platform="ECS", example=TARGET_SERVICE, fixed_name=TARGET_SERVICE
    )
    if resource is None:
        return None
    logical_name, body_path, body = resource
    before = len(checker.problems)
    fields = checker.fields(
        body,
        body_path,
        RESOURCE_KEYS,
        required=RESOURCE_KEYS,
        case_insensitive=True,
        where="in the ECS resource",
    )
    if (node_ := present(fields, "Type")) is not None:
        checker.choice(node_, key_path(body_path, fields, "Type"), [ECS_SERVICE_TYPE])
    properties_node = present(fields, "Properties")
    if properties_node is None:
        return None
    path = key_path(body_path, fields, "Properties")
    properties = checker.mapping(properties_node, path, "a mapping with TaskDefinition, LoadBalancerInfo, …")
    if properties is None:
        return None
    props = checker.fields(
        properties,
        path,
        PROPERTY_KEYS,
        required=("TaskDefinition", "LoadBalancerInfo"),
        case_insensitive=True,
        where="in the ECS service's properties",
    )
    task_definition = None
    if (node_ := present(props, "TaskDefinition")) is not None:
        task_definition = checker.string(
            node_, key_path(path, props, "TaskDefinition"), "a task definition ARN"
        )
        if task_definition is not None and not TASK_DEFINITION_ARN.fullmatch(task_definition):
            checker.report(
                key_path(path, props, "TaskDefinition"),
                node_,
                "must be a task definition ARN such as "
                "arn:aws:ecs:us-east-1:111222333444:task-definition/family:1, got " + repr(task_definition),
            )
    container = None
    if (node_ := present(props, "LoadBalancerInfo")) is not None:
        container = _check_load_balancer_info(checker, node_, key_path(path, props, "LoadBalancerInfo"))
    platform_version = "LATEST"
    if (node_ := present(props, "PlatformVersion")) is not None:
        platform_version = checker.string(
            node_, key_path(path, props, "PlatformVersion"), "a Fargate platform version such as LATEST"
        )
    network = None
    if (node_ := present(props, "NetworkConfiguration")) is not None:
        network = _check_network(checker, node_, key_path(path, props, "NetworkConfiguration"))
    strategy: tuple[CapacityProviderStrategyItem, ...] = ()
    if (node_ := present(props, "CapacityProviderStrategy")) is not None:
        strategy = _check_capacity_providers(
            checker, node_, key_path(path, props, "CapacityProviderStrategy")
        )
    if len(checker.problems) > before or task_definition is None or container is None:
        return None
    return EcsServiceResource(
        task_definition=task_definition,
        container_name=container[0],
        container_port=container[1],
        platform_version=platform_version or "LATEST",
        network_configuration=network,
        capacity_provider_strategy=strategy,
        logical_name=logical_name,
    )


def _check_load_balancer_info(checker: Checker, node: Node, path: str) -> tuple[str, int] | None:
    mapping = checker.mapping(node, path, "a mapping with ContainerName and ContainerPort")
    if mapping is None:
        return None
    fields = checker.fields(
        mapping,
        path,
        LOAD_BALANCER_INFO_KEYS,
        required=LOAD_BALANCER_INFO_KEYS,
        case_insensitive=True,
        where="in LoadBalancerInfo",
    )
    name = port = None
    if (node_ := present(fields, "ContainerName")) is not None:
        name = checker.string(node_, key_path(path, fields, "ContainerName"), "a container name")
        if name is not None and not CONTAINER_NAME.fullmatch(name):
            checker.report(
                key_path(path, fields, "ContainerName"),
                node_,
                f"must be a container name (up to 255 letters, digits, - and _), got {name!r}",
            )
            name = None
    if (node_ := present(fields, "ContainerPort")) is not None:
        # A number (guide L23640); the guide's own template quotes it, so "80" is read as 80.
        port = checker.integer(
            node_,
            key_path(path, fields, "ContainerPort"),
            minimum=1,
            maximum=65535,
            what="a port number, 1-65535",
        )
    if name is None or port is None:
        return None
    return (name, port)


def _check_network(checker: Checker, node: Node, path: str) -> AwsVpcConfiguration | None:
    mapping = checker.mapping(node, path, "a mapping with AwsvpcConfiguration")
    if mapping is None:
        return None
    fields = checker.fields(
        mapping, path, NETWORK_KEYS, case_insensitive=True, where="in NetworkConfiguration"
    )
    vpc_node = present(fields, "AwsvpcConfiguration")
    if vpc_node is None:
        return None  # nothing given: the service keeps its network settings (guide L23678–L23679)
    vpc_path = key_path(path, fields, "AwsvpcConfiguration")
    vpc = checker.mapping(vpc_node, vpc_path, "a mapping with Subnets, SecurityGroups and AssignPublicIp")
    if vpc is None:
        return None
    settings = checker.fields(
        vpc, vpc_path, AWSVPC_KEYS, case_insensitive=True, where="in AwsvpcConfiguration"
    )
    given = [key for key in AWSVPC_KEYS if present(settings, key) is not None]
    if not given:
        return None
    for key in AWSVPC_KEYS:
        if key not in given:
            checker.report(
                key_path(vpc_path, settings, key),
                vpc.line,
                f"is required when {' and '.join(given)} {'is' if len(given) == 1 else 'are'} given: "
                "all or none of Subnets, SecurityGroups and AssignPublicIp must be specified",
            )
    subnets = groups = assign = None
    if (node_ := present(settings, "Subnets")) is not None:
        subnets = _check_id_list(
            checker, node_, key_path(vpc_path, settings, "Subnets"), "subnet", MAX_SUBNETS
        )
    if (node_ := present(settings, "SecurityGroups")) is not None:
        groups = _check_id_list(
            checker,
            node_,
            key_path(vpc_path, settings, "SecurityGroups"),
            "security group",
            MAX_SECURITY_GROUPS,
        )
    if (node_ := present(settings, "AssignPublicIp")) is not None:
        assign = checker.choice(
            node_,
            key_path(vpc_path, settings, "AssignPublicIp"),
            enum_values("ecs", "AwsVpcConfiguration", "assignPublicIp"),
        )
    if subnets is None or groups is None or assign is None:
        return None
    return AwsVpcConfiguration(subnets=subnets, security_groups=groups, assign_public_ip=assign)


def _check_id_list(checker: Checker, node: Node, path: str, kind: str, limit: int) -> tuple[str, ...] | None:
    """A list of IDs, or one comma-separated string of them (the guide calls both "comma-separated list")."""
    if isinstance(node, Scalar) and isinstance(node.value, str):
        ids: tuple[str, ...] | None = tuple(part.strip() for part in node.value.split(","))
        if any(not part for part in ids or ()):
            checker.report(path, node, f"must list {kind} IDs separated by commas, got {describe(node)}")
            return None
    else:
        ids = checker.string_list(node, path, f"a list of {kind} IDs")
    if ids is None:
        return None
    if not ids:
        checker.report(path, node, f"must list at least one {kind}")
        return None
    if len(ids) > limit:
        checker.report(path, node, f"may list at most {limit} {kind}s, got {len(ids)}")
        return None
    if len(set(ids)) != len(ids):
        checker.report(path, node, f"lists a {kind} more than once")
        return None
    return ids


def _check_capacity_providers(
    checker: Checker, node: Node, path: str
) -> tuple[CapacityProviderStrategyItem, ...]:
    sequence = checker.sequence(node, path, "a list of '- CapacityProvider: … Base: … Weight: …' entries")
    if sequence is None:
        return ()
    base_min, base_max = integer_range("ecs", "CapacityProviderStrategyItem", "base")
    weight_min, weight_max = integer_range("ecs", "CapacityProviderStrategyItem", "weight")
    items: list[CapacityProviderStrategyItem] = []
    before = len(checker.problems)
    for index, entry in enumerate(sequence.items):
        entry_path = item(path, index)
        mapping = checker.mapping(entry, entry_path, "a mapping with CapacityProvider, Base and Weight")
        if mapping is None:
            continue
        fields = checker.fields(
            mapping,
            entry_path,
            CAPACITY_PROVIDER_KEYS,
            required=("CapacityProvider",),
            case_insensitive=True,
            where="in a capacity provider strategy entry",
        )
        name = None
        if (node_ := present(fields, "CapacityProvider")) is not None:
            name = checker.string(
                node_, key_path(entry_path, fields, "CapacityProvider"), "a capacity provider name"
            )
            if name is not None and any(existing.capacity_provider == name for existing in items):
                checker.report(
                    key_path(entry_path, fields, "CapacityProvider"), node_, f"{name!r} is listed twice"
                )
                name = None
        base = weight = 0
        if (node_ := present(fields, "Base")) is not None:
            base = checker.integer(
                node_,
                key_path(entry_path, fields, "Base"),
                minimum=base_min,
                maximum=base_max,
                what=f"a whole number of tasks from {base_min} to {base_max}",
            )
        if (node_ := present(fields, "Weight")) is not None:
            weight = checker.integer(
                node_,
                key_path(entry_path, fields, "Weight"),
                minimum=weight_min,
                maximum=weight_max,
                what=f"a whole number from {weight_min} to {weight_max}",
            )
        if name is not None and base is not None and weight is not None:
            items.append(CapacityProviderStrategyItem(capacity_provider=name, base=base, weight=weight))
    if len(checker.problems) > before:
        return ()
    with_base = [entry.capacity_provider for entry in items if entry.base > 0]
    if len(with_base) > 1:
        # "Only one capacity provider in a capacity provider strategy can have a base defined" (guide
        # L23687–L23689); the guide's own example writes Base: 0 on the second provider, so 0 counts as none.
        checker.report(
            path,
            sequence,
            f"only one capacity provider may have a base, but {', '.join(with_base)} all have Base above 0",
        )
    if len(items) > 1 and not any(entry.weight > 0 for entry in items):
        checker.report(
            path,
            sequence,
            "with several capacity providers at least one must have a Weight above 0 (guide L23697–L23705)",
        )
    return tuple(items)
