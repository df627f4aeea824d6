"""A deployment driven command by command through the agent protocol, as agents see it and as users see it.

Agents are botocore ``codedeploy-commands`` clients signed with each instance's own key; users look
through boto3's CodeDeploy client. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from command_agents import (
    IN_PLACE_EVENTS,
    REDELIVERY_AFTER,
    Agent,
    create_fleet,
    openssl_verify,
    wait_for_status,
)

from opendeploy.agent.deployment_specification import S3Revision, parse_deployment_specification
from support.server import ServerProcess, wait_for

EXECUTION_ID_PATTERN = r"^[^/]+/[^/]+/[^/]+/.+$"


def _events(server: ServerProcess, deployment_id: str, agent: Agent) -> list[dict[str, Any]]:
    target = server.client("codedeploy").get_deployment_target(
        deploymentId=deployment_id, targetId=agent.name
    )
    return target["deploymentTarget"]["instanceTarget"]["lifecycleEvents"]


def _overview(server: ServerProcess, deployment_id: str) -> dict[str, int]:
    info = server.client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    return info["deploymentOverview"]


def _statuses(events: list[dict[str, Any]]) -> list[str]:
    return [event["status"] for event in events]


def test_two_instances_deploy_event_by_event(command_server: ServerProcess, tmp_path: Path) -> None:
    server = command_server
    codedeploy = server.client("codedeploy")
    fleet = create_fleet(server)
    first, second = fleet.add_instance(), fleet.add_instance()
    assert first.poll() is None  # nothing to do yet: {} after the hold
    certificate = httpx.get(f"{server.endpoint}/agent/certificate").content
    assert certificate.startswith(b"-----BEGIN CERTIFICATE-----")

    deployment_id = fleet.deploy(fileExistsBehavior="OVERWRITE", description="event by event")
    info = wait_for_status(server, deployment_id, {"InProgress"})
    assert info["startTime"] >= info["createTime"]
    assert _overview(server, deployment_id) == {
        "Pending": 0,
        "InProgress": 2,
        "Succeeded": 0,
        "Failed": 0,
        "Skipped": 0,
        "Ready": 0,
    }
    targets = codedeploy.list_deployment_targets(deploymentId=deployment_id)["targetIds"]
    assert sorted(targets) == sorted([first.name, second.name])
    for agent in (first, second):
        events = _events(server, deployment_id, agent)
        assert [e["lifecycleEventName"] for e in events] == IN_PLACE_EVENTS
        assert _statuses(events) == ["Pending"] * 7
        assert all("startTime" not in e and "diagnostics" not in e for e in events)

    for position, event_name in enumerate(IN_PLACE_EVENTS):
        for agent in (first, second):
            command = agent.poll_until_command()
            assert command["CommandName"] == event_name
            assert command["HostIdentifier"] == agent.user_arn  # the AWS agent checks it is its own
            assert command["DeploymentExecutionId"].endswith(f"deployment/{deployment_id}")
            assert re.match(EXECUTION_ID_PATTERN, command["DeploymentExecutionId"])
            events = _events(server, deployment_id, agent)
            assert events[position]["status"] == "InProgress" and "startTime" in events[position]
            assert _statuses(events)[position + 1 :] == ["Pending"] * (6 - position)

            response = agent.specification(command)
            assert response["DeploymentSystem"] == "CodeDeploy"
            envelope = response["DeploymentSpecification"]["GenericEnvelope"]
            assert envelope["Format"] == "PKCS7/JSON"
            assert len(envelope["Payload"]) <= 8192
            if position == 0:
                document = openssl_verify(envelope["Payload"], certificate, tmp_path / agent.name)
                specification = parse_deployment_specification(document.decode())
                group = codedeploy.get_deployment_group(
                    applicationName=fleet.application, deploymentGroupName=fleet.group
                )["deploymentGroupInfo"]
                assert specification.deployment_id == deployment_id
                assert specification.deployment_group_id == group["deploymentGroupId"]
                assert specification.deployment_group_name == fleet.group
                assert specification.application_name == fleet.application
                assert specification.deployment_creator == "user"
                assert specification.deployment_type == "IN_PLACE"
                assert specification.file_exists_behavior == "OVERWRITE"
                assert specification.revision == S3Revision("bundles", "app.zip", "zip", None, "abc123")

            assert agent.acknowledge(command) == "InProgress"
            agent.complete(command)
            events = _events(server, deployment_id, agent)
            assert events[position]["status"] == "Succeeded"
            assert events[position]["endTime"] >= events[position]["startTime"]
            assert events[position]["diagnostics"] == {
                "errorCode": "Success",
                "scriptName": "",
                "message": "Succeeded",
                "logTail": "",
            }
        if position < 6:
            assert _overview(server, deployment_id)["InProgress"] == 2

    info = wait_for_status(server, deployment_id, {"Succeeded", "Failed"})
    assert info["status"] == "Succeeded", info
    assert "errorInformation" not in info
    assert info["completeTime"] >= info["startTime"]
    assert info["deploymentOverview"]["Succeeded"] == 2 and info["deploymentOverview"]["InProgress"] == 0
    for agent in (first, second):
        target = codedeploy.get_deployment_target(deploymentId=deployment_id, targetId=agent.name)
        instance = target["deploymentTarget"]["instanceTarget"]
        assert instance["status"] == "Succeeded"
        assert instance["targetArn"] == agent.instance_arn
        assert _statuses(instance["lifecycleEvents"]) == ["Succeeded"] * 7
        times = [(e["startTime"], e["endTime"]) for e in instance["lifecycleEvents"]]
        assert all(start <= end for start, end in times)
        assert all(times[i][1] <= times[i + 1][0] for i in range(6))  # one event after the other
        summary = codedeploy.get_deployment_instance(deploymentId=deployment_id, instanceId=agent.name)
        assert _statuses(summary["instanceSummary"]["lifecycleEvents"]) == ["Succeeded"] * 7
    batch = codedeploy.batch_get_deployment_targets(
        deploymentId=deployment_id, targetIds=[first.name, second.name]
    )
    assert [t["instanceTarget"]["status"] for t in batch["deploymentTargets"]] == ["Succeeded", "Succeeded"]
    group = codedeploy.get_deployment_group(
        applicationName=fleet.application, deploymentGroupName=fleet.group
    )
    group_info = group["deploymentGroupInfo"]
    assert group_info["lastSuccessfulDeployment"]["deploymentId"] == deployment_id
    assert group_info["lastSuccessfulDeployment"]["status"] == "Succeeded"
    assert group_info["lastAttemptedDeployment"]["deploymentId"] == deployment_id
    assert group_info["targetRevision"]["s3Location"]["key"] == "app.zip"
    assert first.poll() is None and second.poll() is None  # nothing left to do


def test_failing_event_fails_the_instance_with_its_diagnostics(command_server: ServerProcess) -> None:
    server = command_server
    fleet = create_fleet(server)
    agent = fleet.add_instance()
    deployment_id = fleet.deploy()
    for _ in range(2):  # ApplicationStop, DownloadBundle
        agent.run(agent.poll_until_command())
    command = agent.poll_until_command()
    assert command["CommandName"] == "BeforeInstall"
    agent.specification(command)
    agent.acknowledge(command)
    log = "LifecycleEvent - BeforeInstall\nScript - scripts/install_dependencies\n[stderr]boom\n"
    agent.complete(
        command,
        "Failed",
        error_code=4,
        script_name="scripts/install_dependencies",
        message="Script at specified location: scripts/install_dependencies failed with exit code 3",
        log=log,
    )
    # AWS's agent completes a failed command a second time with a generic error: the first one stands.
    agent.complete(command, "Failed", error_code=5, message="Script failed", log="")

    info = wait_for_status(server, deployment_id, {"Succeeded", "Failed"})
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"
    assert info["errorInformation"]["message"].startswith("The overall deployment failed because too many")
    assert info["deploymentOverview"]["Failed"] == 1
    assert "completeTime" in info
    events = _events(server, deployment_id, agent)
    assert _statuses(events) == [
        "Succeeded",
        "Succeeded",
        "Failed",
        "Skipped",
        "Skipped",
        "Skipped",
        "Skipped",
    ]
    assert events[2]["diagnostics"] == {
        "errorCode": "ScriptFailed",
        "scriptName": "scripts/install_dependencies",
        "message": "Script at specified location: scripts/install_dependencies failed with exit code 3",
        "logTail": log,
    }
    assert all("startTime" not in e and "diagnostics" not in e for e in events[3:])
    assert agent.poll() is None  # the skipped events never reach the agent
    group = server.client("codedeploy").get_deployment_group(
        applicationName=fleet.application, deploymentGroupName=fleet.group
    )["deploymentGroupInfo"]
    assert group["lastAttemptedDeployment"]["status"] == "Failed"
    assert "lastSuccessfulDeployment" not in group


def test_duplicate_completion_keeps_the_first(command_server: ServerProcess) -> None:
    server = command_server
    fleet = create_fleet(server)
    agent = fleet.add_instance()
    deployment_id = fleet.deploy()
    command = agent.poll_until_command()
    agent.run(command)
    agent.complete(command, "Failed", error_code=5, message="late duplicate")  # accepted, ignored
    events = _events(server, deployment_id, agent)
    assert events[0]["status"] == "Succeeded" and events[0]["diagnostics"]["errorCode"] == "Success"
    assert agent.acknowledge(command) == "Succeeded"  # so an agent never runs it again
    following = agent.poll_until_command()
    assert following["CommandName"] == "DownloadBundle"  # exactly one next command, not two
    agent.complete(following, "Failed", error_code=5, message="download failed")
    agent.complete(following, "Succeeded")
    wait_for_status(server, deployment_id, {"Failed"})
    assert _statuses(_events(server, deployment_id, agent))[:3] == ["Succeeded", "Failed", "Skipped"]


def test_agent_restart_fails_the_interrupted_event(command_server: ServerProcess) -> None:
    """AWS's agent, restarted after a crash, completes its interrupted command Failed with error code 7."""
    server = command_server
    fleet = create_fleet(server)
    agent = fleet.add_instance()
    deployment_id = fleet.deploy()
    command = agent.poll_until_command()
    agent.specification(command)
    agent.acknowledge(command)
    agent.complete(
        command,
        "Failed",
        error_code=7,
        message="Failed: Failing in-progress lifecycle event after an agent restart.",
    )
    info = wait_for_status(server, deployment_id, {"Succeeded", "Failed"})
    assert info["status"] == "Failed"
    event = _events(server, deployment_id, agent)[0]
    assert event["status"] == "Failed"
    assert event["diagnostics"]["errorCode"] == "UnknownError"
    assert "after an agent restart" in event["diagnostics"]["message"]


