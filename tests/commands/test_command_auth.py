"""Who may call the command service: only registered instances, each for its own commands, with valid
SigV4 signatures. Every refusal changes nothing."""

from __future__ import annotations

from typing import Any

import botocore
import pytest
from botocore.exceptions import ClientError
from command_agents import commands_client, create_fleet, create_key, wait_for_status

from support.server import ServerProcess


def _refusal(call: Any, **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as refused:
        call(**params)
    error = refused.value.response["Error"]
    return error["Code"], error["Message"]


def test_an_instance_cannot_touch_another_instances_commands(command_server: ServerProcess) -> None:
    server = command_server
    fleet = create_fleet(server)
    owner, intruder = fleet.add_instance(), fleet.add_instance()
    deployment_id = fleet.deploy()
    command = owner.poll_until_command()
    identifier = command["HostCommandIdentifier"]

    # Polling as the other host, or under the other host's ARN or name.
    for host in (owner.user_arn, owner.instance_arn, owner.name):
        code, message = _refusal(intruder.client.poll_host_command, HostIdentifier=host)
        assert code == "ClientException"
        assert "is not the instance that signed this request" in message
    code, message = _refusal(
        intruder.client.get_deployment_specification,
        DeploymentExecutionId=command["DeploymentExecutionId"],
        HostIdentifier=owner.user_arn,
    )
    assert code == "ClientException"
    for call, params in [
        (intruder.client.put_host_command_acknowledgement, {}),
        (intruder.client.put_host_command_complete, {"CommandStatus": "Failed"}),
        (intruder.client.post_host_command_update, {}),
    ]:
        code, message = _refusal(call, HostCommandIdentifier=identifier, **params)
        assert code == "ClientException"
        assert message == f"There is no host command {identifier!r} for this instance"
    code, message = _refusal(
        intruder.client.put_host_command_complete, HostCommandIdentifier="made-up", CommandStatus="Failed"
    )
    assert message == "There is no host command 'made-up' for this instance"

    # Nothing changed: the owner's command is still running and completes normally.
    events = server.client("codedeploy").get_deployment_target(
        deploymentId=deployment_id, targetId=owner.name
    )
    assert events["deploymentTarget"]["instanceTarget"]["lifecycleEvents"][0]["status"] == "InProgress"
    assert owner.acknowledge(command) == "InProgress"
    owner.complete(command)
    # The intruder's own first command is still its own to run.
    assert intruder.poll_until_command()["CommandName"] == "ApplicationStop"


def test_the_agent_may_name_itself_by_user_arn_instance_arn_or_name(command_server: ServerProcess) -> None:
    fleet = create_fleet(command_server)
    agent = fleet.add_instance()
    # InProgress comes with the first commands issued (one transaction): the first poll gets one.
    wait_for_status(command_server, fleet.deploy(), {"InProgress"})
    for host in (agent.instance_arn, agent.name):
        command = agent.client.poll_host_command(HostIdentifier=host).get("HostCommand")
        if command:
            assert command["HostIdentifier"] == host
            break
    else:
        raise AssertionError("no command for the agent")


def test_unsigned_and_wrongly_signed_requests_are_refused(command_server: ServerProcess) -> None:
    server = command_server
    fleet = create_fleet(server)
    agent = fleet.add_instance()
    deployment_id = fleet.deploy()
    wait_for_status(server, deployment_id, {"InProgress"})

    unsigned = commands_client(server, "AKIAUNUSED", "unused", signature_version=botocore.UNSIGNED)
    code, message = _refusal(unsigned.poll_host_command, HostIdentifier=agent.user_arn)
    assert code == "MissingAuthenticationTokenException"

    last = "Y" if agent.secret_key.endswith("X") else "X"  # a secret ending in X would stay right
    wrong_secret = commands_client(server, agent.access_key, agent.secret_key[:-1] + last)
    code, message = _refusal(wrong_secret.poll_host_command, HostIdentifier=agent.user_arn)
    assert code == "InvalidSignatureException"

    unknown_key = commands_client(server, "AKIAAAAAAAAAAAAAAAAA", agent.secret_key)
    code, _ = _refusal(unknown_key.poll_host_command, HostIdentifier=agent.user_arn)
    assert code == "UnrecognizedClientException"

    admin_key, admin_secret = server.credentials()
    admin = commands_client(server, admin_key, admin_secret)
    code, message = _refusal(admin.poll_host_command, HostIdentifier=agent.user_arn)
    assert code == "ClientException" and "administrator key" in message

    # A key whose user is not (yet) any registered instance's.
    stranger_key, stranger_secret = create_key(server, f"arn:aws:iam::{server.account_id}:user/stranger")
    stranger = commands_client(server, stranger_key, stranger_secret)
    code, message = _refusal(stranger.poll_host_command, HostIdentifier=agent.user_arn)
    assert code == "ClientException" and "do not belong to a registered on-premises instance" in message

    # Signed for the CodeDeploy API rather than the command service.
    wrong_service = server.session().client(
        "codedeploy", aws_access_key_id=agent.access_key, aws_secret_access_key=agent.secret_key
    )
    with pytest.raises(ClientError):
        wrong_service.list_applications()

    # None of that touched the instance's first command.
    command = agent.poll_until_command()
    assert command["CommandName"] == "ApplicationStop"


def test_a_key_created_before_registration_works_once_registered(command_server: ServerProcess) -> None:
    """As ``aws deploy register`` does: IAM user and key first, RegisterOnPremisesInstance after."""
    server = command_server
    user_arn = f"arn:aws:iam::{server.account_id}:user/early-bird-{id(server)}"
    key, secret = create_key(server, user_arn)
    client = commands_client(server, key, secret)
    code, _ = _refusal(client.poll_host_command, HostIdentifier=user_arn)
    assert code == "ClientException"
    name = f"early-bird-{id(server)}"
    server.client("codedeploy").register_on_premises_instance(instanceName=name, iamUserArn=user_arn)
    assert client.poll_host_command(HostIdentifier=user_arn).get("HostCommand") is None


def test_malformed_requests_are_refused_clearly(command_server: ServerProcess) -> None:
    fleet = create_fleet(command_server)
    agent = fleet.add_instance()
    raw = commands_client(command_server, agent.access_key, agent.secret_key, parameter_validation=False)
    code, message = _refusal(raw.poll_host_command)
    assert code == "ClientException" and "HostIdentifier" in message
    code, message = _refusal(raw.put_host_command_complete, HostCommandIdentifier="x", CommandStatus="Done")
    assert code == "ClientException" and "CommandStatus must be one of" in message
    code, message = _refusal(
        raw.put_host_command_acknowledgement,
        HostCommandIdentifier="x",
        Diagnostics={"Format": "JSON", "Payload": "x" * 8193},
    )
    assert code == "ClientException" and "Diagnostics.Payload is too long" in message
