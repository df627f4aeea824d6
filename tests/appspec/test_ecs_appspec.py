"""Amazon ECS AppSpec: the guide's examples load, in YAML and JSON, and every property is checked."""

from __future__ import annotations

import json

import pytest
from appspec_fixtures import fixture_text

from opendeploy.appspec import (
    AppSpecError,
    AwsVpcConfiguration,
    CapacityProviderStrategyItem,
    EcsServiceResource,
    load_appspec,
    load_ecs_appspec,
)

TASK_DEFINITION = "arn:aws:ecs:us-east-1:111222333444:task-definition/my-task-definition-family-name:1"
EXPECTED_SERVICE = EcsServiceResource(
    task_definition=TASK_DEFINITION,
    container_name="SampleApplicationName",
    container_port=80,
    platform_version="LATEST",
    network_configuration=AwsVpcConfiguration(
        ("subnet-1234abcd", "subnet-5678abcd"), ("sg-12345678",), "ENABLED"
    ),
    capacity_provider_strategy=(
        CapacityProviderStrategyItem("FARGATE_SPOT", 1, 2),
        CapacityProviderStrategyItem("FARGATE", 0, 1),
    ),
)
EXPECTED_HOOKS = {
    "BeforeInstall": "LambdaFunctionToValidateBeforeInstall",
    "AfterInstall": "LambdaFunctionToValidateAfterInstall",
    "AfterAllowTestTraffic": "LambdaFunctionToValidateAfterTestTrafficStarts",
    "BeforeAllowTraffic": "LambdaFunctionToValidateBeforeAllowingProductionTraffic",
    "AfterAllowTraffic": "LambdaFunctionToValidateAfterAllowingProductionTraffic",
}

MINIMAL = f"""\
version: 0.0
Resources:
  - TargetService:
      Type: AWS::ECS::Service
      Properties:
        TaskDefinition: "{TASK_DEFINITION}"
        LoadBalancerInfo:
          ContainerName: "web"
          ContainerPort: 8080
"""


@pytest.mark.parametrize("fixture", ["ecs_appspec_full_yaml.yml", "ecs_appspec_full_json.json"])
def test_full_examples_load(fixture: str) -> None:
    """Guide L24874–L24903 (YAML) and L24907–L24968 (JSON); the hook order is the file's (L24970–L24994)."""
    spec = load_ecs_appspec(fixture_text(fixture), fixture)
    assert spec.version == "0.0"
    assert spec.target_service == EXPECTED_SERVICE
    assert spec.hooks == EXPECTED_HOOKS
    assert list(spec.hooks) == list(EXPECTED_HOOKS)
    assert spec.source_name == fixture


@pytest.mark.parametrize("fixture", ["ecs_hooks_section_yaml.yml", "ecs_hooks_section_json.json"])
def test_hooks_section_fragments_load(fixture: str) -> None:
    """Guide L24049–L24054 (YAML) and L24058–L24074 (JSON), wrapped into whole AppSpecs."""
    if fixture.endswith(".json"):
        document = json.loads(fixture_text(fixture))
        document |= {"version": 0.0, "Resources": [json.loads(json.dumps(_minimal_resource()))]}
        text = json.dumps(document)
    else:
        text = MINIMAL + fixture_text(fixture)
    spec = load_ecs_appspec(text)
    assert list(spec.hooks) == [
        "BeforeInstall",
        "AfterInstall",
        "AfterAllowTestTraffic",
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
    ]
    assert spec.hook_function("AfterAllowTestTraffic") == "AfterAllowTestTrafficHookFunctionName"


def _minimal_resource() -> dict:
    return {
        "TargetService": {
            "Type": "AWS::ECS::Service",
            "Properties": {
                "TaskDefinition": TASK_DEFINITION,
                "LoadBalancerInfo": {"ContainerName": "web", "ContainerPort": 8080},
            },
        }
    }


