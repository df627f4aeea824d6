"""The dispatch decision of an in-place deployment: which instances to deploy to now, and when it ends.

``next_dispatch`` is a pure function of the deployment's current state (its targets with their status,
health and zone, the deployment configuration's minimum healthy hosts and zonal configuration, the
time). The engine calls it on every state change and carries out the answer; it keeps no counters, so
the engine can be killed and resumed at any point.

The rules, the guide's (L14426–14624) read as one algorithm that reproduces every worked example:

- N targets; M = the minimum healthy hosts as a host count (a percentage of N, rounded up). N = 0 fails
  with NO_INSTANCES; M ≥ N fails at once with HEALTH_CONSTRAINTS_INVALID, deploying to no instance.
- An instance is offline while it is being deployed to and after its deployment failed (a Skipped one
  counts as failed too). Instances are started while ``N − offline ≥ M`` stays true, so with no failure
  the deployment runs ``N − M`` at a time. A slot is refilled as soon as an instance finishes: the guide
  deploys "to as many instances as it can without any risk" (L14490–14493), and a batch is the most
  that may be offline at once, not a wave that must finish together.
- When instances remain to be deployed, none is in progress and none may be started, the deployment
  fails with HEALTH_CONSTRAINTS and the remaining instances are Skipped. That moment is exactly when the
  failures used up the whole budget ``N − M``; a failure on the last instance therefore still succeeds
  (OneAtATime, L14736–14768; M = 9 of 10, L14523–14530).
- When every instance has finished, the deployment succeeded if at least M, and at least one, instance
  succeeded (L14312–14319); otherwise it failed with HEALTH_CONSTRAINTS.
- Order: Unhealthy first, then Unknown, Old and Current revision health, then by name (instance_health).
  Health orders the instances; it does not change the batch size (a brand-new group, all Unhealthy,
  still deploys N − M at a time).
- With a zonal configuration: one zone at a time, in ``zone_order``; within the zone the batch is also
  bounded by ``zone total − zone minimum``; a zone where that is 0 fails the deployment at once
  (HEALTH_CONSTRAINTS_INVALID); between zones, wait the monitor duration after the previous zone's last
  instance finished (``wait_until``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from opendeploy.domain.instance_health import NEW_INSTANCE, HealthStatus, dispatch_rank
from opendeploy.domain.minimum_healthy_hosts import (
    HealthyHostsRule,
    describe,
    enough_succeeded,
    health_constraints_valid,
    hosts_to_deploy_at_once,
    minimum_healthy_host_count,
)
from opendeploy.domain.statuses import DeploymentStatus, ErrorCode, TargetStatus
from opendeploy.domain.zonal_configuration import (
    ZonalRules,
    minimum_in_zone,
    monitor_duration_after,
    zone_order,
)

_FINISHED = frozenset({TargetStatus.SUCCEEDED, TargetStatus.FAILED, TargetStatus.SKIPPED})
_OFFLINE_AFTER = frozenset({TargetStatus.FAILED, TargetStatus.SKIPPED})
_KNOWN = frozenset({TargetStatus.PENDING, TargetStatus.IN_PROGRESS, *_FINISHED})


@dataclass(frozen=True)
class FleetTarget:
    """One instance of the deployment as dispatch sees it.

    ``health`` is the instance's health when the deployment started; ``zone`` matters only with a zonal
    configuration; ``finished_at`` (epoch seconds) is when it reached Succeeded or Failed, needed only for
    the zonal monitor duration.
    """

    name: str
    status: TargetStatus = TargetStatus.PENDING
    health: HealthStatus = NEW_INSTANCE
    zone: str | None = None
    finished_at: float | None = None

    def __post_init__(self) -> None:
        # The engine may hand over a status read back from the database as a plain string.
        object.__setattr__(self, "status", TargetStatus(self.status))


@dataclass(frozen=True)
class DispatchDecision:
    """What the engine does now.

    ``status`` is InProgress, Succeeded or Failed. ``start`` lists the instances to deploy to now, in
    order; ``skip`` the ones to mark Skipped because the deployment failed. ``wait_until`` (epoch
    seconds) is set while a zonal monitor duration runs: call again at that time.
    """

    status: DeploymentStatus
    start: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    error_code: ErrorCode | None = None
    message: str | None = None
    wait_until: float | None = None
    minimum_healthy_hosts: int = 0
    hosts_at_once: int = 0
    zone: str | None = None


def _failed(
    code: ErrorCode, message: str, targets: Iterable[FleetTarget], minimum: int = 0, at_once: int = 0
) -> DispatchDecision:
    pending = tuple(t.name for t in targets if t.status is TargetStatus.PENDING)
    return DispatchDecision(
        DeploymentStatus.FAILED,
        skip=pending,
        error_code=code,
        message=message,
        minimum_healthy_hosts=minimum,
        hosts_at_once=at_once,
    )


def _in_order(targets: Iterable[FleetTarget]) -> list[FleetTarget]:
    return sorted(targets, key=lambda t: (dispatch_rank(t.health), t.name))


def _check(targets: Sequence[FleetTarget]) -> None:
    names = set()
    for target in targets:
        if target.status not in _KNOWN:
            raise ValueError(
                f"instance {target.name!r}: status {target.status} is not one of an in-place rollout"
            )
        if target.name in names:
            raise ValueError(f"instance {target.name!r} is listed twice")
        names.add(target.name)


def next_dispatch(
    targets: Sequence[FleetTarget],
    minimum_healthy_hosts: HealthyHostsRule,
    *,
    zonal: ZonalRules | None = None,
    now: float | None = None,
) -> DispatchDecision:
    """Decide what an in-place deployment does next (see the module docstring for the rules)."""
    _check(targets)
    total = len(targets)
    if total == 0:
        return _failed(ErrorCode.NO_INSTANCES, "no instances match the deployment group", targets)
    minimum = minimum_healthy_host_count(minimum_healthy_hosts, total)
    at_once = hosts_to_deploy_at_once(total, minimum)
    if not health_constraints_valid(total, minimum):
        return _failed(
            ErrorCode.HEALTH_CONSTRAINTS_INVALID,
            f"minimum healthy hosts ({describe(minimum_healthy_hosts)}) is {minimum} of {total} instances; "
            f"it must be below the number of instances",
            targets,
            minimum,
            at_once,
        )
    if zonal is not None:
        return _next_zonal_dispatch(targets, minimum, at_once, zonal, now)

    offline = sum(1 for t in targets if t.status in _OFFLINE_AFTER or t.status is TargetStatus.IN_PROGRESS)
    pending = [t for t in targets if t.status is TargetStatus.PENDING]
    in_progress = any(t.status is TargetStatus.IN_PROGRESS for t in targets)
    if not pending and not in_progress:
        return _ended(targets, minimum, at_once)
    room = min(total - offline - minimum, len(pending))
    if room > 0:
        chosen = tuple(t.name for t in _in_order(pending)[:room])
        return DispatchDecision(
            DeploymentStatus.IN_PROGRESS, start=chosen, minimum_healthy_hosts=minimum, hosts_at_once=at_once
        )
    if in_progress:
        return DispatchDecision(
            DeploymentStatus.IN_PROGRESS, minimum_healthy_hosts=minimum, hosts_at_once=at_once
        )
    return _too_few_healthy(targets, minimum, at_once)


def _ended(targets: Sequence[FleetTarget], minimum: int, at_once: int) -> DispatchDecision:
    succeeded = sum(1 for t in targets if t.status is TargetStatus.SUCCEEDED)
    skipped = sum(1 for t in targets if t.status is TargetStatus.SKIPPED)
    if skipped == 0 and enough_succeeded(succeeded, minimum):
        return DispatchDecision(
            DeploymentStatus.SUCCEEDED, minimum_healthy_hosts=minimum, hosts_at_once=at_once
        )
    return _failed(
        ErrorCode.HEALTH_CONSTRAINTS,
        f"{succeeded} of {len(targets)} instances succeeded; at least {max(minimum, 1)} must",
        targets,
        minimum,
        at_once,
    )


def _too_few_healthy(
    targets: Sequence[FleetTarget], minimum: int, at_once: int, zone_note: str = ""
) -> DispatchDecision:
    failed = sum(1 for t in targets if t.status in _OFFLINE_AFTER)
    remaining = sum(1 for t in targets if t.status is TargetStatus.PENDING)
    return _failed(
        ErrorCode.HEALTH_CONSTRAINTS,
        f"{failed} of {len(targets)} instances failed; deploying to any of the {remaining} remaining "
        f"would leave fewer than {minimum} healthy instances{zone_note}",
        targets,
        minimum,
        at_once,
    )


def _next_zonal_dispatch(
    targets: Sequence[FleetTarget], minimum: int, at_once: int, zonal: ZonalRules, now: float | None
) -> DispatchDecision:
    total = len(targets)
    order = zone_order(t.zone for t in targets)
    by_zone: dict[str | None, list[FleetTarget]] = {zone: [] for zone in order}
    for target in targets:
        by_zone[target.zone].append(target)
    zone_minimums = {zone: minimum_in_zone(zonal, len(members)) for zone, members in by_zone.items()}
    for zone, members in by_zone.items():
        if not health_constraints_valid(len(members), zone_minimums[zone]):
            return _failed(
                ErrorCode.HEALTH_CONSTRAINTS_INVALID,
                f"minimum healthy hosts per zone is {zone_minimums[zone]} of the {len(members)} instances in "
                f"zone {_zone_name(zone)}; it must be below the number of instances in the zone",
                targets,
                minimum,
                at_once,
            )

    position = next(
        (i for i, zone in enumerate(order) if any(t.status not in _FINISHED for t in by_zone[zone])), None
    )
    if position is None:
        return _ended(targets, minimum, at_once)
    zone = order[position]
    members = by_zone[zone]
    zone_total, zone_minimum = len(members), zone_minimums[zone]
    batch = min(at_once, hosts_to_deploy_at_once(zone_total, zone_minimum))
    offline = sum(1 for t in targets if t.status in _OFFLINE_AFTER or t.status is TargetStatus.IN_PROGRESS)
    zone_offline = sum(
        1 for t in members if t.status in _OFFLINE_AFTER or t.status is TargetStatus.IN_PROGRESS
    )
    pending = [t for t in members if t.status is TargetStatus.PENDING]
    in_progress = any(t.status is TargetStatus.IN_PROGRESS for t in targets)
    room = min(total - offline - minimum, zone_total - zone_offline - zone_minimum, len(pending))
    progress = DispatchDecision(
        DeploymentStatus.IN_PROGRESS, minimum_healthy_hosts=minimum, hosts_at_once=batch, zone=zone
    )
    if room <= 0:
        if in_progress:
            return progress
        note = f" or fewer than {zone_minimum} in zone {_zone_name(zone)}"
        return replace(_too_few_healthy(targets, minimum, batch, note), zone=zone)

    zone_started = len(pending) < zone_total
    if not zone_started and position > 0:
        wait = monitor_duration_after(zonal, position - 1)
        if wait > 0:
            previous = by_zone[order[position - 1]]
            if now is None or any(t.finished_at is None for t in previous):
                raise ValueError(
                    "a zonal monitor duration needs `now` and each finished instance's finished_at"
                )
            until = max(t.finished_at for t in previous if t.finished_at is not None) + wait
            if now < until:
                return replace(progress, wait_until=until)
    chosen = tuple(t.name for t in _in_order(pending)[:room])
    return replace(progress, start=chosen)


def _zone_name(zone: str | None) -> str:
    return repr(zone) if zone is not None else "(instances without a zone)"