def test_ignore_application_stop_failures_goes_on(command_server: ServerProcess) -> None:
    """Decision: with ignoreApplicationStopFailures a failed ApplicationStop stays Failed in the
    instance's events (with its diagnostics) and the instance goes on to DownloadBundle and succeeds."""
    server = command_server
    fleet = create_fleet(server)
    agent = fleet.add_instance()
    deployment_id = fleet.deploy(ignoreApplicationStopFailures=True)
    stop = agent.poll_until_command()
    assert stop["CommandName"] == "ApplicationStop"
    agent.run(stop, "Failed", error_code=1, script_name="scripts/stop.sh", message="Script does not exist")
    for _ in range(6):
        agent.run(agent.poll_until_command())
    info = wait_for_status(server, deployment_id, {"Succeeded", "Failed"})
    assert info["status"] == "Succeeded"
    events = _events(server, deployment_id, agent)
    assert _statuses(events) == ["Failed"] + ["Succeeded"] * 6
    assert events[0]["diagnostics"]["errorCode"] == "ScriptMissing"


def test_no_instances(command_server: ServerProcess) -> None:
    server = command_server
    fleet = create_fleet(server)  # nothing is registered with its tag
    deployment_id = fleet.deploy()
    info = wait_for_status(server, deployment_id, {"Succeeded", "Failed"})
    assert info["status"] == "Failed"
    assert info["errorInformation"] == {
        "code": "NO_INSTANCES",
        "message": (
            "The deployment failed because no instances were found for your deployment group. Check your "
            "deployment group settings to make sure the tags for your EC2 instances or Auto Scaling groups "
            "correctly identify the instances you want to deploy to, and then try again."
        ),
    }
    assert "completeTime" in info
    assert server.client("codedeploy").list_deployment_targets(deploymentId=deployment_id)["targetIds"] == []


