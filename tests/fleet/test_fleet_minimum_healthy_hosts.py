"""Minimum healthy hosts with real agents: the guide's worked examples (§2.7, L14489–14547; the
predefined configurations, L14649–14797) on fleets of 9 and 10 hosts, with failures injected at chosen
instances. Each test asserts the order instances were deployed to, how many ran at once (from the
lifecycle events' recorded start and end times), the final statuses and which instances were Skipped.

A brand-new deployment group's instances are all new (Unhealthy, Unknown revision), so they are
deployed to in name order: n01, n02, ... n10.
"""

from __future__ import annotations

from typing import Any

from fleet_cluster import (
    IN_PLACE_EVENTS,
    Cluster,
    event_statuses,
    most_at_once,
    start_order,
    statuses,
)

from support.names import unique


def _custom_config(cluster: Cluster, kind: str, value: int) -> str:
    name = unique(f"{kind.lower()}-{value}")
    cluster.codedeploy.create_deployment_config(
        deploymentConfigName=name, minimumHealthyHosts={"type": kind, "value": value}
    )
    return name


def _run(
    cluster: Cluster,
    hosts: int,
    config: str,
    failing: tuple[int, ...] = (),
    *,
    event: str = "ValidateService",
    pause: float = 0.3,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], list[str]]:
    """Deploy to the first ``hosts`` hosts with ``config``; the hosts numbered in ``failing`` (1-based)
    fail at ``event``. (deployment info, targets, instance names in order)"""
    fleet = cluster.hosts[:hosts]
    application, group = cluster.group(cluster.select(fleet), config)
    for number in failing:
        cluster.mark(fleet[number - 1], f"fail-{group}-{event}")
    app_dir = f"/tmp/CodeDeployExample/{group}"
    deployment_id = cluster.deploy(application, group, cluster.revision("v1", app_dir, pause=pause))
    info = cluster.wait(deployment_id)
    return info, cluster.targets(deployment_id), [host.name for host in fleet]


def test_minimum_nine_of_ten_goes_one_at_a_time_and_survives_a_failure_on_the_last_instance(
    cluster: Cluster,
) -> None:
    """M = 9 of 10: one at a time; a failure on the last instance still succeeds (L14523–14530)."""
    info, targets, names = _run(cluster, 10, _custom_config(cluster, "HOST_COUNT", 9), failing=(10,))

    assert info["status"] == "Succeeded", info
    assert start_order(targets) == names
    assert most_at_once(targets) == 1
    assert statuses(targets) == {**{name: "Succeeded" for name in names[:9]}, names[9]: "Failed"}
    assert event_statuses(targets[names[9]]) == ["Succeeded"] * 6 + ["Failed"]
    assert info["deploymentOverview"] == {
        "Pending": 0, "InProgress": 0, "Succeeded": 9, "Failed": 1, "Skipped": 0, "Ready": 0,
    }  # fmt: skip
    failed = cluster.codedeploy.list_deployment_targets(
        deploymentId=info["deploymentId"], targetFilters={"TargetStatus": ["Failed"]}
    )["targetIds"]
    assert failed == [names[9]]


def test_one_at_a_time_fails_at_the_first_failure_before_the_last_and_skips_the_rest(
    cluster: Cluster,
) -> None:
    info, targets, names = _run(cluster, 10, "CodeDeployDefault.OneAtATime", failing=(4,))

    assert info["status"] == "Failed", info
    assert info["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"
    assert start_order(targets) == names[:4]
    assert most_at_once(targets) == 1
    assert statuses(targets) == {
        **{name: "Succeeded" for name in names[:3]},
        names[3]: "Failed",
        **{name: "Skipped" for name in names[4:]},
    }
    for name in names[4:]:
        assert event_statuses(targets[name]) == ["Skipped"] * len(IN_PLACE_EVENTS)
    skipped = cluster.targets(info["deploymentId"], TargetStatus=["Skipped"])
    assert sorted(skipped) == names[4:]
    assert info["deploymentOverview"]["Skipped"] == 6


def test_minimum_eight_of_ten_goes_two_at_a_time_and_two_failures_fail_it(cluster: Cluster) -> None:
    """M = 8 of 10: two at a time; two failures fail the deployment at once (L14531–14537)."""
    info, targets, names = _run(cluster, 10, _custom_config(cluster, "HOST_COUNT", 8), failing=(2, 5))

    assert info["status"] == "Failed", info
    assert info["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"
    assert most_at_once(targets) == 2
    assert set(start_order(targets)[:2]) == set(names[:2])
    assert statuses(targets) == {
        names[0]: "Succeeded",
        names[1]: "Failed",
        names[2]: "Succeeded",
        names[3]: "Succeeded",
        names[4]: "Failed",
        **{name: "Skipped" for name in names[5:]},
    }


def test_minimum_eight_of_ten_succeeds_when_the_second_failure_is_the_last_instance(cluster: Cluster) -> None:
    info, targets, names = _run(cluster, 10, _custom_config(cluster, "HOST_COUNT", 8), failing=(2, 10))

    assert info["status"] == "Succeeded", info
    assert most_at_once(targets) == 2
    assert statuses(targets) == {
        name: "Failed" if name in (names[1], names[9]) else "Succeeded" for name in names
    }


def test_half_at_a_time_on_nine_deploys_four_at_once_and_needs_five(cluster: Cluster) -> None:
    """HalfAtATime on 9: M = ceil(4.5) = 5, at most 4 at a time; success needs 5 (L14690–14711). The last
    four fail and it still succeeds: exactly five succeeded."""
    info, targets, names = _run(cluster, 9, "CodeDeployDefault.HalfAtATime", failing=(6, 7, 8, 9))

    assert info["status"] == "Succeeded", info
    assert most_at_once(targets) == 4
    assert set(start_order(targets)[:4]) == set(names[:4])
    assert statuses(targets) == {name: "Succeeded" if name in names[:5] else "Failed" for name in names}


def test_fleet_percent_rounds_the_minimum_up(cluster: Cluster) -> None:
    """FLEET_PERCENT 75 of 10 is ceil(7.5) = 8 healthy: two at a time (L14440–14442)."""
    info, targets, names = _run(cluster, 10, _custom_config(cluster, "FLEET_PERCENT", 75), failing=(5,))

    assert info["status"] == "Succeeded", info
    assert most_at_once(targets) == 2
    assert statuses(targets) == {name: "Failed" if name == names[4] else "Succeeded" for name in names}


def test_all_at_once_needs_one_success(cluster: Cluster) -> None:
    """AllAtOnce: all ten at once; succeeded with one success out of ten, failed with none
    (L14661–14672)."""
    fleet = cluster.hosts
    application, group = cluster.group(cluster.select(fleet), "CodeDeployDefault.AllAtOnce")
    app_dir = f"/tmp/CodeDeployExample/{group}"
    for host in fleet[:6] + fleet[7:]:
        cluster.mark(host, f"fail-{group}-ValidateService")

    first = cluster.wait(cluster.deploy(application, group, cluster.revision("v1", app_dir, pause=1.0)))
    targets = cluster.targets(first["deploymentId"])
    assert first["status"] == "Succeeded", first
    assert most_at_once(targets) == 10
    assert [name for name, status in statuses(targets).items() if status == "Succeeded"] == [fleet[6].name]

    cluster.mark(fleet[6], f"fail-{group}-ValidateService")
    second = cluster.wait(cluster.deploy(application, group, cluster.revision("v2", app_dir)))
    assert second["status"] == "Failed", second
    assert second["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"
    assert set(statuses(cluster.targets(second["deploymentId"])).values()) == {"Failed"}
