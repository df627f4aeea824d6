"""The engine's fleet rules through the real command protocol (the command service tests' simulated
agents: the rules live in the engine, so real agents would add only time), on SQLite and PostgreSQL:

- dispatch order by instance and revision health (guide §2.6): Unhealthy first, then Old, then Current;
- updateOutdatedInstancesOnly: instances already running the revision are Skipped;
- instances that join a group: a follow-on deployment (CodeDeployAutoUpdate) after a success with the
  UPDATE strategy, nothing with IGNORE, the last successful revision (autoscaling) after a failure;
- StopDeployment's rollback choice: autoRollbackEnabled=False overrides the group, omitted follows it;
  a stop before any event ran rolls nothing back;
- deploymentOverview at every step of a deployment;
- a zonal monitor duration survives a kill -9 of the server.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from command_agents import (
    FAST_ENGINE,
    IN_PLACE_EVENTS,
    Agent,
    Fleet,
    create_fleet,
    register_instance,
    wait_for_status,
)
from simulated_fleet import FleetRun

from support.names import unique
from support.server import ServerProcess, wait_for

FINISHED = {"Succeeded", "Failed", "Stopped"}


def _revision(label: str) -> dict[str, Any]:
    return {
        "revisionType": "S3",
        "s3Location": {"bucket": "bundles", "key": f"app-{label}.zip", "bundleType": "zip", "eTag": label},
    }


def _instances(fleet: Fleet, count: int) -> list[Agent]:
    """``count`` instances named so that name order is h1, h2, ..."""
    suffix = unique("i")
    return [fleet.add_instance(f"h{number}-{suffix}") for number in range(1, count + 1)]


def _targets(server: ServerProcess, deployment_id: str) -> dict[str, dict[str, Any]]:
    codedeploy = server.client("codedeploy")
    ids = codedeploy.list_deployment_targets(deploymentId=deployment_id)["targetIds"]
    if not ids:
        return {}
    found = codedeploy.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=ids)
    return {t["instanceTarget"]["targetId"]: t["instanceTarget"] for t in found["deploymentTargets"]}


def _seconds(value: Any) -> float:
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)


def _order(server: ServerProcess, deployment_id: str) -> list[str]:
    """Instances in the order their first lifecycle event started."""
    starts = {
        name: min(_seconds(e["startTime"]) for e in target["lifecycleEvents"] if "startTime" in e)
        for name, target in _targets(server, deployment_id).items()
        if any("startTime" in e for e in target["lifecycleEvents"])
    }
    return sorted(starts, key=starts.__getitem__)


def _statuses(server: ServerProcess, deployment_id: str) -> dict[str, str]:
    return {name: target["status"] for name, target in _targets(server, deployment_id).items()}


def _run(server: ServerProcess, deployment_id: str, agents: list[Agent], **behaviour: Any) -> dict[str, Any]:
    FleetRun(server, deployment_id, agents, **behaviour).start().join()
    return wait_for_status(server, deployment_id, FINISHED)


def _deployments(fleet: Fleet) -> list[dict[str, Any]]:
    codedeploy = fleet.server.client("codedeploy")
    ids = codedeploy.list_deployments(applicationName=fleet.application, deploymentGroupName=fleet.group)[
        "deployments"
    ]
    infos = codedeploy.batch_get_deployments(deploymentIds=ids)["deploymentsInfo"] if ids else []
    return sorted(infos, key=lambda info: info["createTime"])


def _drive(
    agent: Agent, events: int, *, fail_last: bool = False, between: Callable[[int], None] | None = None
) -> None:
    """Run ``agent``'s next ``events`` commands in order (the last one failed if asked); ``between(n)``
    after the n-th."""
    for number in range(1, events + 1):
        command = agent.poll_until_command(timeout=30)
        if number == events and fail_last:
            agent.run(command, "Failed", error_code=4, script_name="scripts/check.sh", message="failed")
        else:
            agent.run(command)
        if between is not None:
            between(number)


def test_instances_are_deployed_to_unhealthy_first_then_old_then_current(rules_server: ServerProcess) -> None:
    fleet = create_fleet(rules_server)
    agents = _instances(fleet, 4)
    a, b, c, d = (agent.name for agent in agents)
    assert _run(rules_server, fleet.deploy(revision=_revision("v1")), agents)["status"] == "Succeeded"

    # One at a time, C fails: A and B now run v2, a revision that is not the group's (Old); C is
    # Unhealthy; D was not reached and still runs the group's revision (Current).
    second = fleet.deploy(revision=_revision("v2"), deploymentConfigName="CodeDeployDefault.OneAtATime")
    assert _run(rules_server, second, agents, fail={c: "ValidateService"})["status"] == "Failed"
    assert _order(rules_server, second) == [a, b, c]
    assert _statuses(rules_server, second) == {a: "Succeeded", b: "Succeeded", c: "Failed", d: "Skipped"}

    third = fleet.deploy(revision=_revision("v3"), deploymentConfigName="CodeDeployDefault.OneAtATime")
    assert _run(rules_server, third, agents)["status"] == "Succeeded"
    assert _order(rules_server, third) == [c, a, b, d]


def test_update_outdated_instances_only_skips_the_instances_already_running_the_revision(
    rules_server: ServerProcess,
) -> None:
    fleet = create_fleet(rules_server)
    agents = _instances(fleet, 3)
    a, b, c = (agent.name for agent in agents)
    first = _run(rules_server, fleet.deploy(revision=_revision("v1")), agents, fail={c: "Install"})
    assert first["status"] == "Succeeded"  # AllAtOnce: two of three

    again = fleet.deploy(revision=_revision("v1"), updateOutdatedInstancesOnly=True)
    info = _run(rules_server, again, agents)
    assert info["status"] == "Succeeded", info
    assert info["updateOutdatedInstancesOnly"] is True
    assert _statuses(rules_server, again) == {a: "Skipped", b: "Skipped", c: "Succeeded"}
    assert [e["status"] for e in _targets(rules_server, again)[a]["lifecycleEvents"]] == ["Skipped"] * 7
    assert info["deploymentOverview"]["Skipped"] == 2

    # Nothing is outdated any more: it succeeds at once, every instance Skipped.
    nothing = fleet.deploy(revision=_revision("v1"), updateOutdatedInstancesOnly=True)
    info = wait_for_status(rules_server, nothing, FINISHED)
    assert info["status"] == "Succeeded", info
    assert set(_statuses(rules_server, nothing).values()) == {"Skipped"}

    newer = fleet.deploy(revision=_revision("v2"), updateOutdatedInstancesOnly=True)
    assert _run(rules_server, newer, agents)["status"] == "Succeeded"
    assert set(_statuses(rules_server, newer).values()) == {"Succeeded"}


@pytest.mark.parametrize("strategy", ["UPDATE", "IGNORE"])
def test_an_instance_that_joins_during_a_deployment_follows_the_outdated_instances_strategy(
    rules_server: ServerProcess, strategy: str
) -> None:
    fleet = create_fleet(rules_server)
    codedeploy = rules_server.client("codedeploy")
    codedeploy.update_deployment_group(
        applicationName=fleet.application,
        currentDeploymentGroupName=fleet.group,
        outdatedInstancesStrategy=strategy,
    )
    agents = _instances(fleet, 2)
    assert _run(rules_server, fleet.deploy(revision=_revision("v1")), agents)["status"] == "Succeeded"
    second = fleet.deploy(revision=_revision("v2"))
    run = FleetRun(rules_server, second, agents, hold={agents[0].name: "Install"}).start()
    assert run.holding[agents[0].name].wait(30)

    joined = fleet.add_instance(f"h9-{unique('joined')}")  # registered and tagged into the busy group
    assert len(_deployments(fleet)) == 2
    run.release(agents[0].name)
    run.join()
    info = wait_for_status(rules_server, second, FINISHED)
    assert info["status"] == "Succeeded"

    deployments = _deployments(fleet)  # a follow-on is created in the transaction that ends the deployment
    if strategy == "IGNORE":
        assert len(deployments) == 2
        assert "relatedDeployments" not in info
        return
    assert len(deployments) == 3
    follow_on = deployments[2]
    assert follow_on["creator"] == "CodeDeployAutoUpdate"
    assert follow_on["revision"] == info["revision"]
    assert follow_on["deploymentConfigName"] == "CodeDeployDefault.AllAtOnce"
    assert follow_on["relatedDeployments"] == {"autoUpdateOutdatedInstancesRootDeploymentId": second}
    assert info["relatedDeployments"] == {
        "autoUpdateOutdatedInstancesDeploymentIds": [follow_on["deploymentId"]]
    }
    assert _run(rules_server, follow_on["deploymentId"], [joined])["status"] == "Succeeded"
    assert _statuses(rules_server, follow_on["deploymentId"]) == {joined.name: "Succeeded"}


def test_an_instance_that_joins_during_a_failed_deployment_gets_the_last_successful_revision(
    rules_server: ServerProcess,
) -> None:
    fleet = create_fleet(rules_server, "CodeDeployDefault.OneAtATime")
    agents = _instances(fleet, 2)
    first = _run(rules_server, fleet.deploy(revision=_revision("v1")), agents)
    assert first["status"] == "Succeeded"
    second = fleet.deploy(revision=_revision("v2"))
    joined: list[Agent] = []
    # The first instance joins a newcomer to the group halfway, then fails its last event.
    _drive(agents[0], 3, between=lambda n: n == 1 and joined.append(fleet.add_instance(f"h9-{unique('j')}")))
    _drive(agents[0], 4, fail_last=True)
    assert wait_for_status(rules_server, second, FINISHED)["status"] == "Failed"

    deployments = _deployments(fleet)
    assert len(deployments) == 3
    launch = deployments[2]
    assert launch["creator"] == "autoscaling"
    assert launch["revision"] == first["revision"]
    assert _run(rules_server, launch["deploymentId"], joined)["status"] == "Succeeded"
    assert list(_statuses(rules_server, launch["deploymentId"])) == [joined[0].name]


def test_a_failed_deployment_to_a_new_instance_is_not_rolled_back(rules_server: ServerProcess) -> None:
    """It deployed the group's own revision: a rollback would only repeat it across the group."""
    fleet = create_fleet(rules_server)
    rules_server.client("codedeploy").update_deployment_group(
        applicationName=fleet.application,
        currentDeploymentGroupName=fleet.group,
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
    )
    (agent,) = _instances(fleet, 1)
    assert _run(rules_server, fleet.deploy(revision=_revision("v1")), [agent])["status"] == "Succeeded"
    newcomer = fleet.add_instance()
    launch = _deployments(fleet)[1]
    assert launch["creator"] == "autoscaling"

    failed = _run(rules_server, launch["deploymentId"], [newcomer], fail={newcomer.name: "Install"})
    assert failed["status"] == "Failed"
    assert "rollbackInfo" not in failed
    assert len(_deployments(fleet)) == 2