def test_deregistered_instances_are_not_targets(command_server: ServerProcess) -> None:
    server = command_server
    fleet = create_fleet(server)
    kept, gone = fleet.add_instance(), fleet.add_instance()
    server.client("codedeploy").deregister_on_premises_instance(instanceName=gone.name)
    deployment_id = fleet.deploy()
    wait_for_status(server, deployment_id, {"InProgress"})
    assert server.client("codedeploy").list_deployment_targets(deploymentId=deployment_id)["targetIds"] == [
        kept.name
    ]
    with pytest.raises(ClientError) as refused:
        gone.poll()
    assert refused.value.response["Error"]["Code"] == "ClientException"
    assert "registered" in refused.value.response["Error"]["Message"]


def test_one_at_a_time_hands_out_one_instance_at_a_time(command_server: ServerProcess) -> None:
    server = command_server
    fleet = create_fleet(server, "CodeDeployDefault.OneAtATime")
    agents = [fleet.add_instance() for _ in range(3)]
    deployment_id = fleet.deploy()
    wait_for_status(server, deployment_id, {"InProgress"})
    finished: list[str] = []
    for _ in range(3):
        # The engine starts the next instance right after one finishes.
        overview = wait_for(
            lambda: (o := _overview(server, deployment_id))["InProgress"] == 1 and o,
            message="the next instance to start",
        )
        assert overview["Pending"] == 2 - len(finished) and overview["Succeeded"] == len(finished)
        codedeploy = server.client("codedeploy")
        running = [
            a
            for a in agents
            if codedeploy.get_deployment_target(deploymentId=deployment_id, targetId=a.name)[
                "deploymentTarget"
            ]["instanceTarget"]["status"]
            == "InProgress"
        ]
        assert len(running) == 1
        waiting = [a for a in agents if a.name not in finished and a is not running[0]]
        assert all(a.poll() is None for a in waiting)
        for _ in range(7):
            running[0].run(running[0].poll_until_command())
        finished.append(running[0].name)
    assert wait_for_status(server, deployment_id, {"Succeeded", "Failed"})["status"] == "Succeeded"
    assert finished == sorted(a.name for a in agents)  # same health: by name


