"""What a deployment strategy is, the key that chooses one, and the registry strategies put themselves in.

A strategy carries out one kind of deployment (guide: EC2/On-Premises in place, with or without a load
balancer; blue/green; Lambda; ECS). The engine never names one: the reconciler, a stop and new instances
ask ``engine.strategies.strategy_for`` with the deployment's ``StrategyKey``. Each method is one step in
the caller's transaction, idempotent, and may be called again after a restart from what is on record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from opendeploy.domain.deployment_config import ComputePlatform
from opendeploy.domain.deployment_style import DeploymentStyle, DeploymentType

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from opendeploy.appspec.lifecycle_events import LifecycleEvent
    from opendeploy.settings import Settings
    from opendeploy.store.models import Deployment


@dataclass(frozen=True)
class StrategyKey:
    """What chooses a deployment's strategy: compute platform, deployment type, traffic control."""

    compute_platform: ComputePlatform
    deployment_type: DeploymentType
    traffic_control: bool

    @classmethod
    def of(cls, compute_platform: str, style: DeploymentStyle) -> StrategyKey:
        return cls(ComputePlatform(compute_platform), style.deployment_type, style.traffic_control)

    @classmethod
    def of_deployment(cls, deployment: Deployment) -> StrategyKey:
        return cls.of(deployment.compute_platform, deployment.style)

    def __str__(self) -> str:
        control = "WITH_TRAFFIC_CONTROL" if self.traffic_control else "WITHOUT_TRAFFIC_CONTROL"
        return f"({self.compute_platform}, {self.deployment_type}, {control})"


class Strategy(Protocol):
    """One kind of deployment, as steps the engine takes on a locked deployment."""

    deploys_to_new_instances: bool
    """Instances that join the group get its revision through a deployment of their own
    (``engine.new_instances``)."""

    def lifecycle_events(self, deployment: Deployment) -> tuple[LifecycleEvent, ...]:
        """The events a target of ``deployment`` runs, in order (the first target's, for timeouts)."""
        ...

    def start(self, session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
        """Created -> InProgress (its targets on record, the first of them started), or an end."""
        ...

    def advance(self, session: Session, deployment: Deployment, now: float, settings: Settings) -> None:
        """Something changed or a wait ended: take the next steps, end the deployment when done."""
        ...

    def drain(self, session: Session, deployment: Deployment, now: float, settings: Settings) -> bool:
        """A stop: call off the work not yet under way; True once nothing runs any more (the caller then
        ends the deployment Stopped), False while something still does (its end brings the engine back)."""
        ...


_STRATEGIES: dict[StrategyKey, Strategy] = {}


def register(strategy: Strategy, *keys: StrategyKey) -> Strategy:
    """Make ``strategy`` the one for each of ``keys`` (a key has one strategy)."""
    for key in keys:
        if key in _STRATEGIES and _STRATEGIES[key] is not strategy:
            raise ValueError(f"a strategy is already registered for {key}")
        _STRATEGIES[key] = strategy
    return strategy


def registered(key: StrategyKey) -> Strategy | None:
    return _STRATEGIES.get(key)


def not_supported_message(key: StrategyKey) -> str:
    """What a deployment no strategy runs fails with (the texts the engine has always used)."""
    if key.compute_platform != ComputePlatform.SERVER:
        return f"This server does not run {key.compute_platform} deployments yet."
    if key.deployment_type != DeploymentType.IN_PLACE:
        return "This server does not run blue/green deployments yet."
    if key.traffic_control:
        return "This server does not run deployments with traffic control (a load balancer) yet."
    return f"This server does not run {key} deployments yet."