def test_a_group_without_a_successful_revision_deploys_nothing_to_a_new_instance(
    rules_server: ServerProcess,
) -> None:
    fleet = create_fleet(rules_server)
    fleet.add_instance()
    assert _deployments(fleet) == []


def test_a_name_registered_afresh_is_a_new_instance_to_the_group(rules_server: ServerProcess) -> None:
    """Registering a deregistered name again starts a new instance: the group's revision goes to it."""
    fleet = create_fleet(rules_server)
    (agent,) = _instances(fleet, 1)
    first = _run(rules_server, fleet.deploy(revision=_revision("v1")), [agent])
    assert first["status"] == "Succeeded"
    rules_server.client("codedeploy").deregister_on_premises_instance(instanceName=agent.name)
    again = register_instance(rules_server, fleet.tag, agent.name)

    deployments = _deployments(fleet)
    assert [d["creator"] for d in deployments] == ["user", "autoscaling"]
    assert deployments[1]["revision"] == first["revision"]
    assert _run(rules_server, deployments[1]["deploymentId"], [again])["status"] == "Succeeded"


def test_stop_rolls_back_as_autorollbackenabled_or_the_group_says(rules_server: ServerProcess) -> None:
    fleet = create_fleet(rules_server)
    codedeploy = rules_server.client("codedeploy")
    codedeploy.update_deployment_group(
        applicationName=fleet.application,
        currentDeploymentGroupName=fleet.group,
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_STOP_ON_REQUEST"]},
    )
    (agent,) = _instances(fleet, 1)
    first = _run(rules_server, fleet.deploy(revision=_revision("v1")), [agent])
    assert first["status"] == "Succeeded"

    overridden = fleet.deploy(revision=_revision("v2"))
    _drive(agent, 1)  # ApplicationStop ran; DownloadBundle waits for the agent
    # Nothing runs on an agent: the stop takes effect at once.
    answer = codedeploy.stop_deployment(deploymentId=overridden, autoRollbackEnabled=False)
    assert (answer["status"], answer["statusMessage"]) == ("Succeeded", f"Deployment {overridden} stopped")
    info = codedeploy.get_deployment(deploymentId=overridden)["deploymentInfo"]
    assert info["status"] == "Stopped"
    assert info["errorInformation"]["code"] == "MANUAL_STOP"
    assert "rollbackInfo" not in info
    target = _targets(rules_server, overridden)[agent.name]
    assert target["status"] == "Failed"
    assert [e["status"] for e in target["lifecycleEvents"]] == ["Succeeded"] + ["Skipped"] * 6
    assert agent.poll() is None  # the cancelled DownloadBundle is never handed out

    by_group = fleet.deploy(revision=_revision("v2"))
    _drive(agent, 1)
    assert codedeploy.stop_deployment(deploymentId=by_group)["status"] == "Succeeded"
    info = codedeploy.get_deployment(deploymentId=by_group)["deploymentInfo"]
    assert info["status"] == "Stopped"
    rollback_id = info["rollbackInfo"]["rollbackDeploymentId"]
    rollback = _run(rules_server, rollback_id, [agent])
    assert rollback["status"] == "Succeeded"
    assert rollback["creator"] == "codeDeployRollback"
    assert rollback["revision"] == first["revision"]

    untouched = fleet.deploy(revision=_revision("v3"))
    wait_for_status(rules_server, untouched, {"InProgress"})
    assert codedeploy.stop_deployment(deploymentId=untouched)["status"] == "Succeeded"
    info = codedeploy.get_deployment(deploymentId=untouched)["deploymentInfo"]
    assert info["status"] == "Stopped"
    assert info["rollbackInfo"] == {
        "rollbackMessage": f"Deployment {untouched} terminated before any instance was deployed to. "
        "Automatic rollback was not performed: nothing was changed."
    }
    assert _statuses(rules_server, untouched) == {agent.name: "Skipped"}
    assert len(_deployments(fleet)) == 5