def test_execution_id_and_spec_are_refused_for_other_deployments(command_server: ServerProcess) -> None:
    server = command_server
    fleet = create_fleet(server)
    agent = fleet.add_instance()
    deployment_id = fleet.deploy()
    command = agent.poll_until_command()
    other = fleet.add_instance()  # registered after the deployment started: not one of its targets
    for execution_id, expected in [
        (command["DeploymentExecutionId"], "has no work for instance"),
        ("CodeDeploy/us-east-1/opendeploy/arn:aws:codedeploy:us-east-1:1:deployment/d-NOTTHERE1", "no work"),
        ("CodeDeploy/us-east-1/opendeploy/not-a-deployment", "does not name a deployment"),
        ("no-slashes-at-all", "does not match the pattern"),
    ]:
        with pytest.raises(ClientError) as refused:
            other.client.get_deployment_specification(
                DeploymentExecutionId=execution_id, HostIdentifier=other.user_arn
            )
        assert refused.value.response["Error"]["Code"] == "ClientException"
        assert expected in refused.value.response["Error"]["Message"]
    assert agent.specification(command)["DeploymentSystem"] == "CodeDeploy"
    wait_for_status(server, deployment_id, {"InProgress"})


def test_completion_status_must_be_final(command_server: ServerProcess) -> None:
    fleet = create_fleet(command_server)
    agent = fleet.add_instance()
    fleet.deploy()
    command = agent.poll_until_command()
    for status in ("InProgress", "Pending"):
        with pytest.raises(ClientError) as refused:
            agent.client.put_host_command_complete(
                HostCommandIdentifier=command["HostCommandIdentifier"], CommandStatus=status
            )
        assert refused.value.response["Error"]["Code"] == "ClientException"
        assert "Succeeded or Failed" in refused.value.response["Error"]["Message"]
    assert agent.acknowledge(command) == "InProgress"


