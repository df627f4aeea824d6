"""Blue/green deployments of a server fleet behind a real HAProxy (issue 11), with real agents.

Four hosts serve HTTP (``revisions/http_service``: ``<host> <version>``) as the servers of HAProxy's backend
``web``: ``host-1`` and ``host-2`` are tagged ``env=blue``, ``host-3`` and ``host-4`` ``env=green``. One
environment takes the traffic, the other is in maintenance; a blue/green deployment names the idle one
as its replacement environment (``targetInstances``), installs the new version there, lets HAProxy send
it traffic once healthy and takes the other environment out — while clients keep sending requests
through HAProxy, none of which may fail, and HAProxy must never meet a stopped server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from deploying import create_group, upload
from e2e_hosts import require_hosts
from traffic_fleet import BACKEND, Fleet, Traffic, in_maintenance, servers_state, service_bundle

from support.haproxy import runtime_command, unavailable_reason
from support.names import unique
from support.server import wait_for

NO_HAPROXY_ERRORS = {"econ": 0, "eresp": 0, "wretr": 0, "wredis": 0, "hrsp_5xx": 0}
ENVIRONMENTS = {"blue": ("host-1", "host-2"), "green": ("host-3", "host-4")}
KEEP_ALIVE = {"terminateBlueInstancesOnDeploymentSuccess": {"action": "KEEP_ALIVE"}}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Four hosts running v1; the blue environment in service, the green one in maintenance."""
    require_hosts()
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    fleet = Fleet.start(tmp_path_factory.mktemp("fleet"), count=4, deregistration_delay=5.0)
    try:
        _, info = fleet.deploy("v1", traffic_control=False, config="CodeDeployDefault.AllAtOnce")
        assert info["status"] == "Succeeded", info
        codedeploy = fleet.server.client("codedeploy")
        for env, hosts in ENVIRONMENTS.items():
            codedeploy.add_tags_to_on_premises_instances(
                tags=[{"Key": "env", "Value": env}], instanceNames=list(hosts)
            )
        take_out(fleet, ENVIRONMENTS["green"])
        yield fleet
    finally:
        fleet.stop()


def take_out(fleet: Fleet, hosts: tuple[str, ...]) -> None:
    for host in hosts:
        runtime_command(fleet.haproxy.stats_address, f"set server {BACKEND}/{host} state maint")


def serving(fleet: Fleet) -> set[str]:
    return {name for name, state in servers_state(fleet.haproxy).items() if not in_maintenance(state)}


def blue_green_group(fleet: Fleet, options: dict[str, Any]) -> str:
    return create_group(
        fleet.server,
        fleet.application,
        fleet.tag,
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        loadBalancerInfo={"targetGroupInfoList": [{"name": f"haproxy:{BACKEND}"}]},
        blueGreenDeploymentConfiguration=options,
    )


def create_deployment(fleet: Fleet, group: str, version: str, env: str) -> str:
    data = service_bundle(fleet.workdir, version)
    location = upload(fleet.server, data, f"http-service/{unique(version)}.tgz", fleet.bucket)
    return fleet.server.client("codedeploy").create_deployment(
        applicationName=fleet.application,
        deploymentGroupName=group,
        revision={"revisionType": "S3", "s3Location": location},
        targetInstances={"tagFilters": [{"Key": "env", "Value": env, "Type": "KEY_AND_VALUE"}]},
    )["deploymentId"]


def status_of(fleet: Fleet, deployment_id: str) -> dict[str, Any]:
    return fleet.server.client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]


def wait_for_status(
    fleet: Fleet, deployment_id: str, wanted: set[str], timeout: float = 120.0
) -> dict[str, Any]:
    wait_for(
        lambda: status_of(fleet, deployment_id)["status"] in wanted,
        timeout=timeout,
        interval=0.2,
        message=f"deployment {deployment_id} {sorted(wanted)}",
    )
    return status_of(fleet, deployment_id)


def instance_types(fleet: Fleet, deployment_id: str) -> dict[str, str]:
    codedeploy = fleet.server.client("codedeploy")
    names = codedeploy.list_deployment_instances(deploymentId=deployment_id)["instancesList"]
    summaries = codedeploy.batch_get_deployment_instances(deploymentId=deployment_id, instanceIds=names)
    return {s["instanceId"].rsplit("/", 1)[-1]: s["instanceType"] for s in summaries["instancesSummary"]}