def test_a_rollback_of_a_zonal_deployment_is_not_deployed_zone_by_zone(rules_server: ServerProcess) -> None:
    """Guide L15007–15011. The configuration waits a minute between zones; its rollback does not."""
    codedeploy = rules_server.client("codedeploy")
    config = unique("zonal")
    codedeploy.create_deployment_config(
        deploymentConfigName=config,
        minimumHealthyHosts={"type": "HOST_COUNT", "value": 1},
        zonalConfig={"monitorDurationInSeconds": 60},
    )
    fleet = create_fleet(rules_server)
    codedeploy.update_deployment_group(
        applicationName=fleet.application,
        currentDeploymentGroupName=fleet.group,
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
    )
    first, second = _instances(fleet, 2)
    for agent, zone in ((first, "zone-1"), (second, "zone-2")):
        codedeploy.add_tags_to_on_premises_instances(
            instanceNames=[agent.name], tags=[{"Key": "AvailabilityZone", "Value": zone}]
        )
    assert (
        _run(rules_server, fleet.deploy(revision=_revision("v1")), [first, second])["status"] == "Succeeded"
    )
    zonal = fleet.deploy(revision=_revision("v2"), deploymentConfigName=config)
    _drive(first, 3, fail_last=True)  # zone-1 fails: one of two may not be lost
    failed = wait_for_status(rules_server, zonal, FINISHED)
    assert failed["status"] == "Failed"

    rollback_id = failed["rollbackInfo"]["rollbackDeploymentId"]
    assert _run(rules_server, rollback_id, [first, second])["status"] == "Succeeded"
    targets = _targets(rules_server, rollback_id)
    ends = {
        name: max(_seconds(e["endTime"]) for e in target["lifecycleEvents"])
        for name, target in targets.items()
    }
    starts = {
        name: min(_seconds(e["startTime"]) for e in target["lifecycleEvents"])
        for name, target in targets.items()
    }
    # One at a time (one of two must stay healthy), but the second right after the first: no zone wait.
    first_done, second_began = sorted(targets, key=starts.__getitem__)
    assert starts[second_began] - ends[first_done] < 60