def test_unreadable_diagnostics_still_complete_the_event(command_server: ServerProcess) -> None:
    server = command_server
    fleet = create_fleet(server)
    agent = fleet.add_instance()
    deployment_id = fleet.deploy()
    command = agent.poll_until_command()
    agent.client.put_host_command_complete(
        HostCommandIdentifier=command["HostCommandIdentifier"],
        CommandStatus="Failed",
        Diagnostics={"Format": "JSON", "Payload": "not json {"},
    )
    wait_for_status(server, deployment_id, {"Failed"})
    diagnostics = _events(server, deployment_id, agent)[0]["diagnostics"]
    assert diagnostics["errorCode"] == "UnknownError"
    assert "not a JSON object: not json {" in diagnostics["message"]


def test_post_host_command_update_answers_the_status(command_server: ServerProcess) -> None:
    fleet = create_fleet(command_server)
    agent = fleet.add_instance()
    fleet.deploy()
    command = agent.poll_until_command()
    estimate = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    update = agent.client.post_host_command_update(
        HostCommandIdentifier=command["HostCommandIdentifier"],
        EstimatedCompletionTime=estimate,
        Diagnostics={"Format": "JSON", "Payload": json.dumps({"progress": "half"})},
    )
    assert update["CommandStatus"] == "InProgress"
    agent.run(command)
    done = agent.client.post_host_command_update(HostCommandIdentifier=command["HostCommandIdentifier"])
    assert done["CommandStatus"] == "Succeeded"


def test_a_command_handed_out_but_never_acknowledged_is_handed_out_again(
    command_server: ServerProcess,
) -> None:
    """If the answer to a poll is lost (the connection dropped, the server died as it answered), the agent
    never saw the command: after a while it is handed out again, under an identifier of its own. Once
    acknowledged, it never is."""
    fleet = create_fleet(command_server)
    agent = fleet.add_instance()
    fleet.deploy()
    lost = agent.poll_until_command()
    started = time.monotonic()
    again = agent.poll_until_command(timeout=REDELIVERY_AFTER + 10)
    assert time.monotonic() - started >= REDELIVERY_AFTER * 0.9
    assert again["HostCommandIdentifier"] != lost["HostCommandIdentifier"]
    assert again["CommandName"] == "ApplicationStop"
    assert agent.acknowledge(again) == "InProgress"
    assert agent.acknowledge(again) == "InProgress"  # its answer lost: asked again, the same answer
    wait_until = time.monotonic() + REDELIVERY_AFTER + 0.5
    while time.monotonic() < wait_until:
        assert agent.poll() is None  # acknowledged: the agent has it
    agent.complete(again)
    assert agent.poll_until_command()["CommandName"] == "DownloadBundle"


