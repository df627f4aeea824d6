"""Real agents: a zonal deployment (zones from the AvailabilityZone instance tag), the guide's four tag
group examples deploying to exactly the matching hosts, an instance whose agent is down (a timeout
failure, not a hang), and a new instance receiving the group's revision on its own."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from command_agents import register_instance
from e2e_hosts import Host, wait_until
from fleet_cluster import (
    EVENT_START_TIMEOUT,
    Cluster,
    boot_host,
    event_statuses,
    most_at_once,
    run_intervals,
    statuses,
)

from support.names import unique

ZONE_TAG = "AvailabilityZone"  # the server's default --zone-tag-key


def test_a_zonal_deployment_goes_one_zone_at_a_time_and_waits_the_monitor_durations(cluster: Cluster) -> None:
    fleet = cluster.hosts[:7]
    selection = unique("sel")
    zones = {"a": fleet[0:2], "b": fleet[2:4], "c": fleet[4:6]}
    for zone, members in zones.items():
        cluster.select(members, value=selection, **{ZONE_TAG: f"{selection}-{zone}"})
    cluster.select(fleet[6:], value=selection)
    cluster.codedeploy.remove_tags_from_on_premises_instances(
        instanceNames=[fleet[6].name], tags=[{"Key": ZONE_TAG}]
    )  # the seventh instance has no zone: it forms the last one
    config = unique("zonal")
    cluster.codedeploy.create_deployment_config(
        deploymentConfigName=config,
        minimumHealthyHosts={"type": "HOST_COUNT", "value": 3},
        zonalConfig={"firstZoneMonitorDurationInSeconds": 3, "monitorDurationInSeconds": 2},
    )
    application, group = cluster.group(selection, config)
    deployment_id = cluster.deploy(
        application, group, cluster.revision("v1", f"/tmp/CodeDeployExample/{group}")
    )
    info = cluster.wait(deployment_id)

    assert info["status"] == "Succeeded", info
    targets = cluster.targets(deployment_id)
    intervals = run_intervals(targets)
    spans = [
        (min(intervals[h.name][0] for h in members), max(intervals[h.name][1] for h in members))
        for members in (zones["a"], zones["b"], zones["c"], fleet[6:])
    ]
    # Within a zone both instances at once (7 - 3 = 4 may be offline, a zone has 2).
    assert most_at_once({h.name: targets[h.name] for h in zones["a"]}) == 2
    waits = [spans[i + 1][0] - spans[i][1] for i in range(3)]
    assert waits[0] >= 3 - 0.01, spans  # the first zone's monitor duration
    assert waits[1] >= 2 - 0.01, spans
    assert waits[2] >= 2 - 0.01, spans


# The guide's examples (L11395–11638) over eight hosts: Name, Region, Type, Environment tags.
TAGS = {
    0: {"Name": "AppVersion-ABC", "Environment": "Beta", "Region": "North", "Type": "t2.medium"},
    1: {"Environment": "Staging", "Region": "East", "Type": "t2.large"},
    2: {"Environment": "Staging", "Region": "South", "Type": "t2.large"},
    3: {"Name": "AppVersion-ABC", "Environment": "Beta", "Region": "West", "Type": "t2.medium"},
    4: {"Environment": "Staging", "Region": "East", "Type": "t2.micro"},
    5: {"Environment": "Production", "Region": "South", "Type": "t2.large"},
    6: {"Name": "AppVersion-ABC"},
    7: {"Region": "West"},
}


def _tag_group(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value, "Type": "KEY_AND_VALUE"} for key, value in pairs]


EXAMPLES = {
    "one group, one tag": ([_tag_group(("Name", "AppVersion-ABC"))], {0, 3, 6}),
    "one group, several tags": (
        [_tag_group(("Region", "North"), ("Region", "South"), ("Region", "East"))],
        {0, 1, 2, 4, 5},
    ),
    "several groups, one tag each": (
        [
            _tag_group(("Name", "AppVersion-ABC")),
            _tag_group(("Region", "North")),
            _tag_group(("Type", "t2.medium")),
        ],
        {0},
    ),
    "several groups, several tags": (
        [
            _tag_group(("Environment", "Beta"), ("Environment", "Staging")),
            _tag_group(("Region", "North"), ("Region", "South"), ("Region", "East")),
            _tag_group(("Type", "t2.medium"), ("Type", "t2.large")),
        ],
        {0, 1, 2},
    ),
}


def test_the_guides_four_tag_group_examples_deploy_to_exactly_the_matching_hosts(cluster: Cluster) -> None:
    hosts = cluster.hosts
    for index, tags in TAGS.items():
        cluster.codedeploy.add_tags_to_on_premises_instances(
            instanceNames=[hosts[index].name], tags=[{"Key": k, "Value": v} for k, v in tags.items()]
        )
    for example, (tag_set, expected) in EXAMPLES.items():
        application, group = unique("tags-app"), unique("tags-group")
        cluster.codedeploy.create_application(applicationName=application)
        cluster.codedeploy.create_deployment_group(
            applicationName=application,
            deploymentGroupName=group,
            deploymentConfigName="CodeDeployDefault.AllAtOnce",
            serviceRoleArn="arn:aws:iam::111122223333:role/CodeDeployServiceRole",
            onPremisesTagSet={"onPremisesTagSetList": tag_set},
        )
        app_dir = f"/tmp/CodeDeployExample/{group}"
        info = cluster.wait(cluster.deploy(application, group, cluster.revision("v1", app_dir)))

        assert info["status"] == "Succeeded", (example, info)
        wanted = {hosts[index].name for index in expected}
        assert set(cluster.targets(info["deploymentId"])) == wanted, example
        installed = {host.name for host in hosts if cluster.read(host, f"{app_dir}/version.txt") == "v1\n"}
        assert installed == wanted, example


def test_an_instance_whose_agent_is_down_fails_by_timeout_and_the_deployment_ends(cluster: Cluster) -> None:
    """Its first event is never picked up: after the (shortened) 5 minutes the instance fails with the
    agent named as the cause (AGENT_ISSUE), the rest are Skipped; with AllAtOnce the others succeed."""
    fleet = cluster.hosts[:2]
    selection = cluster.select(fleet)
    down = register_instance(cluster.server, {"fleet-test": selection}, name=unique("a-down"))  # never polls
    application, group = cluster.group(selection)  # OneAtATime: the down instance sorts first
    app_dir = f"/tmp/CodeDeployExample/{group}"
    began = time.monotonic()
    one_at_a_time = cluster.wait(
        cluster.deploy(application, group, cluster.revision("v1", app_dir)), timeout=90
    )

    assert time.monotonic() - began >= EVENT_START_TIMEOUT
    assert one_at_a_time["status"] == "Failed", one_at_a_time
    assert one_at_a_time["errorInformation"]["code"] == "AGENT_ISSUE"
    targets = cluster.targets(one_at_a_time["deploymentId"])
    assert statuses(targets) == {down.name: "Failed", fleet[0].name: "Skipped", fleet[1].name: "Skipped"}
    first = targets[down.name]["lifecycleEvents"][0]
    assert first["status"] == "Failed"
    assert "did not pick up the ApplicationStop lifecycle event" in first["diagnostics"]["message"]
    assert event_statuses(targets[down.name])[1:] == ["Skipped"] * 6

    all_at_once = cluster.wait(
        cluster.deploy(
            application,
            group,
            cluster.revision("v2", app_dir),
            deploymentConfigName="CodeDeployDefault.AllAtOnce",
        ),
        timeout=90,
    )
    assert all_at_once["status"] == "Succeeded", all_at_once
    assert statuses(cluster.targets(all_at_once["deploymentId"])) == {
        down.name: "Failed",
        fleet[0].name: "Succeeded",
        fleet[1].name: "Succeeded",
    }


@pytest.fixture
def new_host(cluster: Cluster, tmp_path: Path) -> Callable[[], Host]:
    booted: list[Host] = []

    def boot() -> Host:
        host = boot_host(cluster.server, tmp_path, f"n11-{unique('new')}", unique("new"))
        booted.append(host)
        return host

    yield boot  # type: ignore[misc]
    for host in booted:
        host.shutdown()
        cluster.codedeploy.deregister_on_premises_instance(instanceName=host.name)


def test_a_new_instance_receives_the_groups_revision_on_its_own(
    cluster: Cluster, new_host: Callable[[], Host]
) -> None:
    fleet = cluster.hosts[:2]
    selection = cluster.select(fleet)
    application, group = cluster.group(selection, "CodeDeployDefault.HalfAtATime")
    app_dir = f"/tmp/CodeDeployExample/{group}"
    first = cluster.wait(cluster.deploy(application, group, cluster.revision("v1", app_dir)))
    assert first["status"] == "Succeeded"

    host = new_host()  # registered and running, but not in the group yet
    assert len(cluster.deployments_of(application, group)) == 1
    cluster.select([host], value=selection)  # the tag that brings it into the group

    deployments = wait_until(
        lambda: (found := cluster.deployments_of(application, group)) and len(found) == 2 and found,
        30,
        "a deployment for the new instance",
    )
    launch = cluster.wait(deployments[1]["deploymentId"])
    assert launch["status"] == "Succeeded", launch
    assert launch["creator"] == "autoscaling"
    assert launch["revision"] == first["revision"]
    assert set(cluster.targets(launch["deploymentId"])) == {host.name}
    assert cluster.read(host, f"{app_dir}/version.txt") == "v1\n"
