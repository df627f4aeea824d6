"""Zonal configuration: one zone at a time, per-zone minimum, monitor durations (guide L14548–14624,
L14996–15039, L15062–15081)."""

from __future__ import annotations

import itertools

import pytest
from fleet_simulation import simulate

from opendeploy.domain.batching import FleetTarget, next_dispatch
from opendeploy.domain.deployment_config import ZonalConfig, config_from_wire
from opendeploy.domain.minimum_healthy_hosts import (
    MinimumHealthyHosts,
    MinimumHealthyHostsType,
    minimum_healthy_host_count,
)
from opendeploy.domain.statuses import DeploymentStatus, ErrorCode, TargetStatus
from opendeploy.domain.zonal_configuration import minimum_in_zone, monitor_duration_after, zone_of, zone_order


def hosts(value: int) -> MinimumHealthyHosts:
    return MinimumHealthyHosts(MinimumHealthyHostsType.HOST_COUNT, value)


def percent(value: int) -> MinimumHealthyHosts:
    return MinimumHealthyHosts(MinimumHealthyHostsType.FLEET_PERCENT, value)


def fleet(**zone_sizes: int) -> dict[str, str | None]:
    """Instance name -> zone, e.g. fleet(a=3, b=2) -> a-001..a-003 in zone a, b-001, b-002 in zone b."""
    return {f"{zone}-{k:03d}": zone for zone, size in zone_sizes.items() for k in range(1, size + 1)}


def sizes_by_zone(
    batches: list[tuple[str, ...]], zones: dict[str, str | None]
) -> list[tuple[str | None, int]]:
    return [(zones[batch[0]], len(batch)) for batch in batches]


def test_the_guides_200_host_example() -> None:
    """Guide L14577–14624: 200 hosts, minimum 160, 100 per zone, minimum 50 per zone: A = 40, B = 50, so
    batches of 40: zone 1 gets 40, 40, 20; it bakes for the first-zone monitor duration; then zone 2 gets
    40, 40, 20."""
    zones = fleet(**{"us-east-1a": 100, "us-east-1b": 100})
    zonal = ZonalConfig(
        first_zone_monitor_duration_in_seconds=900,
        monitor_duration_in_seconds=3600,
        minimum_healthy_hosts_per_zone=hosts(50),
    )
    run = simulate(list(zones), hosts(160), zones=zones, zonal=zonal, together=True)
    assert sizes_by_zone(run.batches, zones) == [
        ("us-east-1a", 40),
        ("us-east-1a", 40),
        ("us-east-1a", 20),
        ("us-east-1b", 40),
        ("us-east-1b", 40),
        ("us-east-1b", 20),
    ]
    assert run.zones_in_progress_together == 1
    assert run.status is DeploymentStatus.SUCCEEDED
    # Zone 1's last instance finished at t=30; zone 2 starts after the 900 s first-zone bake, no bake after
    # the last zone.
    assert run.waits == [(30.0, 930.0)]
    first_in_zone_2 = min(n for n in zones if zones[n] == "us-east-1b")
    assert run.started_at[first_in_zone_2] == 930.0


def test_monitor_duration_between_later_zones_and_first_zone_default() -> None:
    """Guide L15017–15030: the monitor duration follows every zone but the last; the first zone uses
    its own duration if set, else the monitor duration; without one the next zone starts at once."""
    zones = fleet(a=2, b=2, c=2)
    run = simulate(
        list(zones), hosts(0), zones=zones, zonal=ZonalConfig(600, 60), together=True
    )  # first-zone 600 s, then 60 s
    assert [until - start for start, until in run.waits] == [600, 60]
    run = simulate(list(zones), hosts(0), zones=zones, zonal=ZonalConfig(None, 60), together=True)
    assert [until - start for start, until in run.waits] == [60, 60]
    run = simulate(list(zones), hosts(0), zones=zones, zonal=ZonalConfig(), together=True)
    assert run.waits == []
    assert [len(b) for b in run.batches] == [2, 2, 2]


