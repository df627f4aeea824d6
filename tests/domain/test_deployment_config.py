"""Deployment configurations: the guide's predefined tables and the rules for custom ones."""

from __future__ import annotations

import pytest

from opendeploy.domain.deployment_config import (
    DEFAULT_CONFIG_NAMES,
    PREDEFINED_CONFIGS,
    ComputePlatform,
    ConfigProblem,
    InvalidDeploymentConfig,
    TimeBasedLinear,
    TrafficRouting,
    TrafficRoutingType,
    config_from_stored,
    config_from_wire,
    config_to_wire,
    default_config_name,
    predefined_config_id,
)
from opendeploy.domain.minimum_healthy_hosts import MinimumHealthyHosts, MinimumHealthyHostsType


def test_predefined_server_configurations_match_the_guides_table() -> None:
    """Guide L14401–14412: OneAtATime "1", HalfAtATime 50%, AllAtOnce 0. OneAtATime's "1" is a
    concurrency, which GetDeploymentConfig reports as MOST_CONCURRENCY 1 (botocore's model docs)."""
    wire = {
        name: config_to_wire(c) for name, c in PREDEFINED_CONFIGS.items() if c.compute_platform == "Server"
    }
    assert wire == {
        "CodeDeployDefault.AllAtOnce": {
            "deploymentConfigName": "CodeDeployDefault.AllAtOnce",
            "computePlatform": "Server",
            "minimumHealthyHosts": {"type": "FLEET_PERCENT", "value": 0},
        },
        "CodeDeployDefault.HalfAtATime": {
            "deploymentConfigName": "CodeDeployDefault.HalfAtATime",
            "computePlatform": "Server",
            "minimumHealthyHosts": {"type": "FLEET_PERCENT", "value": 50},
        },
        "CodeDeployDefault.OneAtATime": {
            "deploymentConfigName": "CodeDeployDefault.OneAtATime",
            "computePlatform": "Server",
            "minimumHealthyHosts": {"type": "MOST_CONCURRENCY", "value": 1},
        },
    }


def test_predefined_ecs_configurations_match_the_guides_table() -> None:
    """Guide L14798–14833."""
    ecs = {
        name: config_to_wire(c)["trafficRoutingConfig"]
        for name, c in PREDEFINED_CONFIGS.items()
        if c.compute_platform == "ECS"
    }
    assert ecs == {
        "CodeDeployDefault.ECSLinear10PercentEvery1Minutes": {
            "type": "TimeBasedLinear",
            "timeBasedLinear": {"linearPercentage": 10, "linearInterval": 1},
        },
        "CodeDeployDefault.ECSLinear10PercentEvery3Minutes": {
            "type": "TimeBasedLinear",
            "timeBasedLinear": {"linearPercentage": 10, "linearInterval": 3},
        },
        "CodeDeployDefault.ECSCanary10Percent5Minutes": {
            "type": "TimeBasedCanary",
            "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 5},
        },
        "CodeDeployDefault.ECSCanary10Percent15Minutes": {
            "type": "TimeBasedCanary",
            "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 15},
        },
        "CodeDeployDefault.ECSAllAtOnce": {"type": "AllAtOnce"},
    }


