"""A deployment's options as typed values: its style, load balancer, blue/green, rollback and alarm settings.

A deployment group stores these members as the API sent them (the wire shape, botocore's member names),
and a deployment copies them from its group; they are read back here, once, into frozen values, so the
engine and the API compare enums instead of digging in dictionaries. ``from_wire`` takes what is stored
(``None`` for a member never set) and fills what AWS assumes when a member is absent. The wire input has
already been checked against the API model (enum values, types) before it was stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

Wire = Mapping[str, Any] | None


class DeploymentType(StrEnum):
    IN_PLACE = "IN_PLACE"
    BLUE_GREEN = "BLUE_GREEN"


class DeploymentOption(StrEnum):
    WITH_TRAFFIC_CONTROL = "WITH_TRAFFIC_CONTROL"
    WITHOUT_TRAFFIC_CONTROL = "WITHOUT_TRAFFIC_CONTROL"


@dataclass(frozen=True)
class DeploymentStyle:
    """In place or blue/green, and whether traffic goes through a load balancer.

    Absent members: ``IN_PLACE``, and ``WITH_TRAFFIC_CONTROL`` for blue/green (it always reroutes
    traffic) or else ``WITHOUT_TRAFFIC_CONTROL`` — the defaults a Server group gets
    (``api.codedeploy.deployment_group_settings.with_defaults``).
    """

    deployment_type: DeploymentType = DeploymentType.IN_PLACE
    deployment_option: DeploymentOption = DeploymentOption.WITHOUT_TRAFFIC_CONTROL

    @classmethod
    def from_wire(cls, wire: Wire) -> DeploymentStyle:
        wire = wire or {}
        kind = DeploymentType(wire.get("deploymentType") or DeploymentType.IN_PLACE)
        default = (
            DeploymentOption.WITH_TRAFFIC_CONTROL
            if kind == DeploymentType.BLUE_GREEN
            else DeploymentOption.WITHOUT_TRAFFIC_CONTROL
        )
        return cls(kind, DeploymentOption(wire.get("deploymentOption") or default))

    @property
    def blue_green(self) -> bool:
        return self.deployment_type == DeploymentType.BLUE_GREEN

    @property
    def in_place(self) -> bool:
        return self.deployment_type == DeploymentType.IN_PLACE

    @property
    def traffic_control(self) -> bool:
        return self.deployment_option == DeploymentOption.WITH_TRAFFIC_CONTROL


def _names(items: Sequence[Mapping[str, Any]] | None) -> tuple[str, ...]:
    return tuple(item["name"] for item in items or () if item.get("name"))


@dataclass(frozen=True)
class TargetGroupPair:
    """An ECS deployment's two target groups and the listeners that route production and test traffic."""

    target_groups: tuple[str, ...]
    production_listeners: tuple[str, ...]
    test_listeners: tuple[str, ...]

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> TargetGroupPair:
        return cls(
            _names(wire.get("targetGroups")),
            tuple((wire.get("prodTrafficRoute") or {}).get("listenerArns") or ()),
            tuple((wire.get("testTrafficRoute") or {}).get("listenerArns") or ()),
        )


@dataclass(frozen=True)
class LoadBalancerInfo:
    """The load balancers a deployment group's traffic goes through: Classic ELB names, target group
    names (ELBv2, or an HAProxy backend) and, for ECS, target group pairs."""

    elb_names: tuple[str, ...] = ()
    target_group_names: tuple[str, ...] = ()
    target_group_pairs: tuple[TargetGroupPair, ...] = ()

    @classmethod
    def from_wire(cls, wire: Wire) -> LoadBalancerInfo:
        wire = wire or {}
        return cls(
            _names(wire.get("elbInfoList")),
            _names(wire.get("targetGroupInfoList")),
            tuple(TargetGroupPair.from_wire(pair) for pair in wire.get("targetGroupPairInfoList") or ()),
        )

    @property
    def empty(self) -> bool:
        return not (self.elb_names or self.target_group_names or self.target_group_pairs)


class InstanceAction(StrEnum):
    """What becomes of the original instances after a successful blue/green deployment."""

    TERMINATE = "TERMINATE"
    KEEP_ALIVE = "KEEP_ALIVE"


class ReadyAction(StrEnum):
    """Reroute traffic as soon as the replacement instances are ready, or wait for ContinueDeployment."""

    CONTINUE_DEPLOYMENT = "CONTINUE_DEPLOYMENT"
    STOP_DEPLOYMENT = "STOP_DEPLOYMENT"


class GreenFleetProvisioning(StrEnum):
    DISCOVER_EXISTING = "DISCOVER_EXISTING"
    COPY_AUTO_SCALING_GROUP = "COPY_AUTO_SCALING_GROUP"


@dataclass(frozen=True)
class BlueGreenConfiguration:
    """A blue/green deployment's waits and fleets (absent members: terminate the originals at once,
    reroute traffic as soon as the replacements are ready, replacements are existing instances)."""

    terminate_action: InstanceAction = InstanceAction.TERMINATE
    termination_wait_minutes: int = 0
    ready_action: ReadyAction = ReadyAction.CONTINUE_DEPLOYMENT
    ready_wait_minutes: int = 0
    green_fleet_provisioning: GreenFleetProvisioning = GreenFleetProvisioning.DISCOVER_EXISTING

    @classmethod
    def from_wire(cls, wire: Wire) -> BlueGreenConfiguration:
        wire = wire or {}
        termination = wire.get("terminateBlueInstancesOnDeploymentSuccess") or {}
        ready = wire.get("deploymentReadyOption") or {}
        green = wire.get("greenFleetProvisioningOption") or {}
        return cls(
            InstanceAction(termination.get("action") or InstanceAction.TERMINATE),
            int(termination.get("terminationWaitTimeInMinutes") or 0),
            ReadyAction(ready.get("actionOnTimeout") or ReadyAction.CONTINUE_DEPLOYMENT),
            int(ready.get("waitTimeInMinutes") or 0),
            GreenFleetProvisioning(green.get("action") or GreenFleetProvisioning.DISCOVER_EXISTING),
        )


class RollbackEvent(StrEnum):
    DEPLOYMENT_FAILURE = "DEPLOYMENT_FAILURE"
    DEPLOYMENT_STOP_ON_ALARM = "DEPLOYMENT_STOP_ON_ALARM"
    DEPLOYMENT_STOP_ON_REQUEST = "DEPLOYMENT_STOP_ON_REQUEST"


@dataclass(frozen=True)
class AutoRollbackConfiguration:
    """Whether a deployment rolls back, and on which of its endings."""

    enabled: bool = False
    events: frozenset[RollbackEvent] = frozenset()

    @classmethod
    def from_wire(cls, wire: Wire) -> AutoRollbackConfiguration:
        wire = wire or {}
        return cls(
            bool(wire.get("enabled")), frozenset(RollbackEvent(event) for event in wire.get("events") or ())
        )

    def rolls_back_on(self, event: RollbackEvent) -> bool:
        return self.enabled and event in self.events


@dataclass(frozen=True)
class AlarmConfiguration:
    """The alarms that stop a deployment, and whether a failure to read them is ignored."""

    enabled: bool = False
    ignore_poll_alarm_failure: bool = False
    alarm_names: tuple[str, ...] = ()

    @classmethod
    def from_wire(cls, wire: Wire) -> AlarmConfiguration:
        wire = wire or {}
        return cls(
            bool(wire.get("enabled")),
            bool(wire.get("ignorePollAlarmFailure")),
            _names(wire.get("alarms")),
        )