def test_per_zone_minimum_defaults_to_zero_percent() -> None:
    """Guide L15031–15039: without minimum healthy hosts per zone the default is 0 percent, so a zone
    may go all at once within the overall minimum."""
    assert minimum_in_zone(ZonalConfig(), 100) == 0
    zones = fleet(a=4, b=4)
    run = simulate(list(zones), hosts(4), zones=zones, zonal=ZonalConfig(), together=True)
    assert sizes_by_zone(run.batches, zones) == [("a", 4), ("b", 4)]


def test_per_zone_percent_rounds_up_per_zone() -> None:
    """Guide L14440–14442 applied per zone: 50% of a 3-instance zone is 2, so that zone goes 1 at a time
    while a 4-instance zone goes 2 at a time."""
    zones = fleet(a=3, b=4)
    zonal = ZonalConfig(minimum_healthy_hosts_per_zone=percent(50))
    run = simulate(list(zones), hosts(0), zones=zones, zonal=zonal, together=True)
    assert sizes_by_zone(run.batches, zones) == [("a", 1), ("a", 1), ("a", 1), ("b", 2), ("b", 2)]


def test_breaching_a_zone_minimum_fails_every_zone() -> None:
    """Guide L14558–14561: if the healthy count falls below either minimum, the deployment fails across
    all zones: the failed zone's remaining instances and every later zone are Skipped."""
    zones = fleet(a=4, b=4)
    zonal = ZonalConfig(minimum_healthy_hosts_per_zone=percent(75))
    run = simulate(list(zones), hosts(0), {"a-002"}, zones=zones, zonal=zonal)
    assert run.status is DeploymentStatus.FAILED
    assert run.decision.error_code is ErrorCode.HEALTH_CONSTRAINTS
    assert run.decision.zone == "a"
    assert run.with_status(TargetStatus.SKIPPED) == ["a-003", "a-004", "b-001", "b-002", "b-003", "b-004"]
    assert "zone 'a'" in (run.decision.message or "")


def test_failures_in_an_earlier_zone_count_against_the_overall_minimum() -> None:
    """Guide L14558–14561: the overall minimum spans zones; two failures in zone a use up the overall
    budget of 2 (minimum 6 of 8), so zone b cannot start."""
    zones = fleet(a=4, b=4)
    run = simulate(list(zones), hosts(6), {"a-001", "a-002"}, zones=zones, zonal=ZonalConfig(), together=True)
    assert run.status is DeploymentStatus.FAILED
    assert run.with_status(TargetStatus.SKIPPED) == ["a-003", "a-004", "b-001", "b-002", "b-003", "b-004"]


def test_the_last_instance_of_the_last_zone_may_fail() -> None:
    """The last-instance rule (guide L14527–14528) holds for the deployment's last instance."""
    zones = fleet(a=3, b=3)
    run = simulate(list(zones), hosts(5), {"b-003"}, zones=zones, zonal=ZonalConfig())
    assert run.status is DeploymentStatus.SUCCEEDED


def test_a_zone_that_cannot_lose_an_instance_fails_at_once() -> None:
    """Decision: like the overall minimum (L14482–14488), a per-zone minimum not below a zone's size means
    that zone can never be deployed to, so the deployment fails at once with HEALTH_CONSTRAINTS_INVALID."""
    zones = fleet(a=4, b=1)
    zonal = ZonalConfig(minimum_healthy_hosts_per_zone=percent(50))
    decision = next_dispatch([FleetTarget(n, zone=z) for n, z in zones.items()], hosts(0), zonal=zonal)
    assert decision.status is DeploymentStatus.FAILED
    assert decision.error_code is ErrorCode.HEALTH_CONSTRAINTS_INVALID
    assert decision.start == ()
    assert "zone 'b'" in (decision.message or "")


def test_the_cli_example_300_total_50_per_az() -> None:
    """Guide L15074–15081: `create-deployment-config --deployment-config-name 300Total50PerAZ
    --minimum-healthy-hosts type=HOST_COUNT,value=300 --zonal-config '{"monitorDurationInSeconds":3600,
    "minimumHealthyHostsPerZone":{"type":"HOST_COUNT","value":50}}'` on 3 zones of 120: A = 60,
    B = 70, batches of 60 one zone at a time, an hour between zones."""
    config = config_from_wire(
        "300Total50PerAZ",
        minimum_healthy_hosts={"type": "HOST_COUNT", "value": 300},
        zonal_config={
            "monitorDurationInSeconds": 3600,
            "minimumHealthyHostsPerZone": {"type": "HOST_COUNT", "value": 50},
        },
    )
    zones = fleet(z1=120, z2=120, z3=120)
    run = simulate(
        list(zones), config.minimum_healthy_hosts, zones=zones, zonal=config.zonal_config, together=True
    )
    assert sizes_by_zone(run.batches, zones) == [
        ("z1", 60),
        ("z1", 60),
        ("z2", 60),
        ("z2", 60),
        ("z3", 60),
        ("z3", 60),
    ]
    assert [until - start for start, until in run.waits] == [3600, 3600]
    assert run.status is DeploymentStatus.SUCCEEDED


