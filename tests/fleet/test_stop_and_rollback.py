"""Stop, automatic rollback and redeploy with real agents (guide §7.7–7.10; rollback digest §1).

- StopDeployment lets the events agents are running finish, starts no new one, and ends Stopped
  (errorInformation MANUAL_STOP); the answer is Pending while events drain.
- A rollback is a new deployment (creator codeDeployRollback) of the last successful revision, with
  rollbackInfo on both deployments; on the hosts it removes the failed revision's files and puts the
  previous revision's back, using the last successful deployment's fileExistsBehavior.
- A redeploy of an older revision is an ordinary deployment: ApplicationStop runs the newer revision's
  script (the last one installed), and the newer revision's files are cleaned up.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.exceptions import ClientError
from e2e_hosts import wait_until
from fleet_cluster import IN_PLACE_EVENTS, Cluster, event_statuses, statuses

ROLLBACK_ON_FAILURE = {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}
ROLLBACK_ON_STOP = {"enabled": True, "events": ["DEPLOYMENT_STOP_ON_REQUEST"]}


def _seconds(value: Any) -> float:
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)


def _files(cluster: Cluster, host: Any, app_dir: str) -> dict[str, str | None]:
    return {
        name: cluster.read(host, f"{app_dir}/{name}")
        for name in ("version.txt", "only-v1.txt", "only-v2.txt")
    }


V1_FILES = {"version.txt": "v1\n", "only-v1.txt": "v1\n", "only-v2.txt": None}


def test_stop_lets_running_events_finish_and_starts_no_new_one(cluster: Cluster) -> None:
    fleet = cluster.hosts[:3]
    application, group = cluster.group(cluster.select(fleet))  # OneAtATime
    app_dir = f"/tmp/CodeDeployExample/{group}"
    cluster.mark(fleet[1], f"hold-{group}-BeforeInstall")
    deployment_id = cluster.deploy(application, group, cluster.revision("v1", app_dir))
    wait_until(lambda: cluster.marked(fleet[1], f"held-{deployment_id}"), 60, "the second instance's hook")

    answer = cluster.codedeploy.stop_deployment(deploymentId=deployment_id)
    stop_time = dt.datetime.now(dt.UTC).timestamp()

    assert answer["status"] == "Pending"
    info = cluster.codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["status"] == "InProgress"  # BeforeInstall is still running on the second instance
    assert info["deploymentOverview"]["Skipped"] == 1  # the third will not start
    cluster.release([fleet[1]], group)
    info = cluster.wait(deployment_id)

    assert info["status"] == "Stopped", info
    assert info["errorInformation"]["code"] == "MANUAL_STOP"
    assert "rollbackInfo" not in info
    targets = cluster.targets(deployment_id)
    names = [host.name for host in fleet]
    assert statuses(targets) == {names[0]: "Succeeded", names[1]: "Failed", names[2]: "Skipped"}
    assert event_statuses(targets[names[1]]) == ["Succeeded"] * 3 + ["Skipped"] * 4
    assert event_statuses(targets[names[2]]) == ["Skipped"] * len(IN_PLACE_EVENTS)
    started = [
        _seconds(event["startTime"])
        for target in targets.values()
        for event in target["lifecycleEvents"]
        if "startTime" in event
    ]
    assert max(started) < stop_time  # no lifecycle event started after the stop
    # On the hosts: the second instance ran BeforeInstall and nothing after; the third nothing at all.
    assert [event for event, _, _ in cluster.hook_log(fleet[1], app_dir)] == ["BeforeInstall"]
    assert cluster.read(fleet[1], f"{app_dir}/version.txt") is None
    assert cluster.hook_log(fleet[2], app_dir) == []
    assert len(cluster.deployments_of(application, group)) == 1
    with pytest.raises(ClientError) as stopped_again:
        cluster.codedeploy.stop_deployment(deploymentId=deployment_id)
    assert stopped_again.value.response["Error"]["Code"] == "DeploymentAlreadyCompletedException"


def test_stop_with_rollback_redeploys_the_previous_revision(cluster: Cluster) -> None:
    fleet = cluster.hosts[:3]
    application, group = cluster.group(cluster.select(fleet), "CodeDeployDefault.AllAtOnce")
    app_dir = f"/tmp/CodeDeployExample/{group}"
    first = cluster.wait(cluster.deploy(application, group, cluster.revision("v1", app_dir)))
    assert first["status"] == "Succeeded"
    cluster.mark(fleet[1], f"hold-{group}-AfterInstall")
    v2 = cluster.deploy(
        application,
        group,
        cluster.revision("v2", app_dir),
        deploymentConfigName="CodeDeployDefault.OneAtATime",
    )
    wait_until(lambda: cluster.marked(fleet[1], f"held-{v2}"), 60, "the second instance's AfterInstall")
    assert cluster.read(fleet[1], f"{app_dir}/version.txt") == "v2\n"

    assert (
        cluster.codedeploy.stop_deployment(deploymentId=v2, autoRollbackEnabled=True)["status"] == "Pending"
    )
    cluster.unmark(fleet[1], f"hold-{group}-AfterInstall")
    cluster.release([fleet[1]], group)
    stopped = cluster.wait(v2)

    assert stopped["status"] == "Stopped", stopped
    rollback_id = stopped["rollbackInfo"]["rollbackDeploymentId"]
    assert stopped["rollbackInfo"]["rollbackMessage"] == (
        f"Deployment {v2} terminated. Automatic rollback is triggered with a DeploymentId {rollback_id}."
    )
    rollback = cluster.wait(rollback_id)
    assert rollback["status"] == "Succeeded", rollback
    assert rollback["creator"] == "codeDeployRollback"
    assert rollback["revision"] == first["revision"]
    assert rollback["rollbackInfo"] == {
        "rollbackTriggeringDeploymentId": v2,
        "rollbackMessage": f"Deployment {rollback_id} is triggered to roll back deployment {v2}.",
    }
    for host in fleet:
        assert _files(cluster, host, app_dir) == V1_FILES, host.name


def test_a_failed_deployment_is_rolled_back_automatically_and_the_files_restored(cluster: Cluster) -> None:
    fleet = cluster.hosts[:3]
    application, group = cluster.group(
        cluster.select(fleet), "CodeDeployDefault.AllAtOnce", autoRollbackConfiguration=ROLLBACK_ON_FAILURE
    )
    app_dir = f"/tmp/CodeDeployExample/{group}"
    first = cluster.deploy(
        application, group, cluster.revision("v1", app_dir), fileExistsBehavior="OVERWRITE"
    )
    v1 = cluster.wait(first)["revision"]
    cluster.mark(fleet[0], f"fail-{group}-v2-ValidateService")  # v2's check fails on the first instance
    v2 = cluster.deploy(
        application,
        group,
        cluster.revision("v2", app_dir),
        deploymentConfigName="CodeDeployDefault.OneAtATime",
    )
    failed = cluster.wait(v2)

    assert failed["status"] == "Failed", failed
    assert failed["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"
    assert failed["fileExistsBehavior"] == "DISALLOW"
    rollback_id = failed["rollbackInfo"]["rollbackDeploymentId"]
    rollback = cluster.wait(rollback_id)
    assert rollback["status"] == "Succeeded", rollback
    assert rollback["creator"] == "codeDeployRollback"
    assert rollback["revision"] == v1
    assert rollback["fileExistsBehavior"] == "OVERWRITE"  # the last successful deployment's
    assert rollback["deploymentConfigName"] == "CodeDeployDefault.OneAtATime"
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == v2
    assert "rollbackDeploymentId" not in rollback["rollbackInfo"]
    # The first instance had v2 installed: the rollback removed v2's files and put v1's back; it ran
    # the last installed revision's (v2's) ApplicationStop first.
    assert _files(cluster, fleet[0], app_dir) == V1_FILES
    assert ("ApplicationStop", rollback_id, "v2") in cluster.hook_log(fleet[0], app_dir)
    for host in fleet[1:]:
        assert _files(cluster, host, app_dir) == V1_FILES
    deployments = cluster.deployments_of(application, group)
    assert [d["deploymentId"] for d in deployments] == [first, v2, rollback_id]
    group_info = cluster.codedeploy.get_deployment_group(
        applicationName=application, deploymentGroupName=group
    )
    assert group_info["deploymentGroupInfo"]["lastSuccessfulDeployment"]["deploymentId"] == rollback_id
    assert group_info["deploymentGroupInfo"]["targetRevision"] == v1


def test_no_rollback_without_an_earlier_successful_revision(cluster: Cluster) -> None:
    fleet = cluster.hosts[:1]
    application, group = cluster.group(cluster.select(fleet), autoRollbackConfiguration=ROLLBACK_ON_FAILURE)
    app_dir = f"/tmp/CodeDeployExample/{group}"
    cluster.mark(fleet[0], f"fail-{group}-ValidateService")
    deployment_id = cluster.deploy(application, group, cluster.revision("v1", app_dir))
    info = cluster.wait(deployment_id)

    assert info["status"] == "Failed"
    assert info["rollbackInfo"] == {
        "rollbackMessage": f"Deployment {deployment_id} terminated. Automatic rollback was not performed: "
        f"deployment group {group} has no earlier successful revision to roll back to."
    }
    assert len(cluster.deployments_of(application, group)) == 1


def test_a_failed_rollback_is_not_rolled_back(cluster: Cluster) -> None:
    fleet = cluster.hosts[:2]
    application, group = cluster.group(
        cluster.select(fleet), "CodeDeployDefault.AllAtOnce", autoRollbackConfiguration=ROLLBACK_ON_FAILURE
    )
    app_dir = f"/tmp/CodeDeployExample/{group}"
    assert (
        cluster.wait(cluster.deploy(application, group, cluster.revision("v1", app_dir)))["status"]
        == "Succeeded"
    )
    for host in fleet:  # from now on v1's and v2's checks fail everywhere
        cluster.mark(host, f"fail-{group}-v1-ValidateService")
        cluster.mark(host, f"fail-{group}-v2-ValidateService")
    v2 = cluster.deploy(application, group, cluster.revision("v2", app_dir))
    failed = cluster.wait(v2)
    rollback = cluster.wait(failed["rollbackInfo"]["rollbackDeploymentId"])

    assert rollback["status"] == "Failed"
    assert rollback["creator"] == "codeDeployRollback"
    assert "rollbackDeploymentId" not in rollback["rollbackInfo"]
    assert len(cluster.deployments_of(application, group)) == 3


def test_a_redeploy_of_an_older_revision_runs_the_newer_applicationstop_and_removes_its_files(
    cluster: Cluster,
) -> None:
    fleet = cluster.hosts[:2]
    application, group = cluster.group(cluster.select(fleet), "CodeDeployDefault.AllAtOnce")
    app_dir = f"/tmp/CodeDeployExample/{group}"
    v1, v2 = cluster.revision("v1", app_dir), cluster.revision("v2", app_dir)
    assert cluster.wait(cluster.deploy(application, group, v1))["status"] == "Succeeded"
    assert cluster.wait(cluster.deploy(application, group, v2))["status"] == "Succeeded"
    for host in fleet:
        assert _files(cluster, host, app_dir) == {
            "version.txt": "v2\n",
            "only-v1.txt": None,
            "only-v2.txt": "v2\n",
        }

    redeploy = cluster.deploy(application, group, v1)
    info = cluster.wait(redeploy)

    assert info["status"] == "Succeeded", info
    assert info["creator"] == "user"
    for host in fleet:
        assert _files(cluster, host, app_dir) == V1_FILES
        log = cluster.hook_log(host, app_dir)
        assert ("ApplicationStop", redeploy, "v2") in log
        assert [
            label for event, deployment, label in log if deployment == redeploy and event != "ApplicationStop"
        ] == ["v1"] * 4


def test_ignore_application_stop_failures_lets_a_broken_previous_stop_script_pass(cluster: Cluster) -> None:
    """T-29 of the troubleshooting digest: v1's ApplicationStop always fails. It does not run at v1's own
    deployment (nothing installed before); it fails v2's; v2 with ignoreApplicationStopFailures succeeds
    with ApplicationStop shown Failed; then v3 runs v2's script and succeeds without the flag."""
    fleet = cluster.hosts[:1]
    application, group = cluster.group(cluster.select(fleet))
    app_dir = f"/tmp/CodeDeployExample/{group}"
    cluster.mark(fleet[0], f"fail-{group}-v1-ApplicationStop")
    assert (
        cluster.wait(cluster.deploy(application, group, cluster.revision("v1", app_dir)))["status"]
        == "Succeeded"
    )
    v2 = cluster.revision("v2", app_dir)

    refused = cluster.wait(cluster.deploy(application, group, v2))
    assert refused["status"] == "Failed"
    stop_event = cluster.targets(refused["deploymentId"])[fleet[0].name]["lifecycleEvents"][0]
    assert stop_event["status"] == "Failed"
    assert stop_event["diagnostics"]["errorCode"] == "ScriptFailed"
    assert "told to fail at ApplicationStop" in stop_event["diagnostics"]["logTail"]

    forgiven = cluster.wait(cluster.deploy(application, group, v2, ignoreApplicationStopFailures=True))
    assert forgiven["status"] == "Succeeded", forgiven
    target = cluster.targets(forgiven["deploymentId"])[fleet[0].name]
    assert event_statuses(target) == ["Failed"] + ["Succeeded"] * 6
    assert cluster.read(fleet[0], f"{app_dir}/version.txt") == "v2\n"

    assert (
        cluster.wait(cluster.deploy(application, group, cluster.revision("v3", app_dir)))["status"]
        == "Succeeded"
    )
