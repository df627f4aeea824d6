"""Drive ``next_dispatch`` the way the engine does, with scripted instance results, and record what happened.

Instances finish either one at a time, oldest first (``together=False``: a rolling deployment with
instances of different speed), or all in-flight instances at the same moment (``together=True``:
instances that take equally long, which is how the guide's batch examples read).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace

from opendeploy.domain.batching import DispatchDecision, FleetTarget, next_dispatch
from opendeploy.domain.instance_health import NEW_INSTANCE, HealthStatus
from opendeploy.domain.minimum_healthy_hosts import HealthyHostsRule
from opendeploy.domain.statuses import DeploymentStatus, TargetStatus
from opendeploy.domain.zonal_configuration import ZonalRules

OFFLINE = (TargetStatus.IN_PROGRESS, TargetStatus.FAILED, TargetStatus.SKIPPED)


@dataclass
class Rollout:
    status: DeploymentStatus
    decision: DispatchDecision
    batches: list[tuple[str, ...]] = field(default_factory=list)  # each non-empty ``start``, in order
    started: list[str] = field(default_factory=list)
    statuses: dict[str, TargetStatus] = field(default_factory=dict)
    waits: list[tuple[float, float]] = field(default_factory=list)  # (from, until) of monitor durations
    started_at: dict[str, float] = field(default_factory=dict)
    max_offline: int = 0
    max_offline_per_zone: dict[str | None, int] = field(default_factory=dict)
    zones_in_progress_together: int = 1

    def with_status(self, status: TargetStatus) -> list[str]:
        return sorted(name for name, s in self.statuses.items() if s is status)


def names(n: int) -> list[str]:
    """i01, i02, ... so that name order is numeric order."""
    return [f"i{k:02d}" for k in range(1, n + 1)]


def simulate(
    instances: int | Iterable[str],
    rule: HealthyHostsRule,
    failing: Collection[str] = (),
    *,
    together: bool = False,
    health: Mapping[str, HealthStatus] | None = None,
    zones: Mapping[str, str | None] | None = None,
    zonal: ZonalRules | None = None,
    step_seconds: float = 10.0,
    max_steps: int = 100_000,
) -> Rollout:
    target_names = names(instances) if isinstance(instances, int) else list(instances)
    targets = {
        name: FleetTarget(name, health=(health or {}).get(name, NEW_INSTANCE), zone=(zones or {}).get(name))
        for name in target_names
    }
    now = 0.0
    in_flight: list[str] = []
    rollout: Rollout | None = None
    batches: list[tuple[str, ...]] = []
    started: list[str] = []
    started_at: dict[str, float] = {}
    waits: list[tuple[float, float]] = []
    max_offline = 0
    max_offline_zone: dict[str | None, int] = {}
    zones_together = 0
    for _ in range(max_steps):
        decision = next_dispatch(list(targets.values()), rule, zonal=zonal, now=now)
        if decision.status is not DeploymentStatus.IN_PROGRESS:
            assert not decision.start, "a finished deployment starts nothing"
            assert not in_flight, "the deployment ended while instances were still being deployed to"
            for name in decision.skip:
                assert targets[name].status is TargetStatus.PENDING, f"{name} skipped but not pending"
                targets[name] = replace(targets[name], status=TargetStatus.SKIPPED)
            rollout = Rollout(decision.status, decision)
            break
        assert not decision.skip
        if decision.start:
            batches.append(decision.start)
            for name in decision.start:
                assert targets[name].status is TargetStatus.PENDING, f"{name} started twice"
                targets[name] = replace(targets[name], status=TargetStatus.IN_PROGRESS)
                started.append(name)
                started_at[name] = now
                in_flight.append(name)
        offline = [t for t in targets.values() if t.status in OFFLINE]
        max_offline = max(max_offline, len(offline))
        for zone in {t.zone for t in targets.values()}:
            count = sum(1 for t in offline if t.zone == zone)
            max_offline_zone[zone] = max(max_offline_zone.get(zone, 0), count)
        zones_together = max(zones_together, len({targets[n].zone for n in in_flight}))
        if decision.wait_until is not None:
            assert not in_flight and not decision.start
            assert decision.wait_until > now
            waits.append((now, decision.wait_until))
            now = decision.wait_until
            continue
        assert in_flight, "nothing in flight, nothing started and no wait: the deployment would hang"
        now += step_seconds
        finishing = list(in_flight) if together else [in_flight[0]]
        for name in finishing:
            in_flight.remove(name)
            result = TargetStatus.FAILED if name in failing else TargetStatus.SUCCEEDED
            targets[name] = replace(targets[name], status=result, finished_at=now)
    else:
        raise AssertionError("the deployment did not end")
    rollout.batches = batches
    rollout.started = started
    rollout.started_at = started_at
    rollout.statuses = {name: t.status for name, t in targets.items()}
    rollout.waits = waits
    rollout.max_offline = max_offline
    rollout.max_offline_per_zone = max_offline_zone
    rollout.zones_in_progress_together = zones_together
    return rollout