def test_zone_from_a_configurable_tag_and_zone_order() -> None:
    """Decision: the zone is the value of a configured instance tag; zones go by name and instances
    without the tag form one zone of their own, deployed last."""
    assert zone_of({"zone": "rack-2", "Name": "web"}, "zone") == "rack-2"
    assert zone_of({"Name": "web"}, "zone") is None
    assert zone_order(["rack-2", None, "rack-1", "rack-2"]) == ["rack-1", "rack-2", None]
    zones = {"w1": "rack-2", "w2": None, "w3": "rack-1"}
    run = simulate(list(zones), hosts(0), zones=zones, zonal=ZonalConfig(), together=True)
    assert run.batches == [("w3",), ("w1",), ("w2",)]


def test_monitor_duration_needs_the_clock() -> None:
    """A monitor duration is measured from the previous zone's last finish; without times it is an engine
    bug, reported as such rather than guessed."""
    targets = [FleetTarget("a", TargetStatus.SUCCEEDED, zone="a"), FleetTarget("b", zone="b")]
    with pytest.raises(ValueError, match="finished_at"):
        next_dispatch(targets, hosts(0), zonal=ZonalConfig(None, 60), now=100.0)
    targets[0] = FleetTarget("a", TargetStatus.SUCCEEDED, zone="a", finished_at=50.0)
    assert next_dispatch(targets, hosts(0), zonal=ZonalConfig(None, 60), now=100.0).wait_until == 110.0
    assert next_dispatch(targets, hosts(0), zonal=ZonalConfig(None, 60), now=110.0).start == ("b",)


def test_monitor_duration_after_positions() -> None:
    zonal = ZonalConfig(first_zone_monitor_duration_in_seconds=0, monitor_duration_in_seconds=30)
    assert [monitor_duration_after(zonal, p) for p in range(3)] == [0, 30, 30]


@pytest.mark.parametrize("sizes", [(1, 1), (2, 1), (2, 3), (3, 3), (1, 2, 2)])
def test_never_below_either_minimum_brute_force(sizes: tuple[int, ...]) -> None:
    """Every overall and per-zone minimum, every set of failing instances: one zone at a time, never more
    offline than total − minimum overall nor zone total − zone minimum in any zone."""
    zones = fleet(**{f"z{k}": size for k, size in enumerate(sizes)})
    total = len(zones)
    for overall, per_zone in itertools.product(
        range(total), (percent(0), percent(34), percent(50), hosts(1))
    ):
        zonal = ZonalConfig(minimum_healthy_hosts_per_zone=per_zone)
        for count in range(total + 1):
            for failing in itertools.combinations(zones, count):
                run = simulate(list(zones), hosts(overall), set(failing), zones=zones, zonal=zonal)
                case = f"overall={overall} per_zone={per_zone} failing={failing}"
                if any(minimum_healthy_host_count(per_zone, n) >= n for n in sizes):
                    assert run.decision.error_code is ErrorCode.HEALTH_CONSTRAINTS_INVALID, case
                    continue
                assert run.zones_in_progress_together <= 1, case
                assert run.max_offline <= total - overall, case
                for zone, offline in run.max_offline_per_zone.items():
                    zone_total = sum(1 for z in zones.values() if z == zone)
                    assert offline <= zone_total - minimum_in_zone(zonal, zone_total), case
                if run.status is DeploymentStatus.SUCCEEDED:
                    assert len(run.with_status(TargetStatus.SUCCEEDED)) >= max(overall, 1), case
                    assert not run.with_status(TargetStatus.SKIPPED), case