def test_the_deployment_overview_is_right_at_every_step(rules_server: ServerProcess) -> None:
    """After each lifecycle event the overview reaches what the rules say, and agrees with the targets'
    own statuses when it does."""
    fleet = create_fleet(rules_server, "CodeDeployDefault.OneAtATime")
    agents = _instances(fleet, 3)
    codedeploy = rules_server.client("codedeploy")
    deployment_id = fleet.deploy(revision=_revision("v1"))

    def reaches(expected: dict[str, int]) -> None:
        def matches() -> bool:
            overview = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"][
                "deploymentOverview"
            ]
            counted = Counter(_statuses(rules_server, deployment_id).values())
            shown = {status: count for status, count in overview.items() if count}
            return shown == expected and shown == dict(counted)

        wait_for(matches, timeout=10, message=f"deploymentOverview {expected}")

    first_running = {"Pending": 2, "InProgress": 1}
    second_running = {"Pending": 1, "InProgress": 1, "Succeeded": 1}
    reaches(first_running)
    _drive(
        agents[0],
        len(IN_PLACE_EVENTS),
        between=lambda n: reaches(first_running if n < len(IN_PLACE_EVENTS) else second_running),
    )
    _drive(agents[1], 3, fail_last=True, between=lambda n: n < 3 and reaches(second_running))
    reaches({"Succeeded": 1, "Failed": 1, "Skipped": 1})  # 2 of 3 must stay healthy: the third is Skipped
    assert wait_for_status(rules_server, deployment_id, FINISHED)["status"] == "Failed"


