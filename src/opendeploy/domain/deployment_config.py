"""Deployment configurations: the predefined ones the guide lists, and the rules for custom ones.

A deployment configuration is "a set of rules and success and failure conditions" (guide L14627):
for the Server platform a minimum number of healthy hosts, optionally per Availability Zone (zonal
configuration); for Lambda and ECS a traffic-routing scheme (canary, linear, all at once).

Extension (issue 11, README "Load balancers"): a Server configuration may also carry a
``trafficRoutingConfig``, with AWS's member names and rules. ``minimumHealthyHosts`` stays required: it
governs installing on the instances (the replacement fleet of a blue/green deployment). The traffic
routing is used only by blue/green deployments, to shift traffic to the replacement fleet step by step
(``domain/traffic_routing``); an in-place deployment ignores it, as a configuration is shared by groups
of either type and a group may change type (UpdateDeploymentGroup) after naming it. Configurations AWS
accepts read the same here; AWS refuses this one member on Server.

Everything here is plain data: ``config_from_wire`` validates the API's wire dictionaries into a
``DeploymentConfig`` (raising ``InvalidDeploymentConfig`` naming what is wrong), ``config_to_wire``
renders one back. The predefined configurations are constants, read-only and undeletable.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from opendeploy.domain.minimum_healthy_hosts import (
    MOST_CONCURRENCY,
    MinimumHealthyHosts,
    MinimumHealthyHostsType,
)

PREDEFINED_PREFIX = "CodeDeployDefault."
# The longest a Lambda deployment may run: first to last traffic shift (guide L15767–15777).
LAMBDA_MAX_DEPLOYMENT_MINUTES = 2880
# Predefined configurations report a fixed creation time: the day CodeDeploy was announced.
PREDEFINED_CREATE_TIME = 1415750400.0  # 2014-11-12T00:00:00Z
# Predefined configuration ids are name-based UUIDs, the same on every opendeploy server.
_PREDEFINED_ID_NAMESPACE = uuid.UUID("5b0f4f4e-8d2a-4c52-9a51-6f70656e6465")


class ComputePlatform(StrEnum):
    SERVER = "Server"
    LAMBDA = "Lambda"
    ECS = "ECS"


class TrafficRoutingType(StrEnum):
    TIME_BASED_CANARY = "TimeBasedCanary"
    TIME_BASED_LINEAR = "TimeBasedLinear"
    ALL_AT_ONCE = "AllAtOnce"


@dataclass(frozen=True)
class MostConcurrency:
    """OneAtATime's rule: deploy to ``value`` instances at a time, keeping all the others healthy.

    GetDeploymentConfig reports it as type ``MOST_CONCURRENCY``, value 1 (botocore's MinimumHealthyHosts
    documentation); users cannot create it, only HOST_COUNT or FLEET_PERCENT.
    """

    value: int = 1

    @property
    def type(self) -> str:
        return MOST_CONCURRENCY


@dataclass(frozen=True)
class TimeBasedCanary:
    percentage: int  # shifted in the first increment
    interval_minutes: int  # until the rest shifts


@dataclass(frozen=True)
class TimeBasedLinear:
    percentage: int  # shifted at the start of each increment
    interval_minutes: int  # between increments


@dataclass(frozen=True)
class TrafficRouting:
    type: TrafficRoutingType
    canary: TimeBasedCanary | None = None
    linear: TimeBasedLinear | None = None


@dataclass(frozen=True)
class ZonalConfig:
    """Deploy one Availability Zone at a time (guide L14548–14624, L14996–15039)."""

    first_zone_monitor_duration_in_seconds: int | None = None
    monitor_duration_in_seconds: int | None = None
    minimum_healthy_hosts_per_zone: MinimumHealthyHosts | None = None

    @property
    def effective_minimum_healthy_hosts_per_zone(self) -> MinimumHealthyHosts:
        """The per-zone minimum; the guide's default is 0 percent (L15031–15039)."""
        return self.minimum_healthy_hosts_per_zone or MinimumHealthyHosts(
            MinimumHealthyHostsType.FLEET_PERCENT, 0
        )

    @property
    def effective_first_zone_monitor_duration_in_seconds(self) -> int:
        """The first zone waits its own duration if set, else the general one, else not at all."""
        if self.first_zone_monitor_duration_in_seconds is not None:
            return self.first_zone_monitor_duration_in_seconds
        return self.monitor_duration_in_seconds or 0


