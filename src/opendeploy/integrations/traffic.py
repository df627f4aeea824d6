"""Load balancers as the engine sees them: a small interface for BlockTraffic and AllowTraffic, its
in-memory fake for engine tests, and the timing a plan shows before a deployment starts.

The engine never waits inside a call: it asks a load balancer to start blocking or allowing a target,
then looks at the target's state on its own schedule (a persisted timer) until the step is done or its
deadline passes. Every call is idempotent, so a step repeated after a crash or an HAProxy reload simply
re-applies the wanted state (runtime state is a cache of what the engine decided).

A target is an on-premises instance, known to a load balancer by its instance name: HAProxy's server name
in the backend, ELBv2's target id, Classic ELB's instance id (README, "Load balancers").
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from opendeploy.domain.traffic_control import HealthTiming, TargetObservation, TargetState

__all__ = [
    "FakeLoadBalancer",
    "HealthTiming",
    "LoadBalancer",
    "TargetObservation",
    "TargetState",
    "TrafficError",
    "TrafficMisconfigured",
]


class TrafficError(Exception):
    """A load balancer refused or could not be reached; the message names which and why."""


class TrafficMisconfigured(TrafficError):
    """What the deployment group names does not exist or cannot be used (a backend, a server, a target
    group, a load balancer): no retry can help, so the engine fails at once instead of waiting."""


class LoadBalancer(Protocol):
    """One load-balancing unit a deployment group names (an HAProxy backend, an ELBv2 target group, a
    Classic ELB). All calls are idempotent and return without waiting for the effect."""

    @property
    def name(self) -> str: ...

    def timing(self) -> HealthTiming: ...

    def block(self, target: str) -> None:
        """Stop sending new connections to ``target`` (HAProxy drain; ELB deregistration)."""

    def finish_block(self, target: str) -> None:
        """Take ``target`` fully out once drained or when the drain limit passed (HAProxy maint)."""

    def allow(self, target: str) -> None:
        """Put ``target`` back into rotation (HAProxy ready; ELB registration)."""

    def observe(self, targets: Sequence[str]) -> Mapping[str, TargetObservation]: ...


@dataclass
class _FakeTarget:
    observation: TargetObservation
    healthy_after_allow: bool = True


@dataclass
class FakeLoadBalancer:
    """An in-memory load balancer for engine tests: ``allow`` makes a target healthy at once unless
    the test said otherwise (``never_healthy``), ``block`` drains, and the test ends connections."""

    name: str
    drain_limit: float = 300.0
    healthy_expected: float = 30.0
    targets: dict[str, _FakeTarget] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_target(self, target: str, *, connections: int = 0) -> None:
        with self._lock:
            self.targets[target] = _FakeTarget(TargetObservation(TargetState.IN_SERVICE, connections))

    def never_healthy(self, target: str) -> None:
        with self._lock:
            self.targets[target].healthy_after_allow = False

    def end_connections(self, target: str) -> None:
        with self._lock:
            entry = self.targets[target]
            entry.observation = replace(entry.observation, active_connections=0)

    def timing(self) -> HealthTiming:
        return HealthTiming(self.drain_limit, self.healthy_expected)

    def block(self, target: str) -> None:
        with self._lock:
            entry = self.targets.get(target)
            out = entry is not None and entry.observation.state is TargetState.OUT_OF_SERVICE
        # Blocking a target already out stays out (as HAProxy's maint and ELB's deregistered do).
        self._set(target, "block", TargetState.OUT_OF_SERVICE if out else TargetState.DRAINING)

    def finish_block(self, target: str) -> None:
        self._set(target, "finish_block", TargetState.OUT_OF_SERVICE)

    def allow(self, target: str) -> None:
        with self._lock:
            entry = self.targets.get(target)
            healthy = entry is None or entry.healthy_after_allow
        self._set(target, "allow", TargetState.IN_SERVICE if healthy else TargetState.UNHEALTHY)

    def observe(self, targets: Sequence[str]) -> Mapping[str, TargetObservation]:
        with self._lock:
            unknown = TargetObservation(TargetState.UNKNOWN)
            return {t: self.targets[t].observation if t in self.targets else unknown for t in targets}

    def _set(self, target: str, call: str, state: TargetState) -> None:
        with self._lock:
            self.calls.append((call, target))
            entry = self.targets.setdefault(target, _FakeTarget(TargetObservation(TargetState.UNKNOWN)))
            connections = 0 if state is TargetState.OUT_OF_SERVICE else entry.observation.active_connections
            entry.observation = TargetObservation(state, connections)