def test_a_blue_green_deployment_moves_every_request_to_the_new_version_without_failing_one(
    fleet: Fleet,
) -> None:
    group = blue_green_group(fleet, KEEP_ALIVE)
    traffic = Traffic.start(fleet.haproxy)
    try:
        traffic.wait_for_answers(0, ENVIRONMENTS["blue"], count=20)
        deployment_id = create_deployment(fleet, group, "v2", "green")
        info = wait_for_status(fleet, deployment_id, {"Succeeded", "Failed", "Stopped"})
        done = time.monotonic()
        assert info["status"] == "Succeeded", info
        answers = traffic.wait_for_answers(done, ENVIRONMENTS["green"], count=100)
    finally:
        traffic.stop()
    assert set(answers) == {"host-3 v2", "host-4 v2"}, answers
    assert serving(fleet) == set(ENVIRONMENTS["green"])
    assert instance_types(fleet, deployment_id) == {
        "host-1": "Blue",
        "host-2": "Blue",
        "host-3": "Green",
        "host-4": "Green",
    }
    assert traffic.failures() == [], traffic.summary()
    assert traffic.haproxy_errors() == NO_HAPROXY_ERRORS, traffic.summary()


def test_traffic_waits_for_continue_deployment_across_a_server_kill_and_then_moves(fleet: Fleet) -> None:
    options = {
        **KEEP_ALIVE,
        "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60},
    }
    group = blue_green_group(fleet, options)
    live = sorted(serving(fleet))
    idle_env = "blue" if live == list(ENVIRONMENTS["green"]) else "green"
    traffic = Traffic.start(fleet.haproxy)
    try:
        deployment_id = create_deployment(fleet, group, "v3", idle_env)
        info = wait_for_status(fleet, deployment_id, {"Ready", "Succeeded", "Failed", "Stopped"})
        assert info["status"] == "Ready", info
        waiting = time.monotonic()
        answers = traffic.wait_for_answers(waiting, live, count=60)
        assert all(not body.endswith(" v3") for body in answers), answers  # the new version gets nothing yet

        fleet.server.restart(kill=True)  # kill -9 while Ready: the wait and the traffic stay as they were
        assert status_of(fleet, deployment_id)["status"] == "Ready"
        answers = traffic.wait_for_answers(time.monotonic(), live, count=60)
        assert all(not body.endswith(" v3") for body in answers), answers
        continued = fleet.server.aws("deploy", "continue-deployment", "--deployment-id", deployment_id)
        assert continued.returncode == 0, continued.stderr
        info = wait_for_status(fleet, deployment_id, {"Succeeded", "Failed", "Stopped"})
        done = time.monotonic()
        assert info["status"] == "Succeeded", info
        answers = traffic.wait_for_answers(done, ENVIRONMENTS[idle_env], count=100)
    finally:
        traffic.stop()
    assert set(answers) == {f"{host} v3" for host in ENVIRONMENTS[idle_env]}, answers
    assert traffic.failures() == [], traffic.summary()
    assert traffic.haproxy_errors() == NO_HAPROXY_ERRORS, traffic.summary()


# --- canary and linear shifting through HAProxy weights -----------------------------------------------


def shifting_config(fleet: Fleet, routing: dict[str, Any]) -> str:
    name = unique("shift")
    fleet.server.client("codedeploy").create_deployment_config(
        deploymentConfigName=name,
        computePlatform="Server",
        minimumHealthyHosts={"type": "HOST_COUNT", "value": 1},
        trafficRoutingConfig=routing,
    )
    return name


_SHIFTING_GROUPS: dict[str, str] = {}


def shifting_group(fleet: Fleet, routing: dict[str, Any]) -> str:
    """A blue/green group deploying with ``routing`` (one per routing: a rollback needs the group's
    earlier successful deployment)."""
    key = repr(routing)
    if key in _SHIFTING_GROUPS:
        return _SHIFTING_GROUPS[key]
    group = _SHIFTING_GROUPS[key] = blue_green_group(fleet, KEEP_ALIVE)
    fleet.server.client("codedeploy").update_deployment_group(
        applicationName=fleet.application,
        currentDeploymentGroupName=group,
        deploymentConfigName=shifting_config(fleet, routing),
    )
    return group


def environments(fleet: Fleet) -> tuple[str, str]:
    """(the environment serving now, the idle one)."""
    live = serving(fleet)
    return ("green", "blue") if live == set(ENVIRONMENTS["green"]) else ("blue", "green")


def weight_share(fleet: Fleet, env: str) -> float:
    """The share (percent) of new requests HAProxy's weights give ``env`` among the servers in service."""
    states = servers_state(fleet.haproxy)
    weights = {name: int(state["srv_uweight"]) for name, state in states.items() if not in_maintenance(state)}
    total = sum(weights.values())
    return 100.0 * sum(weights.get(host, 0) for host in ENVIRONMENTS[env]) / total if total else 0.0