def test_minimal_service_takes_the_guide_defaults() -> None:
    """Guide L23658–L23679: platform version LATEST, the current network settings, and no capacity provider
    strategy."""
    spec = load_ecs_appspec(MINIMAL)
    assert spec.target_service == EcsServiceResource(TASK_DEFINITION, "web", 8080)
    assert spec.target_service.platform_version == "LATEST"
    assert spec.target_service.network_configuration is None
    assert spec.target_service.capacity_provider_strategy == ()
    assert spec.hooks == {}


def test_task_definition_revision_is_optional() -> None:
    """Guide L23648–L23651: without :revision ECS uses the latest ACTIVE revision."""
    arn = "arn:aws:ecs:eu-west-1:111222333444:task-definition/web"
    spec = load_ecs_appspec(MINIMAL.replace(TASK_DEFINITION, arn))
    assert spec.target_service.task_definition == arn


def test_keys_match_whatever_their_case() -> None:
    text = (
        MINIMAL.lower()
        .replace(TASK_DEFINITION.lower(), TASK_DEFINITION)
        .replace("aws::ecs::service", "AWS::ECS::Service")
    )
    spec = load_ecs_appspec(text)
    assert spec.target_service.container_port == 8080
    assert spec.target_service.logical_name == "targetservice"


def test_comma_separated_subnets_are_read_as_a_list() -> None:
    """Guide L23666–L23669 calls Subnets and SecurityGroups "comma-separated list"s."""
    text = MINIMAL + (
        "        NetworkConfiguration:\n"
        "          AwsvpcConfiguration:\n"
        "            Subnets: subnet-1, subnet-2\n"
        "            SecurityGroups: sg-1\n"
        "            AssignPublicIp: DISABLED\n"
    )
    network = load_ecs_appspec(text).target_service.network_configuration
    assert network == AwsVpcConfiguration(("subnet-1", "subnet-2"), ("sg-1",), "DISABLED")


def test_empty_network_configuration_keeps_the_current_settings() -> None:
    """Guide L23678–L23679: if none is specified, CodeDeploy uses the current network settings."""
    text = MINIMAL + "        NetworkConfiguration:\n          AwsvpcConfiguration:\n"
    assert load_ecs_appspec(text).target_service.network_configuration is None


def with_properties(extra: str) -> str:
    return MINIMAL + "".join(f"        {line}\n" for line in extra.splitlines())


PROPERTIES = "Resources[0].TargetService.Properties"