@dataclass(frozen=True)
class DeploymentConfig:
    name: str
    compute_platform: ComputePlatform
    minimum_healthy_hosts: MinimumHealthyHosts | MostConcurrency | None = None
    traffic_routing: TrafficRouting | None = None
    zonal_config: ZonalConfig | None = None

    @property
    def predefined(self) -> bool:
        return is_predefined(self.name)


class ConfigProblem(StrEnum):
    """Which part of a custom configuration is wrong; the API maps each to its exception."""

    NAME = "name"
    COMPUTE_PLATFORM = "computePlatform"
    MINIMUM_HEALTHY_HOSTS = "minimumHealthyHosts"
    TRAFFIC_ROUTING = "trafficRoutingConfig"
    ZONAL_CONFIG = "zonalConfig"


class InvalidDeploymentConfig(ValueError):
    def __init__(self, problem: ConfigProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


def _server(name: str, mhh: MinimumHealthyHosts | MostConcurrency) -> DeploymentConfig:
    return DeploymentConfig(PREDEFINED_PREFIX + name, ComputePlatform.SERVER, minimum_healthy_hosts=mhh)


def _canary(platform: ComputePlatform, name: str, minutes: int) -> DeploymentConfig:
    routing = TrafficRouting(TrafficRoutingType.TIME_BASED_CANARY, canary=TimeBasedCanary(10, minutes))
    return DeploymentConfig(PREDEFINED_PREFIX + name, platform, traffic_routing=routing)


def _linear(platform: ComputePlatform, name: str, minutes: int) -> DeploymentConfig:
    routing = TrafficRouting(TrafficRoutingType.TIME_BASED_LINEAR, linear=TimeBasedLinear(10, minutes))
    return DeploymentConfig(PREDEFINED_PREFIX + name, platform, traffic_routing=routing)


def _all_at_once(platform: ComputePlatform, name: str) -> DeploymentConfig:
    routing = TrafficRouting(TrafficRoutingType.ALL_AT_ONCE)
    return DeploymentConfig(PREDEFINED_PREFIX + name, platform, traffic_routing=routing)


_S, _L, _E = ComputePlatform.SERVER, ComputePlatform.LAMBDA, ComputePlatform.ECS
_PERCENT = MinimumHealthyHostsType.FLEET_PERCENT

# The guide's tables, in the guide's order: EC2/On-Premises (L14401–14412, L14649–14797), ECS
# (L14798–14833), Lambda (L14866–14910).
PREDEFINED_CONFIGS: Mapping[str, DeploymentConfig] = {
    config.name: config
    for config in (
        _server("AllAtOnce", MinimumHealthyHosts(_PERCENT, 0)),
        _server("HalfAtATime", MinimumHealthyHosts(_PERCENT, 50)),
        # OneAtATime is a concurrency of one, reported as MOST_CONCURRENCY 1 (botocore's
        # MinimumHealthyHosts documentation); the guide's table calls it "1" (L14405–14407).
        _server("OneAtATime", MostConcurrency(1)),
        _linear(_E, "ECSLinear10PercentEvery1Minutes", 1),
        _linear(_E, "ECSLinear10PercentEvery3Minutes", 3),
        _canary(_E, "ECSCanary10Percent5Minutes", 5),
        _canary(_E, "ECSCanary10Percent15Minutes", 15),
        _all_at_once(_E, "ECSAllAtOnce"),
        _canary(_L, "LambdaCanary10Percent5Minutes", 5),
        _canary(_L, "LambdaCanary10Percent10Minutes", 10),
        _canary(_L, "LambdaCanary10Percent15Minutes", 15),
        _canary(_L, "LambdaCanary10Percent30Minutes", 30),
        _linear(_L, "LambdaLinear10PercentEvery1Minute", 1),
        _linear(_L, "LambdaLinear10PercentEvery2Minutes", 2),
        _linear(_L, "LambdaLinear10PercentEvery3Minutes", 3),
        _linear(_L, "LambdaLinear10PercentEvery10Minutes", 10),
        _all_at_once(_L, "LambdaAllAtOnce"),
    )
}

# What a deployment uses when neither it nor its group names a configuration. Server: the guide
# (L14641–14643). Lambda and ECS: "a specific default" (L18761–18763) — the all-at-once shift, the one
# configuration every load balancer type supports (L14804–14805).
DEFAULT_CONFIG_NAMES: Mapping[ComputePlatform, str] = {
    ComputePlatform.SERVER: "CodeDeployDefault.OneAtATime",
    ComputePlatform.LAMBDA: "CodeDeployDefault.LambdaAllAtOnce",
    ComputePlatform.ECS: "CodeDeployDefault.ECSAllAtOnce",
}


def is_predefined(name: str) -> bool:
    return name in PREDEFINED_CONFIGS


def predefined_config_id(name: str) -> str:
    """The stable id of a predefined configuration."""
    return str(uuid.uuid5(_PREDEFINED_ID_NAMESPACE, name))


def default_config_name(platform: ComputePlatform | str) -> str:
    return DEFAULT_CONFIG_NAMES[ComputePlatform(platform)]


# ---------------------------------------------------------------------------------------------------
# Validation of custom configurations (CreateDeploymentConfig)


def config_from_wire(
    name: str,
    *,
    compute_platform: str | None = None,
    minimum_healthy_hosts: Mapping[str, Any] | None = None,
    traffic_routing_config: Mapping[str, Any] | None = None,
    zonal_config: Mapping[str, Any] | None = None,
) -> DeploymentConfig:
    """A custom configuration from CreateDeploymentConfig's members, validated.

    Raises ``InvalidDeploymentConfig`` naming the member that is wrong and why.
    """
    if name.startswith(PREDEFINED_PREFIX):
        raise InvalidDeploymentConfig(
            ConfigProblem.NAME,
            f"Deployment configuration names starting with {PREDEFINED_PREFIX!r} are reserved for the "
            "predefined configurations",
        )
    try:
        platform = ComputePlatform(compute_platform or ComputePlatform.SERVER)
    except ValueError:
        raise InvalidDeploymentConfig(
            ConfigProblem.COMPUTE_PLATFORM,
            f"computePlatform must be Server, Lambda or ECS, got {compute_platform!r}",
        ) from None
    if platform is ComputePlatform.SERVER:
        if minimum_healthy_hosts is None:
            raise InvalidDeploymentConfig(
                ConfigProblem.MINIMUM_HEALTHY_HOSTS,
                "minimumHealthyHosts is required for a Server deployment configuration",
            )
        return DeploymentConfig(
            name,
            platform,
            minimum_healthy_hosts=_minimum_healthy_hosts(
                minimum_healthy_hosts, "minimumHealthyHosts", ConfigProblem.MINIMUM_HEALTHY_HOSTS
            ),
            # opendeploy's extension (issue 11): how a blue/green deployment shifts traffic to the
            # replacement fleet; AWS accepts it for Lambda and ECS only.
            traffic_routing=None
            if traffic_routing_config is None
            else _traffic_routing(traffic_routing_config, platform),
            zonal_config=None if zonal_config is None else _zonal_config(zonal_config),
        )
    if minimum_healthy_hosts is not None:
        raise InvalidDeploymentConfig(
            ConfigProblem.MINIMUM_HEALTHY_HOSTS,
            f"minimumHealthyHosts applies to the Server compute platform, not {platform}",
        )
    if zonal_config is not None:
        raise InvalidDeploymentConfig(
            ConfigProblem.ZONAL_CONFIG,
            f"zonalConfig applies to the Server compute platform, not {platform}",
        )
    if traffic_routing_config is None:
        raise InvalidDeploymentConfig(
            ConfigProblem.TRAFFIC_ROUTING,
            f"trafficRoutingConfig is required for a {platform} deployment configuration",
        )
    return DeploymentConfig(
        name, platform, traffic_routing=_traffic_routing(traffic_routing_config, platform)
    )


def _minimum_healthy_hosts(
    wire: Mapping[str, Any], member: str, problem: ConfigProblem
) -> MinimumHealthyHosts:
    kind, value = wire.get("type"), wire.get("value")
    try:
        mhh_type = MinimumHealthyHostsType(kind)
    except ValueError:
        raise InvalidDeploymentConfig(
            problem, f"{member}.type must be HOST_COUNT or FLEET_PERCENT, got {kind!r}"
        ) from None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidDeploymentConfig(problem, f"{member}.value is required and must be a whole number")
    if value < 0:
        raise InvalidDeploymentConfig(problem, f"{member}.value must not be negative, got {value}")
    if mhh_type is MinimumHealthyHostsType.FLEET_PERCENT and value > 100:
        raise InvalidDeploymentConfig(
            problem, f"{member}.value is a percentage of the fleet and must be at most 100, got {value}"
        )
    return MinimumHealthyHosts(mhh_type, value)


def _zonal_config(wire: Mapping[str, Any]) -> ZonalConfig:
    durations: dict[str, int | None] = {}
    for member in ("firstZoneMonitorDurationInSeconds", "monitorDurationInSeconds"):
        value = wire.get(member)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise InvalidDeploymentConfig(
                ConfigProblem.ZONAL_CONFIG,
                f"zonalConfig.{member} must be a whole number of seconds, 0 or more, got {value!r}",
            )
        durations[member] = value
    per_zone = wire.get("minimumHealthyHostsPerZone")
    return ZonalConfig(
        first_zone_monitor_duration_in_seconds=durations["firstZoneMonitorDurationInSeconds"],
        monitor_duration_in_seconds=durations["monitorDurationInSeconds"],
        minimum_healthy_hosts_per_zone=None
        if per_zone is None
        else _minimum_healthy_hosts(
            per_zone, "zonalConfig.minimumHealthyHostsPerZone", ConfigProblem.ZONAL_CONFIG
        ),
    )


def _traffic_routing(wire: Mapping[str, Any], platform: ComputePlatform) -> TrafficRouting:
    problem = ConfigProblem.TRAFFIC_ROUTING
    kind = wire.get("type")
    try:
        routing_type = TrafficRoutingType(kind)
    except ValueError:
        raise InvalidDeploymentConfig(
            problem,
            f"trafficRoutingConfig.type must be TimeBasedCanary, TimeBasedLinear or AllAtOnce, got {kind!r}",
        ) from None
    canary, linear = wire.get("timeBasedCanary"), wire.get("timeBasedLinear")
    if routing_type is TrafficRoutingType.ALL_AT_ONCE:
        if canary is not None or linear is not None:
            raise InvalidDeploymentConfig(
                problem, "an AllAtOnce trafficRoutingConfig takes no timeBasedCanary or timeBasedLinear"
            )
        return TrafficRouting(routing_type)
    if routing_type is TrafficRoutingType.TIME_BASED_CANARY:
        if canary is None or linear is not None:
            raise InvalidDeploymentConfig(
                problem,
                "a TimeBasedCanary trafficRoutingConfig takes timeBasedCanary (and no timeBasedLinear)",
            )
        percentage, interval = _step(canary, "timeBasedCanary", "canaryPercentage", "canaryInterval")
        # A canary shifts twice: at the start and after one interval.
        if platform is ComputePlatform.LAMBDA and interval > LAMBDA_MAX_DEPLOYMENT_MINUTES:
            raise InvalidDeploymentConfig(
                problem,
                f"timeBasedCanary.canaryInterval of a Lambda configuration can be at most "
                f"{LAMBDA_MAX_DEPLOYMENT_MINUTES} minutes, got {interval}",
            )
        return TrafficRouting(routing_type, canary=TimeBasedCanary(percentage, interval))
    if linear is None or canary is not None:
        raise InvalidDeploymentConfig(
            problem, "a TimeBasedLinear trafficRoutingConfig takes timeBasedLinear (and no timeBasedCanary)"
        )
    percentage, interval = _step(linear, "timeBasedLinear", "linearPercentage", "linearInterval")
    if platform is ComputePlatform.LAMBDA:
        shifts = math.ceil(100 / percentage)
        longest = LAMBDA_MAX_DEPLOYMENT_MINUTES // shifts
        if interval > longest:
            raise InvalidDeploymentConfig(
                problem,
                f"timeBasedLinear.linearInterval of a Lambda configuration shifting {percentage}% at a time "
                f"({shifts} shifts) can be at most {LAMBDA_MAX_DEPLOYMENT_MINUTES} / {shifts} = {longest} "
                f"minutes, got {interval}",
            )
    return TrafficRouting(routing_type, linear=TimeBasedLinear(percentage, interval))


def _step(wire: Mapping[str, Any], member: str, percentage_key: str, interval_key: str) -> tuple[int, int]:
    percentage, interval = wire.get(percentage_key), wire.get(interval_key)
    if not isinstance(percentage, int) or isinstance(percentage, bool) or not 1 <= percentage <= 99:
        raise InvalidDeploymentConfig(
            ConfigProblem.TRAFFIC_ROUTING,
            f"{member}.{percentage_key} must be a percentage of traffic between 1 and 99, got {percentage!r}",
        )
    if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
        raise InvalidDeploymentConfig(
            ConfigProblem.TRAFFIC_ROUTING,
            f"{member}.{interval_key} must be a whole number of minutes, 1 or more, got {interval!r}",
        )
    return percentage, interval


# ---------------------------------------------------------------------------------------------------
# Wire form (the API model's member names), used by the API and for storage


def minimum_healthy_hosts_to_wire(mhh: MinimumHealthyHosts | MostConcurrency) -> dict[str, Any]:
    return {"type": str(mhh.type), "value": mhh.value}


def minimum_healthy_hosts_from_wire(wire: Mapping[str, Any]) -> MinimumHealthyHosts | MostConcurrency:
    """Read back a stored ``minimumHealthyHosts`` (already validated when it was created)."""
    if wire["type"] == MOST_CONCURRENCY:
        return MostConcurrency(wire["value"])
    return MinimumHealthyHosts(MinimumHealthyHostsType(wire["type"]), wire["value"])


def traffic_routing_to_wire(routing: TrafficRouting) -> dict[str, Any]:
    wire: dict[str, Any] = {"type": str(routing.type)}
    if routing.canary is not None:
        wire["timeBasedCanary"] = {
            "canaryPercentage": routing.canary.percentage,
            "canaryInterval": routing.canary.interval_minutes,
        }
    if routing.linear is not None:
        wire["timeBasedLinear"] = {
            "linearPercentage": routing.linear.percentage,
            "linearInterval": routing.linear.interval_minutes,
        }
    return wire


def zonal_config_to_wire(zonal: ZonalConfig) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    if zonal.first_zone_monitor_duration_in_seconds is not None:
        wire["firstZoneMonitorDurationInSeconds"] = zonal.first_zone_monitor_duration_in_seconds
    if zonal.monitor_duration_in_seconds is not None:
        wire["monitorDurationInSeconds"] = zonal.monitor_duration_in_seconds
    if zonal.minimum_healthy_hosts_per_zone is not None:
        wire["minimumHealthyHostsPerZone"] = minimum_healthy_hosts_to_wire(
            zonal.minimum_healthy_hosts_per_zone
        )
    return wire


def config_to_wire(config: DeploymentConfig) -> dict[str, Any]:
    """The configuration's rules as DeploymentConfigInfo members (without id and createTime)."""
    wire: dict[str, Any] = {
        "deploymentConfigName": config.name,
        "computePlatform": str(config.compute_platform),
    }
    if config.minimum_healthy_hosts is not None:
        wire["minimumHealthyHosts"] = minimum_healthy_hosts_to_wire(config.minimum_healthy_hosts)
    if config.traffic_routing is not None:
        wire["trafficRoutingConfig"] = traffic_routing_to_wire(config.traffic_routing)
    if config.zonal_config is not None:
        wire["zonalConfig"] = zonal_config_to_wire(config.zonal_config)
    return wire


def config_from_stored(
    name: str,
    compute_platform: str,
    minimum_healthy_hosts: Mapping[str, Any] | None,
    traffic_routing_config: Mapping[str, Any] | None,
    zonal_config: Mapping[str, Any] | None,
) -> DeploymentConfig:
    """Rebuild a custom configuration from its stored wire members (validated when it was created)."""
    platform = ComputePlatform(compute_platform)
    zonal = None
    if zonal_config is not None:
        per_zone = zonal_config.get("minimumHealthyHostsPerZone")
        zonal = ZonalConfig(
            first_zone_monitor_duration_in_seconds=zonal_config.get("firstZoneMonitorDurationInSeconds"),
            monitor_duration_in_seconds=zonal_config.get("monitorDurationInSeconds"),
            minimum_healthy_hosts_per_zone=None
            if per_zone is None
            else MinimumHealthyHosts(MinimumHealthyHostsType(per_zone["type"]), per_zone["value"]),
        )
    routing = None
    if traffic_routing_config is not None:
        routing = _traffic_routing(traffic_routing_config, ComputePlatform.ECS)  # no Lambda limit on reading
    return DeploymentConfig(
        name,
        platform,
        minimum_healthy_hosts=None
        if minimum_healthy_hosts is None
        else minimum_healthy_hosts_from_wire(minimum_healthy_hosts),
        traffic_routing=routing,
        zonal_config=zonal,
    )