def traffic_line(fleet: Fleet, deployment_id: str) -> str:
    messages = status_of(fleet, deployment_id).get("deploymentStatusMessages") or []
    return next((m for m in messages if m.startswith("Traffic: ")), "")


def wait_for_share(fleet: Fleet, deployment_id: str, share: int) -> None:
    wait_for(
        lambda: traffic_line(fleet, deployment_id).startswith(f"Traffic: {share}% "),
        timeout=120,
        interval=0.2,
        message=f"{share}% of the traffic on the replacement",
    )


def new_version_share(traffic: Traffic, moment: float, version: str, count: int) -> float:
    wait_for(
        lambda: len(traffic.since(moment)) >= count, timeout=60, interval=0.1, message=f"{count} answers"
    )
    answers = traffic.since(moment)
    return 100.0 * sum(1 for o in answers if o.body.endswith(f" {version}")) / len(answers)


@pytest.mark.parametrize("action", ["promote", "stop", "stop-and-roll-back"])
def test_a_canary_promoted_or_stopped_at_its_first_step(fleet: Fleet, action: str) -> None:
    group = shifting_group(
        fleet, {"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 30}}
    )
    live, idle = environments(fleet)
    version = unique("v")
    traffic = Traffic.start(fleet.haproxy)
    try:
        deployment_id = create_deployment(fleet, group, version, idle)
        wait_for_share(fleet, deployment_id, 10)
        assert weight_share(fleet, idle) == 10.0
        canary = new_version_share(traffic, time.monotonic(), version, count=400)
        assert 3.0 <= canary <= 20.0, canary
        if action == "promote":
            command = ["deploy", "continue-deployment", "--deployment-id", deployment_id]
        else:
            command = ["deploy", "stop-deployment", "--deployment-id", deployment_id]
            command += ["--auto-rollback-enabled"] if action == "stop-and-roll-back" else []
        answered = fleet.server.aws(*command)
        assert answered.returncode == 0, answered.stderr
        info = wait_for_status(fleet, deployment_id, {"Succeeded", "Failed", "Stopped"})
        rollback = (info.get("rollbackInfo") or {}).get("rollbackDeploymentId")
        if rollback:
            assert (
                wait_for_status(fleet, rollback, {"Succeeded", "Failed", "Stopped"})["status"] == "Succeeded"
            )
        done = time.monotonic()
        serving_env = idle if action == "promote" else live
        answers = traffic.wait_for_answers(done, ENVIRONMENTS[serving_env], count=100)
    finally:
        traffic.stop()
    if action == "promote":
        assert info["status"] == "Succeeded", info
        assert set(answers) == {f"{host} {version}" for host in ENVIRONMENTS[idle]}, answers
    else:
        assert info["status"] == "Stopped", info
        assert (rollback is not None) == (action == "stop-and-roll-back"), info
        assert not any(body.endswith(f" {version}") for body in answers), answers
    assert serving(fleet) == set(ENVIRONMENTS[serving_env])
    assert traffic.failures() == [], traffic.summary()
    assert traffic.haproxy_errors() == NO_HAPROXY_ERRORS, traffic.summary()


def test_terminate_deregisters_the_original_instances_once_traffic_has_moved(fleet: Fleet) -> None:
    """Last in the module: the original instances are gone from the fleet afterwards."""
    group = blue_green_group(
        fleet,
        {
            "terminateBlueInstancesOnDeploymentSuccess": {
                "action": "TERMINATE",
                "terminationWaitTimeInMinutes": 0,
            }
        },
    )
    live, idle = environments(fleet)
    traffic = Traffic.start(fleet.haproxy)
    try:
        deployment_id = create_deployment(fleet, group, "v9", idle)
        info = wait_for_status(fleet, deployment_id, {"Succeeded", "Failed", "Stopped"})
        done = time.monotonic()
        assert info["status"] == "Succeeded", info
        answers = traffic.wait_for_answers(done, ENVIRONMENTS[idle], count=100)
    finally:
        traffic.stop()
    assert info["instanceTerminationWaitTimeStarted"] is True
    assert set(answers) == {f"{host} v9" for host in ENVIRONMENTS[idle]}, answers
    codedeploy = fleet.server.client("codedeploy")
    for host in ENVIRONMENTS[live]:
        assert "deregisterTime" in codedeploy.get_on_premises_instance(instanceName=host)["instanceInfo"]
    for host in ENVIRONMENTS[idle]:
        assert "deregisterTime" not in codedeploy.get_on_premises_instance(instanceName=host)["instanceInfo"]
    assert traffic.failures() == [], traffic.summary()
    assert traffic.haproxy_errors() == NO_HAPROXY_ERRORS, traffic.summary()