@pytest.mark.parametrize(
    ("text", "key_path", "gist"),
    [
        (MINIMAL.replace(TASK_DEFINITION, "my-task"), f"{PROPERTIES}.TaskDefinition", "task definition ARN"),
        (
            MINIMAL.replace(TASK_DEFINITION, TASK_DEFINITION.replace(":ecs:", ":lambda:")),
            f"{PROPERTIES}.TaskDefinition",
            "task definition ARN",
        ),
        (MINIMAL.replace("8080", "http"), f"{PROPERTIES}.LoadBalancerInfo.ContainerPort", "port number"),
        (MINIMAL.replace("8080", "70000"), f"{PROPERTIES}.LoadBalancerInfo.ContainerPort", "1-65535"),
        (MINIMAL.replace("8080", "80.5"), f"{PROPERTIES}.LoadBalancerInfo.ContainerPort", "got 80.5"),
        (
            MINIMAL.replace('"web"', '"my web"'),
            f"{PROPERTIES}.LoadBalancerInfo.ContainerName",
            "container name",
        ),
        (
            MINIMAL.replace('          ContainerName: "web"\n', ""),
            f"{PROPERTIES}.LoadBalancerInfo.ContainerName",
            "required",
        ),
        (
            MINIMAL.replace("AWS::ECS::Service", "AWS::ECS::TaskSet"),
            "Resources[0].TargetService.Type",
            "AWS::ECS::Service",
        ),
        (
            MINIMAL.replace("TargetService", "MyService"),
            "Resources[0].MyService",
            "must be named TargetService",
        ),
        (with_properties("DesiredCount: 3"), f"{PROPERTIES}.DesiredCount", "unknown key"),
        (
            with_properties("NetworkConfiguration:\n  AwsvpcConfiguration:\n    Subnets: [subnet-1]"),
            f"{PROPERTIES}.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups",
            "all or none",
        ),
        (
            with_properties(
                "NetworkConfiguration:\n  AwsvpcConfiguration:\n    Subnets: [s-1]\n"
                "    SecurityGroups: [sg-1]\n    AssignPublicIp: YES"
            ),
            f"{PROPERTIES}.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp",
            "ENABLED, DISABLED",
        ),
        (
            with_properties(
                "NetworkConfiguration:\n  AwsvpcConfiguration:\n    Subnets: []\n    SecurityGroups: [sg-1]\n"
                "    AssignPublicIp: ENABLED"
            ),
            f"{PROPERTIES}.NetworkConfiguration.AwsvpcConfiguration.Subnets",
            "at least one subnet",
        ),
        (
            with_properties(
                "CapacityProviderStrategy:\n  - CapacityProvider: A\n    Base: 1\n"
                "  - CapacityProvider: B\n    Base: 2\n    Weight: 1"
            ),
            f"{PROPERTIES}.CapacityProviderStrategy",
            "only one capacity provider may have a base",
        ),
        (
            with_properties("CapacityProviderStrategy:\n  - CapacityProvider: A\n  - CapacityProvider: B"),
            f"{PROPERTIES}.CapacityProviderStrategy",
            "at least one must have a Weight above 0",
        ),
        (
            with_properties("CapacityProviderStrategy:\n  - CapacityProvider: A\n    Weight: -1"),
            f"{PROPERTIES}.CapacityProviderStrategy[0].Weight",
            "from 0 to 1000",
        ),
        (
            with_properties("CapacityProviderStrategy:\n  - CapacityProvider: A\n    Base: 100001"),
            f"{PROPERTIES}.CapacityProviderStrategy[0].Base",
            "from 0 to 100000",
        ),
        (
            with_properties("CapacityProviderStrategy:\n  - Weight: 1"),
            f"{PROPERTIES}.CapacityProviderStrategy[0].CapacityProvider",
            "required",
        ),
        (
            with_properties(
                "CapacityProviderStrategy:\n  - CapacityProvider: A\n    Weight: 1\n"
                "  - CapacityProvider: A\n    Weight: 2"
            ),
            f"{PROPERTIES}.CapacityProviderStrategy[1].CapacityProvider",
            "listed twice",
        ),
        (
            MINIMAL + "Hooks:\n  - AfterAllowTestTrafic: check\n",
            "Hooks[0].AfterAllowTestTrafic",
            "did you mean 'AfterAllowTestTraffic'?",
        ),
        (
            MINIMAL + "Hooks:\n  - AllowTestTraffic: check\n",
            "Hooks[0].AllowTestTraffic",
            "run by CodeDeploy itself",
        ),
        (
            MINIMAL + "Hooks:\n  - ApplicationStop: check\n",
            "Hooks[0].ApplicationStop",
            "not a lifecycle event of Amazon ECS",
        ),
    ],
)
def test_bad_service_properties_are_named(text: str, key_path: str, gist: str) -> None:
    with pytest.raises(AppSpecError) as caught:
        load_ecs_appspec(text)
    assert caught.value.key_path == key_path
    assert gist in str(caught.value)
    assert caught.value.line is not None


def test_exactly_one_resource() -> None:
    resources = MINIMAL.split("Resources:\n", 1)[1]
    with pytest.raises(AppSpecError, match="exactly one resource"):
        load_ecs_appspec("version: 0.0\nResources:\n" + resources + resources)


def test_load_appspec_dispatches_on_the_compute_platform() -> None:
    assert load_appspec(MINIMAL, "ECS").target_service.container_name == "web"
