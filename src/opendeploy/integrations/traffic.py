"""Load balancers as the engine sees them: a small interface for BlockTraffic and AllowTraffic, its
in-memory fake for engine tests, and the timing a plan shows before a deployment starts.

The engine never waits inside a call: it asks a load balancer to start blocking or allowing a target,
then looks at the target's state on its own schedule (a persisted timer) until the step is done or its
deadline passes. Every call is idempotent, so a step repeated after a crash or an HAProxy reload simply
re-applies the wanted state (runtime state is a cache of what the engine decided).

A target is an on-premises instance, known to a load balancer by its instance name: HAProxy's server name
in the backend, ELBv2's target id, Classic ELB's instance id (README, "Load balancers").

Canary and linear traffic shifting (blue/green deployments of servers, issue 11) splits new requests
between the original and the replacement fleet: ``shift`` sets the replacement's share, ``observe_shift``
reads the share the load balancer applies now, so a step repeated after a crash or a reload re-applies
it. HAProxy does it with server weights, an ELBv2 target group pair with its listener's weighted forward
action; a single ELBv2 target group or a Classic ELB cannot (``TrafficMisconfigured``).
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

    def shift(self, original: Sequence[str], replacement: Sequence[str], replacement_percent: float) -> None:
        """Send ``replacement_percent`` (0–100) of new requests to the ``replacement`` targets together and
        the rest to the ``original`` ones. Only the split changes: a target's state (drained, taken out,
        unhealthy) is still block's and allow's, and connections already open stay where they are.
        Raises ``TrafficMisconfigured`` when this load balancer cannot split traffic by weight."""

    def observe_shift(self, original: Sequence[str], replacement: Sequence[str]) -> float | None:
        """The replacement's share (percent) the load balancer applies now by its weights, whatever the
        targets' health; None when it cannot tell. It may differ a little from what ``shift`` asked
        when the load balancer's weights cannot express that share exactly. Raises
        ``TrafficMisconfigured`` like ``shift``, so calling it first tells whether shifting can work."""


@dataclass
class _FakeTarget:
    observation: TargetObservation
    healthy_after_allow: bool = True


@dataclass
class FakeLoadBalancer:
    """An in-memory load balancer for engine tests: ``allow`` makes a target healthy at once unless
    the test said otherwise (``never_healthy``), ``block`` drains, and the test ends connections.

    ``shift`` records the share (``replacement_share``, None before any shift) and the call in
    ``shifts``; ``forget_shift`` stands for a reload that drops it, ``cannot_shift`` for a load balancer
    without weights (a Classic ELB)."""

    name: str
    drain_limit: float = 300.0
    healthy_expected: float = 30.0
    targets: dict[str, _FakeTarget] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    replacement_share: float | None = None
    shifts: list[tuple[tuple[str, ...], tuple[str, ...], float]] = field(default_factory=list)
    weighted: bool = True
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

    def shift(self, original: Sequence[str], replacement: Sequence[str], replacement_percent: float) -> None:
        self._check_shift(original, replacement)
        if not 0 <= replacement_percent <= 100:
            raise ValueError(f"a share of traffic is between 0 and 100 percent, got {replacement_percent}")
        if (replacement_percent > 0 and not replacement) or (replacement_percent < 100 and not original):
            raise TrafficMisconfigured(f"{self.name}: no targets to send {replacement_percent}% to")
        with self._lock:
            self.shifts.append((tuple(original), tuple(replacement), float(replacement_percent)))
            self.replacement_share = float(replacement_percent)

    def observe_shift(self, original: Sequence[str], replacement: Sequence[str]) -> float | None:
        self._check_shift(original, replacement)
        with self._lock:
            return self.replacement_share

    def forget_shift(self) -> None:
        with self._lock:
            self.replacement_share = None

    def cannot_shift(self) -> None:
        with self._lock:
            self.weighted = False

    def _check_shift(self, original: Sequence[str], replacement: Sequence[str]) -> None:
        if not self.weighted:
            raise TrafficMisconfigured(f"{self.name} cannot split traffic by weight")
        if set(original) & set(replacement):
            raise TrafficMisconfigured(f"{self.name}: a target cannot be both original and replacement")

    def _set(self, target: str, call: str, state: TargetState) -> None:
        with self._lock:
            self.calls.append((call, target))
            entry = self.targets.setdefault(target, _FakeTarget(TargetObservation(TargetState.UNKNOWN)))
            connections = 0 if state is TargetState.OUT_OF_SERVICE else entry.observation.active_connections
            entry.observation = TargetObservation(state, connections)