def test_predefined_lambda_configurations_match_the_guides_table() -> None:
    """Guide L14866–14910 (note the singular "Every1Minute")."""
    lam = {
        name: config_to_wire(c)["trafficRoutingConfig"]
        for name, c in PREDEFINED_CONFIGS.items()
        if c.compute_platform == "Lambda"
    }
    canary = {"type": "TimeBasedCanary"}
    linear = {"type": "TimeBasedLinear"}
    assert lam == {
        "CodeDeployDefault.LambdaCanary10Percent5Minutes": canary
        | {"timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 5}},
        "CodeDeployDefault.LambdaCanary10Percent10Minutes": canary
        | {"timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 10}},
        "CodeDeployDefault.LambdaCanary10Percent15Minutes": canary
        | {"timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 15}},
        "CodeDeployDefault.LambdaCanary10Percent30Minutes": canary
        | {"timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 30}},
        "CodeDeployDefault.LambdaLinear10PercentEvery1Minute": linear
        | {"timeBasedLinear": {"linearPercentage": 10, "linearInterval": 1}},
        "CodeDeployDefault.LambdaLinear10PercentEvery2Minutes": linear
        | {"timeBasedLinear": {"linearPercentage": 10, "linearInterval": 2}},
        "CodeDeployDefault.LambdaLinear10PercentEvery3Minutes": linear
        | {"timeBasedLinear": {"linearPercentage": 10, "linearInterval": 3}},
        "CodeDeployDefault.LambdaLinear10PercentEvery10Minutes": linear
        | {"timeBasedLinear": {"linearPercentage": 10, "linearInterval": 10}},
        "CodeDeployDefault.LambdaAllAtOnce": {"type": "AllAtOnce"},
    }


def test_there_are_exactly_seventeen_predefined_configurations_none_zonal() -> None:
    """3 Server + 5 ECS + 9 Lambda; no predefined configuration supports zonal configuration (L14656)."""
    assert len(PREDEFINED_CONFIGS) == 17
    assert all(c.zonal_config is None and c.predefined for c in PREDEFINED_CONFIGS.values())


def test_predefined_ids_are_stable_uuids() -> None:
    assert predefined_config_id("CodeDeployDefault.OneAtATime") == predefined_config_id(
        "CodeDeployDefault.OneAtATime"
    )
    assert predefined_config_id("CodeDeployDefault.OneAtATime") != predefined_config_id(
        "CodeDeployDefault.AllAtOnce"
    )


def test_default_configuration_is_one_at_a_time_for_server() -> None:
    """Guide L14641–14643. Lambda/ECS get "a specific default" (L18761–18763).

    Decision: the all-at-once traffic shift, the one configuration every load balancer supports.
    """
    assert default_config_name("Server") == "CodeDeployDefault.OneAtATime"
    assert DEFAULT_CONFIG_NAMES[ComputePlatform.LAMBDA] == "CodeDeployDefault.LambdaAllAtOnce"
    assert DEFAULT_CONFIG_NAMES[ComputePlatform.ECS] == "CodeDeployDefault.ECSAllAtOnce"
    assert all(name in PREDEFINED_CONFIGS for name in DEFAULT_CONFIG_NAMES.values())


# --- the guide's CLI examples (L15062–15099) -------------------------------------------------------


def test_three_quarters_healthy() -> None:
    config = config_from_wire(
        "ThreeQuartersHealthy", minimum_healthy_hosts={"type": "FLEET_PERCENT", "value": 75}
    )
    assert config.compute_platform is ComputePlatform.SERVER
    assert config.minimum_healthy_hosts == MinimumHealthyHosts(MinimumHealthyHostsType.FLEET_PERCENT, 75)
    assert not config.predefined


def test_300_total_50_per_az() -> None:
    config = config_from_wire(
        "300Total50PerAZ",
        minimum_healthy_hosts={"type": "HOST_COUNT", "value": 300},
        zonal_config={
            "monitorDurationInSeconds": 3600,
            "minimumHealthyHostsPerZone": {"type": "HOST_COUNT", "value": 50},
        },
    )
    assert config.zonal_config is not None
    assert config.zonal_config.monitor_duration_in_seconds == 3600
    assert config.zonal_config.effective_first_zone_monitor_duration_in_seconds == 3600
    assert config.zonal_config.effective_minimum_healthy_hosts_per_zone == MinimumHealthyHosts(
        MinimumHealthyHostsType.HOST_COUNT, 50
    )
    assert config_to_wire(config)["zonalConfig"] == {
        "monitorDurationInSeconds": 3600,
        "minimumHealthyHostsPerZone": {"type": "HOST_COUNT", "value": 50},
    }


def test_zonal_defaults() -> None:
    """Per-zone minimum defaults to 0 percent (L15031–15039); with no monitor duration the next zone
    starts at once (L15017–15025)."""
    config = config_from_wire("z", minimum_healthy_hosts={"type": "HOST_COUNT", "value": 1}, zonal_config={})
    assert config.zonal_config is not None
    assert config.zonal_config.effective_minimum_healthy_hosts_per_zone == MinimumHealthyHosts(
        MinimumHealthyHostsType.FLEET_PERCENT, 0
    )
    assert config.zonal_config.effective_first_zone_monitor_duration_in_seconds == 0


@pytest.mark.parametrize("platform", ["Lambda", "ECS"])
def test_canary_25_percent_45_minutes(platform: str) -> None:
    config = config_from_wire(
        "Canary25Percent45Minutes",
        compute_platform=platform,
        traffic_routing_config={
            "type": "TimeBasedCanary",
            "timeBasedCanary": {"canaryPercentage": 25, "canaryInterval": 45},
        },
    )
    assert config.compute_platform == platform
    assert config_to_wire(config)["trafficRoutingConfig"] == {
        "type": "TimeBasedCanary",
        "timeBasedCanary": {"canaryPercentage": 25, "canaryInterval": 45},
    }


def test_server_configuration_with_traffic_routing() -> None:
    """Extension (issue 11): a Server configuration keeps its minimum healthy hosts and may add AWS's
    trafficRoutingConfig for blue/green traffic shifting, validated by the same rules as ECS's (no Lambda
    duration limit: a server deployment has none); stored and read back unchanged."""
    routing = {"type": "TimeBasedLinear", "timeBasedLinear": {"linearPercentage": 30, "linearInterval": 3000}}
    config = config_from_wire(
        "servers-linear",
        compute_platform="Server",
        minimum_healthy_hosts={"type": "FLEET_PERCENT", "value": 50},
        traffic_routing_config=routing,
    )
    assert config.traffic_routing == TrafficRouting(
        TrafficRoutingType.TIME_BASED_LINEAR, linear=TimeBasedLinear(30, 3000)
    )
    wire = config_to_wire(config)
    assert wire["trafficRoutingConfig"] == routing
    assert wire["minimumHealthyHosts"] == {"type": "FLEET_PERCENT", "value": 50}
    again = config_from_stored("servers-linear", "Server", wire["minimumHealthyHosts"], routing, None)
    assert again == config


def test_stored_configuration_round_trips() -> None:
    config = config_from_wire(
        "z",
        minimum_healthy_hosts={"type": "HOST_COUNT", "value": 3},
        zonal_config={
            "firstZoneMonitorDurationInSeconds": 60,
            "minimumHealthyHostsPerZone": {"type": "FLEET_PERCENT", "value": 10},
        },
    )
    wire = config_to_wire(config)
    again = config_from_stored("z", "Server", wire["minimumHealthyHosts"], None, wire["zonalConfig"])
    assert again == config


# --- what is refused, and why ----------------------------------------------------------------------


def _problem(**kwargs: object) -> InvalidDeploymentConfig:
    with pytest.raises(InvalidDeploymentConfig) as caught:
        config_from_wire(**kwargs)  # type: ignore[arg-type]
    return caught.value


@pytest.mark.parametrize(
    ("kwargs", "problem", "gist"),
    [
        (
            {"name": "CodeDeployDefault.Mine", "minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 1}},
            ConfigProblem.NAME,
            "reserved",
        ),
        ({"name": "x"}, ConfigProblem.MINIMUM_HEALTHY_HOSTS, "minimumHealthyHosts is required"),
        (
            {"name": "x", "minimum_healthy_hosts": {"type": "MOST_CONCURRENCY", "value": 1}},
            ConfigProblem.MINIMUM_HEALTHY_HOSTS,
            "HOST_COUNT or FLEET_PERCENT",
        ),
        (
            {"name": "x", "minimum_healthy_hosts": {"type": "HOST_COUNT"}},
            ConfigProblem.MINIMUM_HEALTHY_HOSTS,
            "value is required",
        ),
        (
            {"name": "x", "minimum_healthy_hosts": {"type": "HOST_COUNT", "value": -1}},
            ConfigProblem.MINIMUM_HEALTHY_HOSTS,
            "negative",
        ),
        (
            {"name": "x", "minimum_healthy_hosts": {"type": "FLEET_PERCENT", "value": 101}},
            ConfigProblem.MINIMUM_HEALTHY_HOSTS,
            "at most 100",
        ),
        (
            {"name": "x", "traffic_routing_config": {"type": "AllAtOnce"}},
            ConfigProblem.MINIMUM_HEALTHY_HOSTS,
            "minimumHealthyHosts is required",
        ),
        (
            {
                "name": "x",
                "minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 1},
                "traffic_routing_config": {
                    "type": "TimeBasedLinear",
                    "timeBasedLinear": {"linearPercentage": 0, "linearInterval": 1},
                },
            },
            ConfigProblem.TRAFFIC_ROUTING,
            "between 1 and 99",
        ),
        (
            {
                "name": "x",
                "minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 1},
                "zonal_config": {"monitorDurationInSeconds": -5},
            },
            ConfigProblem.ZONAL_CONFIG,
            "monitorDurationInSeconds",
        ),
        (
            {
                "name": "x",
                "minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 1},
                "zonal_config": {"minimumHealthyHostsPerZone": {"type": "FLEET_PERCENT", "value": 150}},
            },
            ConfigProblem.ZONAL_CONFIG,
            "minimumHealthyHostsPerZone.value",
        ),
        (
            {"name": "x", "compute_platform": "Lambda"},
            ConfigProblem.TRAFFIC_ROUTING,
            "trafficRoutingConfig is required",
        ),
        (
            {
                "name": "x",
                "compute_platform": "ECS",
                "traffic_routing_config": {"type": "AllAtOnce"},
                "minimum_healthy_hosts": {"type": "HOST_COUNT", "value": 1},
            },
            ConfigProblem.MINIMUM_HEALTHY_HOSTS,
            "not ECS",
        ),
        (
            {
                "name": "x",
                "compute_platform": "Lambda",
                "traffic_routing_config": {"type": "AllAtOnce"},
                "zonal_config": {},
            },
            ConfigProblem.ZONAL_CONFIG,
            "not Lambda",
        ),
        (
            {"name": "x", "compute_platform": "Windows"},
            ConfigProblem.COMPUTE_PLATFORM,
            "Server, Lambda or ECS",
        ),
        (
            {"name": "x", "compute_platform": "ECS", "traffic_routing_config": {"type": "TimeBasedCanary"}},
            ConfigProblem.TRAFFIC_ROUTING,
            "takes timeBasedCanary",
        ),
        (
            {
                "name": "x",
                "compute_platform": "ECS",
                "traffic_routing_config": {
                    "type": "AllAtOnce",
                    "timeBasedLinear": {"linearPercentage": 10, "linearInterval": 1},
                },
            },
            ConfigProblem.TRAFFIC_ROUTING,
            "takes no",
        ),
        (
            {
                "name": "x",
                "compute_platform": "ECS",
                "traffic_routing_config": {
                    "type": "TimeBasedLinear",
                    "timeBasedLinear": {"linearPercentage": 100, "linearInterval": 1},
                },
            },
            ConfigProblem.TRAFFIC_ROUTING,
            "between 1 and 99",
        ),
        (
            {
                "name": "x",
                "compute_platform": "ECS",
                "traffic_routing_config": {
                    "type": "TimeBasedLinear",
                    "timeBasedLinear": {"linearPercentage": 10, "linearInterval": 0},
                },
            },
            ConfigProblem.TRAFFIC_ROUTING,
            "1 or more",
        ),
        (
            {"name": "x", "compute_platform": "ECS", "traffic_routing_config": {"type": "Blue"}},
            ConfigProblem.TRAFFIC_ROUTING,
            "TimeBasedCanary, TimeBasedLinear or AllAtOnce",
        ),
    ],
)
def test_invalid_custom_configurations_are_refused_with_the_reason(
    kwargs: dict[str, object], problem: ConfigProblem, gist: str
) -> None:
    error = _problem(**kwargs)
    assert error.problem is problem
    assert gist in error.message


def test_fleet_percent_100_is_accepted_and_left_to_fail_at_deployment_start() -> None:
    """Decision: a percentage may be 0–100. 100% can never start (M ≥ N fails at once with
    HEALTH_CONSTRAINTS_INVALID, L14482–14488) — the guide places that check at deployment start."""
    config = config_from_wire("all", minimum_healthy_hosts={"type": "FLEET_PERCENT", "value": 100})
    assert config.minimum_healthy_hosts == MinimumHealthyHosts(MinimumHealthyHostsType.FLEET_PERCENT, 100)


def test_lambda_canary_interval_limit_is_2880_minutes() -> None:
    """L15767–15777 says 2,800 for canary, a doc quirk for the 2,880-minute Lambda limit it states."""
    routing = {"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 2880}}
    config_from_wire("ok", compute_platform="Lambda", traffic_routing_config=routing)
    routing["timeBasedCanary"]["canaryInterval"] = 2881  # type: ignore[index]
    assert "2880" in _problem(name="x", compute_platform="Lambda", traffic_routing_config=routing).message


def test_lambda_linear_interval_limit_depends_on_the_step() -> None:
    """The guide's example: a 25% step means four shifts, so at most 2,880 / 4 = 720 minutes."""
    routing = {"type": "TimeBasedLinear", "timeBasedLinear": {"linearPercentage": 25, "linearInterval": 720}}
    config_from_wire("ok", compute_platform="Lambda", traffic_routing_config=routing)
    routing["timeBasedLinear"]["linearInterval"] = 721  # type: ignore[index]
    error = _problem(name="x", compute_platform="Lambda", traffic_routing_config=routing)
    assert "720" in error.message and "4 shifts" in error.message
    # ECS has no such limit in the guide.
    config_from_wire("ecs", compute_platform="ECS", traffic_routing_config=routing)