def test_of_two_hand_outs_of_one_command_only_the_first_acknowledged_runs(
    command_server: ServerProcess,
) -> None:
    """An agent slow to acknowledge gets the command a second time (AWS's agent would run both copies):
    whichever copy is acknowledged first runs; the other is answered Failed — not to be run — and its
    completion changes nothing."""
    fleet = create_fleet(command_server)
    agent = fleet.add_instance()
    deployment_id = fleet.deploy()
    slow = agent.poll_until_command()
    fast = agent.poll_until_command(timeout=REDELIVERY_AFTER + 10)
    assert fast["HostCommandIdentifier"] != slow["HostCommandIdentifier"]
    assert agent.acknowledge(fast) == "InProgress"
    assert agent.acknowledge(slow) == "Failed"  # the other copy: do not run it
    agent.complete(slow, "Failed", error_code=5, message="should be ignored")
    agent.client.post_host_command_update(HostCommandIdentifier=slow["HostCommandIdentifier"])
    events = command_server.client("codedeploy").get_deployment_target(
        deploymentId=deployment_id, targetId=agent.name
    )["deploymentTarget"]["instanceTarget"]["lifecycleEvents"]
    assert events[0]["lifecycleEventName"] == "ApplicationStop" and events[0]["status"] == "InProgress"
    agent.complete(fast)
    assert agent.poll_until_command()["CommandName"] == "DownloadBundle"
    events = command_server.client("codedeploy").get_deployment_target(
        deploymentId=deployment_id, targetId=agent.name
    )["deploymentTarget"]["instanceTarget"]["lifecycleEvents"]
    assert events[0]["status"] == "Succeeded"


def test_the_signing_key_stays_private_and_the_certificate_is_served(command_server: ServerProcess) -> None:
    signer = command_server.data_dir / "specification-signer.pem"
    assert signer.stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in signer.read_bytes()
    served = httpx.get(f"{command_server.endpoint}/agent/certificate")
    assert served.status_code == 200
    assert served.content == (command_server.data_dir / "specification-signer.crt").read_bytes()
    assert b"PRIVATE" not in served.content


def test_two_applications_deploy_to_the_same_instance_at_once(command_server: ServerProcess) -> None:
    """Different applications may deploy to the same instances concurrently (guide L18119–18120): the
    agent gets both deployments' commands, each deployment's events in order."""
    server = command_server
    first = create_fleet(server)
    second = create_fleet(server)
    second.tag = first.tag
    codedeploy = server.client("codedeploy")
    codedeploy.update_deployment_group(
        applicationName=second.application,
        currentDeploymentGroupName=second.group,
        onPremisesInstanceTagFilters=[{"Key": "fleet", "Value": first.tag["fleet"], "Type": "KEY_AND_VALUE"}],
    )
    agent = first.add_instance()
    deployments = [first.deploy(), second.deploy()]
    seen: dict[str, list[str]] = {d: [] for d in deployments}
    for _ in range(14):
        command = agent.poll_until_command()
        deployment_id = command["DeploymentExecutionId"].rsplit("/", 1)[-1]
        seen[deployment_id].append(command["CommandName"])
        agent.run(command)
    assert seen == {d: IN_PLACE_EVENTS for d in deployments}
    for deployment_id in deployments:
        assert wait_for_status(server, deployment_id, {"Succeeded", "Failed"})["status"] == "Succeeded"


def test_a_minimum_the_fleet_cannot_meet_fails_before_any_instance_runs(
    command_server: ServerProcess,
) -> None:
    server = command_server
    codedeploy = server.client("codedeploy")
    config = f"three-healthy-{time.monotonic_ns()}"
    codedeploy.create_deployment_config(
        deploymentConfigName=config, minimumHealthyHosts={"type": "HOST_COUNT", "value": 3}
    )
    fleet = create_fleet(server, config)
    agents = [fleet.add_instance(), fleet.add_instance()]
    deployment_id = fleet.deploy()
    info = wait_for_status(server, deployment_id, {"Succeeded", "Failed"})
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "HEALTH_CONSTRAINTS_INVALID"
    assert info["errorInformation"]["message"].startswith("The deployment can’t start because the minimum")
    assert info["deploymentOverview"]["Skipped"] == 2
    assert all(agent.poll() is None for agent in agents)  # no instance was touched