def test_a_zonal_monitor_duration_survives_a_server_kill(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory("sqlite", extra_args=FAST_ENGINE)
    codedeploy = server.client("codedeploy")
    config = unique("zonal")
    monitor = 30  # longer than a kill -9 and restart take on a loaded machine
    codedeploy.create_deployment_config(
        deploymentConfigName=config,
        minimumHealthyHosts={"type": "HOST_COUNT", "value": 0},
        zonalConfig={"firstZoneMonitorDurationInSeconds": monitor},
    )
    fleet = create_fleet(server, config)
    first, second = _instances(fleet, 2)
    for agent, zone in ((first, "zone-1"), (second, "zone-2")):
        codedeploy.add_tags_to_on_premises_instances(
            instanceNames=[agent.name], tags=[{"Key": "AvailabilityZone", "Value": zone}]
        )
    deployment_id = fleet.deploy(revision=_revision("v1"))
    _drive(first, len(IN_PLACE_EVENTS))  # the first zone is done: the wait begins
    zone_done = max(
        _seconds(e["endTime"]) for e in _targets(server, deployment_id)[first.name]["lifecycleEvents"]
    )

    server.restart(kill=True)
    assert time.time() < zone_done + monitor, "the restart took longer than the wait it should survive"
    _drive(second, len(IN_PLACE_EVENTS))

    assert wait_for_status(server, deployment_id, FINISHED)["status"] == "Succeeded"
    second_start = min(
        _seconds(e["startTime"]) for e in _targets(server, deployment_id)[second.name]["lifecycleEvents"]
    )
    assert second_start >= zone_done + monitor - 0.01


def test_new_instances_get_nothing_by_themselves_when_the_server_is_told_so(
    server_factory: Callable[..., ServerProcess],
) -> None:
    server = server_factory("sqlite", extra_args=[*FAST_ENGINE, "--no-deploy-to-new-instances"])
    fleet = create_fleet(server)
    (agent,) = _instances(fleet, 1)
    assert _run(server, fleet.deploy(revision=_revision("v1")), [agent])["status"] == "Succeeded"
    newcomer = fleet.add_instance()
    assert len(_deployments(fleet)) == 1
    nextone = fleet.deploy(revision=_revision("v2"))
    assert _run(server, nextone, [agent, newcomer])["status"] == "Succeeded"
    assert set(_statuses(server, nextone)) == {agent.name, newcomer.name}
