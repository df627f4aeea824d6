"""BlockTraffic and AllowTraffic as decisions over what the load balancers report: when each step is
done, when a drained instance may be taken fully out, when an instance that never became healthy fails,
and how long each step is expected to take.

The server runs both events itself (the guide reserves them: L24336–24362). It asks every load balancer
of the deployment group to block or allow the instance, then looks at them every poll interval and
decides here:

- **BlockTraffic** ends as soon as the instance is out of every load balancer. A load balancer that
  still drains it is waited for until its connections reach 0 or the drain limit (the deregistration
  delay) passes, then asked to take it fully out (HAProxy's maintenance; ELB ends draining by itself).
  AWS instead always waits for its deregistration delay (300 s by default): ending at 0 connections is
  what makes opendeploy's BlockTraffic take seconds.
- **AllowTraffic** ends as soon as every load balancer reports the instance healthy, and fails the
  instance when that has not happened within the health wait (the guide's hour, L3339–3342).

Expected times, shown before a deployment starts (AWS Knowledge Center: a traffic step takes about
healthy threshold × interval + one interval to allow, and the deregistration delay to block):
``expected_block`` and ``expected_allow``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum


class TargetState(Enum):
    """Where a target stands in one load balancer."""

    IN_SERVICE = "in_service"  # registered (ready) and reported healthy: takes new connections
    UNHEALTHY = "unhealthy"  # registered (ready) but health checks do not (yet) pass
    DRAINING = "draining"  # takes no new connections; existing ones may still run
    OUT_OF_SERVICE = "out_of_service"  # taken out (maintenance / deregistered): no traffic at all
    UNKNOWN = "unknown"  # the load balancer does not know this target


@dataclass(frozen=True)
class TargetObservation:
    state: TargetState
    active_connections: int = 0  # current sessions; 0 when the load balancer cannot tell


@dataclass(frozen=True)
class HealthTiming:
    """How long the two traffic steps are expected to take, from the load balancer's own settings.

    ``drain_limit`` is the longest BlockTraffic waits for connections to end (HAProxy: the configured
    deregistration delay; ELB: the target group's deregistration delay or Classic ELB's draining
    timeout). ``healthy_expected`` is the time a healthy target needs to be reported up after it is
    allowed: (rise/healthy threshold × check interval) + one interval.
    """

    drain_limit: float
    healthy_expected: float


class TrafficAction(Enum):
    WAIT = "wait"  # look again after the poll interval
    FINISH_BLOCK = "finish_block"  # take the instance fully out of the load balancers named
    SUCCEEDED = "succeeded"  # the step is done
    FAILED = "failed"  # the instance fails this event (``message`` says why)


@dataclass(frozen=True)
class TrafficDecision:
    action: TrafficAction
    load_balancers: tuple[str, ...] = ()  # FINISH_BLOCK: those to take the instance out of
    message: str = ""


_OUT = (TargetState.OUT_OF_SERVICE, TargetState.UNKNOWN)


def block_progress(
    observations: Mapping[str, TargetObservation], started_at: float, now: float, drain_limit: float
) -> TrafficDecision:
    """What BlockTraffic does next, given each load balancer's view of the instance (by name)."""
    draining = [name for name, seen in observations.items() if seen.state not in _OUT]
    if not draining:
        return TrafficDecision(TrafficAction.SUCCEEDED)
    limit_passed = now - started_at >= drain_limit
    finish = tuple(
        name
        for name in draining
        if limit_passed
        or (observations[name].state is TargetState.DRAINING and observations[name].active_connections == 0)
    )
    if finish:
        return TrafficDecision(TrafficAction.FINISH_BLOCK, finish)
    return TrafficDecision(TrafficAction.WAIT)


def allow_progress(
    observations: Mapping[str, TargetObservation],
    started_at: float,
    now: float,
    health_wait: float,
    instance: str = "the instance",
) -> TrafficDecision:
    """What AllowTraffic does next: done once every load balancer reports the instance healthy."""
    waiting = [name for name, seen in observations.items() if seen.state is not TargetState.IN_SERVICE]
    if not waiting:
        return TrafficDecision(TrafficAction.SUCCEEDED)
    if now - started_at >= health_wait:
        states = ", ".join(f"{name}: {observations[name].state.value}" for name in waiting)
        return TrafficDecision(
            TrafficAction.FAILED,
            tuple(waiting),
            f"{instance} did not become healthy behind its load balancers within {health_wait:g} seconds "
            f"({states})",
        )
    return TrafficDecision(TrafficAction.WAIT)


def reverted(observations: Mapping[str, TargetObservation], blocking: bool) -> tuple[str, ...]:
    """The load balancers that have undone what the step asked of them (an HAProxy reload forgets its
    runtime state; somebody registered the instance again): they are asked again. Blocking: those that
    show the instance back in rotation; allowing: those that show it out or draining."""
    undone = (
        (TargetState.IN_SERVICE, TargetState.UNHEALTHY)
        if blocking
        else (TargetState.OUT_OF_SERVICE, TargetState.DRAINING)
    )
    return tuple(name for name, seen in observations.items() if seen.state in undone)


def expected_block(timings: Sequence[HealthTiming], busy: bool = True) -> float:
    """The longest BlockTraffic should take: the largest drain limit when connections stay open
    (``busy``), else about nothing — it ends once the instance has no connections left."""
    return max((t.drain_limit for t in timings), default=0.0) if busy else 0.0


def expected_allow(timings: Sequence[HealthTiming]) -> float:
    """About how long AllowTraffic takes for a healthy instance: the slowest load balancer's
    healthy threshold × check interval + one interval."""
    return max((t.healthy_expected for t in timings), default=0.0)
