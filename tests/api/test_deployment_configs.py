"""Deployment configurations through boto3 against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid

import pytest
from test_deployment_targets import ROLE, S3_REVISION, active_group

from support.names import unique

# The guide's tables (L14401–14412, L14649–14910), written out independently of the server's code.
PREDEFINED = {
    "CodeDeployDefault.AllAtOnce": ("Server", {"type": "FLEET_PERCENT", "value": 0}, None),
    "CodeDeployDefault.HalfAtATime": ("Server", {"type": "FLEET_PERCENT", "value": 50}, None),
    "CodeDeployDefault.OneAtATime": ("Server", {"type": "MOST_CONCURRENCY", "value": 1}, None),
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes": ("ECS", None, ("TimeBasedLinear", 10, 1)),
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes": ("ECS", None, ("TimeBasedLinear", 10, 3)),
    "CodeDeployDefault.ECSCanary10Percent5Minutes": ("ECS", None, ("TimeBasedCanary", 10, 5)),
    "CodeDeployDefault.ECSCanary10Percent15Minutes": ("ECS", None, ("TimeBasedCanary", 10, 15)),
    "CodeDeployDefault.ECSAllAtOnce": ("ECS", None, ("AllAtOnce",)),
    "CodeDeployDefault.LambdaCanary10Percent5Minutes": ("Lambda", None, ("TimeBasedCanary", 10, 5)),
    "CodeDeployDefault.LambdaCanary10Percent10Minutes": ("Lambda", None, ("TimeBasedCanary", 10, 10)),
    "CodeDeployDefault.LambdaCanary10Percent15Minutes": ("Lambda", None, ("TimeBasedCanary", 10, 15)),
    "CodeDeployDefault.LambdaCanary10Percent30Minutes": ("Lambda", None, ("TimeBasedCanary", 10, 30)),
    "CodeDeployDefault.LambdaLinear10PercentEvery1Minute": ("Lambda", None, ("TimeBasedLinear", 10, 1)),
    "CodeDeployDefault.LambdaLinear10PercentEvery2Minutes": ("Lambda", None, ("TimeBasedLinear", 10, 2)),
    "CodeDeployDefault.LambdaLinear10PercentEvery3Minutes": ("Lambda", None, ("TimeBasedLinear", 10, 3)),
    "CodeDeployDefault.LambdaLinear10PercentEvery10Minutes": ("Lambda", None, ("TimeBasedLinear", 10, 10)),
    "CodeDeployDefault.LambdaAllAtOnce": ("Lambda", None, ("AllAtOnce",)),
}


def _routing(spec: tuple | None) -> dict | None:
    if spec is None:
        return None
    if spec[0] == "AllAtOnce":
        return {"type": "AllAtOnce"}
    if spec[0] == "TimeBasedCanary":
        return {"type": spec[0], "timeBasedCanary": {"canaryPercentage": spec[1], "canaryInterval": spec[2]}}
    return {"type": spec[0], "timeBasedLinear": {"linearPercentage": spec[1], "linearInterval": spec[2]}}


def test_predefined_configurations_are_returned_exactly(codedeploy):
    for name, (platform, minimum, routing) in PREDEFINED.items():
        info = codedeploy.get_deployment_config(deploymentConfigName=name)["deploymentConfigInfo"]
        assert info["deploymentConfigName"] == name
        assert info["computePlatform"] == platform
        assert info.get("minimumHealthyHosts") == minimum, name
        assert info.get("trafficRoutingConfig") == _routing(routing), name
        assert "zonalConfig" not in info  # no predefined configuration is zonal (guide L14656)
        uuid.UUID(info["deploymentConfigId"])
        assert "createTime" in info


def test_list_pages_through_predefined_and_custom(server, codedeploy):
    custom = unique("listed")
    codedeploy.create_deployment_config(
        deploymentConfigName=custom, minimumHealthyHosts={"type": "HOST_COUNT", "value": 1}
    )
    pages = list(codedeploy.get_paginator("list_deployment_configs").paginate())
    assert len(pages) >= 2  # 17 predefined configurations with the test server's page size of 10
    names = [name for page in pages for name in page["deploymentConfigsList"]]
    assert set(PREDEFINED) <= set(names)
    assert custom in names
    assert len(names) == len(set(names))


def test_create_server_configuration_with_minimum_healthy_hosts(codedeploy):
    """Guide L15066: ThreeQuartersHealthy, 75% of the fleet."""
    name = unique("ThreeQuartersHealthy")
    before = time.time()
    created = codedeploy.create_deployment_config(
        deploymentConfigName=name, minimumHealthyHosts={"type": "FLEET_PERCENT", "value": 75}
    )
    info = codedeploy.get_deployment_config(deploymentConfigName=name)["deploymentConfigInfo"]
    assert info["deploymentConfigId"] == created["deploymentConfigId"]
    assert info["minimumHealthyHosts"] == {"type": "FLEET_PERCENT", "value": 75}
    assert info["computePlatform"] == "Server"  # the default platform
    assert before - 1 <= info["createTime"].timestamp() <= time.time() + 1


def test_create_zonal_configuration(codedeploy):
    """Guide L15071–15081: 300Total50PerAZ with a one-hour monitor duration."""
    name = unique("300Total50PerAZ")
    zonal = {
        "monitorDurationInSeconds": 3600,
        "firstZoneMonitorDurationInSeconds": 7200,
        "minimumHealthyHostsPerZone": {"type": "HOST_COUNT", "value": 50},
    }
    codedeploy.create_deployment_config(
        deploymentConfigName=name, minimumHealthyHosts={"type": "HOST_COUNT", "value": 300}, zonalConfig=zonal
    )
    info = codedeploy.get_deployment_config(deploymentConfigName=name)["deploymentConfigInfo"]
    assert info["zonalConfig"] == zonal
    assert info["minimumHealthyHosts"] == {"type": "HOST_COUNT", "value": 300}


@pytest.mark.parametrize("platform", ["Lambda", "ECS"])
def test_create_traffic_routing_configuration(codedeploy, platform):
    """Guide L15083–15099: Canary25Percent45Minutes for Lambda and for ECS."""
    name = unique("Canary25Percent45Minutes")
    routing = {"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 25, "canaryInterval": 45}}
    codedeploy.create_deployment_config(
        deploymentConfigName=name, computePlatform=platform, trafficRoutingConfig=routing
    )
    info = codedeploy.get_deployment_config(deploymentConfigName=name)["deploymentConfigInfo"]
    assert info["computePlatform"] == platform
    assert info["trafficRoutingConfig"] == routing
    assert "minimumHealthyHosts" not in info


def test_server_configuration_with_traffic_routing(server, codedeploy):
    """Extension (issue 11): a Server configuration takes AWS's trafficRoutingConfig (for blue/green
    traffic shifting) beside its required minimumHealthyHosts, through the CLI as the guide writes its
    Lambda/ECS example (L15083–15099) and through boto3; GetDeploymentConfig returns both."""
    canary = unique("ServerCanary25Percent45Minutes")
    server.aws_json(
        "deploy", "create-deployment-config", "--deployment-config-name", canary,
        "--compute-platform", "Server",
        "--minimum-healthy-hosts", "type=FLEET_PERCENT,value=50",
        "--traffic-routing-config",
        "type=TimeBasedCanary,timeBasedCanary={canaryPercentage=25,canaryInterval=45}",
    )  # fmt: skip
    info = server.aws_json("deploy", "get-deployment-config", "--deployment-config-name", canary)
    assert info["deploymentConfigInfo"]["computePlatform"] == "Server"
    assert info["deploymentConfigInfo"]["minimumHealthyHosts"] == {"type": "FLEET_PERCENT", "value": 50}
    assert info["deploymentConfigInfo"]["trafficRoutingConfig"] == _routing(("TimeBasedCanary", 25, 45))

    linear = unique("ServerLinear30Percent")
    routing = _routing(("TimeBasedLinear", 30, 5000))  # no Lambda limit of 2,880 minutes for servers
    codedeploy.create_deployment_config(
        deploymentConfigName=linear,
        computePlatform="Server",
        minimumHealthyHosts={"type": "HOST_COUNT", "value": 1},
        trafficRoutingConfig=routing,
    )
    info = codedeploy.get_deployment_config(deploymentConfigName=linear)["deploymentConfigInfo"]
    assert info["trafficRoutingConfig"] == routing
    assert info["minimumHealthyHosts"] == {"type": "HOST_COUNT", "value": 1}
    assert "zonalConfig" not in info

    exceptions = codedeploy.exceptions
    with pytest.raises(exceptions.InvalidMinimumHealthyHostValueException, match="required"):
        codedeploy.create_deployment_config(
            deploymentConfigName=unique("c"), computePlatform="Server", trafficRoutingConfig=routing
        )
    with pytest.raises(exceptions.InvalidTrafficRoutingConfigurationException, match="between 1 and 99"):
        codedeploy.create_deployment_config(
            deploymentConfigName=unique("c"),
            minimumHealthyHosts={"type": "HOST_COUNT", "value": 1},
            trafficRoutingConfig=_routing(("TimeBasedCanary", 100, 5)),
        )


def test_create_refusals_name_the_problem(codedeploy):
    exceptions = codedeploy.exceptions
    name = unique("dup")
    codedeploy.create_deployment_config(
        deploymentConfigName=name, minimumHealthyHosts={"type": "HOST_COUNT", "value": 0}
    )
    with pytest.raises(exceptions.DeploymentConfigAlreadyExistsException):
        codedeploy.create_deployment_config(
            deploymentConfigName=name, minimumHealthyHosts={"type": "HOST_COUNT", "value": 2}
        )
    with pytest.raises(exceptions.DeploymentConfigAlreadyExistsException):
        codedeploy.create_deployment_config(
            deploymentConfigName="CodeDeployDefault.OneAtATime",
            minimumHealthyHosts={"type": "HOST_COUNT", "value": 1},
        )
    with pytest.raises(exceptions.InvalidDeploymentConfigNameException, match="reserved"):
        codedeploy.create_deployment_config(
            deploymentConfigName="CodeDeployDefault.Mine",
            minimumHealthyHosts={"type": "HOST_COUNT", "value": 1},
        )
    with pytest.raises(exceptions.InvalidDeploymentConfigNameException):
        codedeploy.create_deployment_config(
            deploymentConfigName="no spaces", minimumHealthyHosts={"type": "HOST_COUNT", "value": 1}
        )
    with pytest.raises(exceptions.InvalidMinimumHealthyHostValueException, match="required"):
        codedeploy.create_deployment_config(deploymentConfigName=unique("c"))
    with pytest.raises(exceptions.InvalidMinimumHealthyHostValueException, match="at most 100"):
        codedeploy.create_deployment_config(
            deploymentConfigName=unique("c"), minimumHealthyHosts={"type": "FLEET_PERCENT", "value": 120}
        )
    with pytest.raises(exceptions.InvalidTrafficRoutingConfigurationException, match="between 1 and 99"):
        codedeploy.create_deployment_config(
            deploymentConfigName=unique("c"),
            computePlatform="Lambda",
            trafficRoutingConfig={
                "type": "TimeBasedLinear",
                "timeBasedLinear": {"linearPercentage": 0, "linearInterval": 1},
            },
        )
    with pytest.raises(exceptions.InvalidTrafficRoutingConfigurationException, match="720"):
        codedeploy.create_deployment_config(
            deploymentConfigName=unique("c"),
            computePlatform="Lambda",
            trafficRoutingConfig={
                "type": "TimeBasedLinear",
                "timeBasedLinear": {"linearPercentage": 25, "linearInterval": 721},
            },
        )
    with pytest.raises(exceptions.InvalidZonalDeploymentConfigurationException):
        codedeploy.create_deployment_config(
            deploymentConfigName=unique("c"),
            computePlatform="ECS",
            trafficRoutingConfig={"type": "AllAtOnce"},
            zonalConfig={"monitorDurationInSeconds": 60},
        )
    with pytest.raises(exceptions.InvalidComputePlatformException):
        codedeploy.create_deployment_config(
            deploymentConfigName=unique("c"),
            computePlatform="Mainframe",
            minimumHealthyHosts={"type": "HOST_COUNT", "value": 1},
        )


def test_get_unknown_configuration(codedeploy):
    with pytest.raises(codedeploy.exceptions.DeploymentConfigDoesNotExistException):
        codedeploy.get_deployment_config(deploymentConfigName=unique("nothing"))


def test_predefined_configurations_cannot_be_deleted(codedeploy):
    with pytest.raises(codedeploy.exceptions.InvalidOperationException):
        codedeploy.delete_deployment_config(deploymentConfigName="CodeDeployDefault.AllAtOnce")
    assert codedeploy.get_deployment_config(deploymentConfigName="CodeDeployDefault.AllAtOnce")


def test_a_configuration_in_use_by_a_group_cannot_be_deleted(codedeploy):
    """Guide L15145–15160: a custom configuration in use cannot be deleted."""
    name, application, group = unique("inuse"), unique("app"), unique("dg")
    codedeploy.create_deployment_config(
        deploymentConfigName=name, minimumHealthyHosts={"type": "HOST_COUNT", "value": 1}
    )
    codedeploy.create_application(applicationName=application)
    codedeploy.create_deployment_group(
        applicationName=application, deploymentGroupName=group, serviceRoleArn=ROLE, deploymentConfigName=name
    )
    with pytest.raises(codedeploy.exceptions.DeploymentConfigInUseException, match=group):
        codedeploy.delete_deployment_config(deploymentConfigName=name)
    codedeploy.update_deployment_group(
        applicationName=application,
        currentDeploymentGroupName=group,
        deploymentConfigName="CodeDeployDefault.HalfAtATime",
    )
    codedeploy.delete_deployment_config(deploymentConfigName=name)
    with pytest.raises(codedeploy.exceptions.DeploymentConfigDoesNotExistException):
        codedeploy.get_deployment_config(deploymentConfigName=name)
    # After deletion it can no longer be linked to new groups (guide L15158).
    with pytest.raises(codedeploy.exceptions.DeploymentConfigDoesNotExistException):
        codedeploy.update_deployment_group(
            applicationName=application, currentDeploymentGroupName=group, deploymentConfigName=name
        )


def test_a_configuration_used_by_a_running_deployment_cannot_be_deleted(codedeploy):
    """Decision: "in use" also covers a deployment that has not finished, which names the configuration
    as its own override while its group names another."""
    name = unique("running")
    codedeploy.create_deployment_config(
        deploymentConfigName=name, minimumHealthyHosts={"type": "HOST_COUNT", "value": 0}
    )
    application, group = active_group(codedeploy)  # one instance whose agent never answers
    deployment_id = codedeploy.create_deployment(
        applicationName=application,
        deploymentGroupName=group,
        revision=S3_REVISION,
        deploymentConfigName=name,
    )["deploymentId"]
    with pytest.raises(codedeploy.exceptions.DeploymentConfigInUseException, match=deployment_id):
        codedeploy.delete_deployment_config(deploymentConfigName=name)


def test_deleting_a_configuration_that_does_not_exist_succeeds(codedeploy):
    """The model lists no does-not-exist error for DeleteDeploymentConfig: deletion is idempotent."""
    codedeploy.delete_deployment_config(deploymentConfigName=unique("never"))


def test_custom_configuration_limit(server_factory):
    """Guide quotas table: 50 custom deployment configurations per account (a private server)."""
    server = server_factory("sqlite")
    codedeploy = server.client("codedeploy")
    for n in range(50):
        codedeploy.create_deployment_config(
            deploymentConfigName=f"config-{n}", minimumHealthyHosts={"type": "HOST_COUNT", "value": 1}
        )
    with pytest.raises(codedeploy.exceptions.DeploymentConfigLimitExceededException):
        codedeploy.create_deployment_config(
            deploymentConfigName="config-50", minimumHealthyHosts={"type": "HOST_COUNT", "value": 1}
        )
    codedeploy.delete_deployment_config(deploymentConfigName="config-0")
    codedeploy.create_deployment_config(
        deploymentConfigName="config-50", minimumHealthyHosts={"type": "HOST_COUNT", "value": 1}
    )
