"""Many agents at once: requests that arrive together share transactions on SQLite (group commit), so
these tests send them together and check that each still behaves as if it ran alone — the first of
concurrent completions wins and the next event is issued once, a refused request changes nothing for
the others, and a completion the server has answered survives a kill -9 at once after."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from command_agents import (
    FAST_ENGINE,
    IN_PLACE_EVENTS,
    Agent,
    commands_client,
    create_fleet,
    diagnostics,
    register_instance,
    server_database,
    wait_for_status,
)
from sqlalchemy import func, select

from opendeploy.store.models import HostCommand
from support.server import ServerProcess


def _together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released at the same moment; each one's result or exception."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait()
        try:
            return call()
        except Exception as error:  # the caller inspects what each call got
            return error

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _own_client(agent: Agent) -> Any:
    return commands_client(agent.server, agent.access_key, agent.secret_key)


def _commands_per_event(server: ServerProcess, deployment_id: str) -> dict[int, int]:
    database = server_database(server)
    try:
        with database.transaction(write=False) as session:
            rows = session.execute(
                select(HostCommand.lifecycle_event_id, func.count())
                .where(HostCommand.deployment_id == deployment_id)
                .group_by(HostCommand.lifecycle_event_id)
            ).all()
    finally:
        database.dispose()
    return dict(rows)


def test_concurrent_completions_of_one_command_keep_exactly_one(command_server: ServerProcess) -> None:
    server = command_server
    fleet = create_fleet(server)
    agent = fleet.add_instance()
    deployment_id = fleet.deploy()
    command = agent.poll_until_command()
    agent.specification(command)
    assert agent.acknowledge(command) == "InProgress"

    outcomes = [("Succeeded", "")] + [("Failed", f"duplicate {i}") for i in range(7)]
    clients = [_own_client(agent) for _ in outcomes]
    answers = _together(
        [
            lambda client=client, status=status, message=message: client.put_host_command_complete(
                HostCommandIdentifier=command["HostCommandIdentifier"],
                CommandStatus=status,
                Diagnostics=diagnostics(error_code=0 if status == "Succeeded" else 5, message=message),
            )
            for client, (status, message) in zip(clients, outcomes, strict=True)
        ]
    )
    assert not [answer for answer in answers if isinstance(answer, Exception)]  # every one accepted

    target = server.client("codedeploy").get_deployment_target(
        deploymentId=deployment_id, targetId=agent.name
    )
    event = target["deploymentTarget"]["instanceTarget"]["lifecycleEvents"][0]
    # One of them won, whole: its status with its own diagnostics.
    if event["status"] == "Succeeded":
        assert event["diagnostics"]["errorCode"] == "Success"
        following = agent.poll_until_command()
        assert following["CommandName"] == "DownloadBundle"
        # Acknowledged as an agent does at once, so the held poll below cannot see it redelivered.
        assert agent.acknowledge(following) == "InProgress"
        assert agent.poll() is None  # the next event was issued once, not once per completion
    else:
        assert event["status"] == "Failed"
        assert event["diagnostics"]["message"].startswith("duplicate ")
        wait_for_status(server, deployment_id, {"Failed"})
    assert set(_commands_per_event(server, deployment_id).values()) == {1}


def test_a_busy_fleet_with_duplicates_and_intruders_records_each_event_once(
    command_server: ServerProcess,
) -> None:
    server = command_server
    fleet = create_fleet(server)
    agents = [fleet.add_instance() for _ in range(8)]
    deployment_id = fleet.deploy()
    intruder = register_instance(server, {})  # a registered instance, in no deployment group
    stolen: list[str] = []
    refused: list[str] = []
    done = threading.Event()

    def host(agent: Agent) -> None:
        client = _own_client(agent)
        for _ in IN_PLACE_EVENTS:
            command = client.poll_host_command(HostIdentifier=agent.user_arn).get("HostCommand")
            while not command:
                command = client.poll_host_command(HostIdentifier=agent.user_arn).get("HostCommand")
            stolen.append(command["HostCommandIdentifier"])
            client.get_deployment_specification(
                DeploymentExecutionId=command["DeploymentExecutionId"], HostIdentifier=agent.user_arn
            )
            ack = client.put_host_command_acknowledgement(
                HostCommandIdentifier=command["HostCommandIdentifier"],
                Diagnostics={"Format": "JSON", "Payload": json.dumps({"IsCommandNoop": False})},
            )
            assert ack["CommandStatus"] == "InProgress"
            for status in ("Succeeded", "Failed"):  # the Failed one is a late duplicate: ignored
                client.put_host_command_complete(
                    HostCommandIdentifier=command["HostCommandIdentifier"],
                    CommandStatus=status,
                    Diagnostics=diagnostics(error_code=0 if status == "Succeeded" else 5),
                )

    def intrude() -> None:
        client = _own_client(intruder)
        while not done.is_set():
            for identifier in list(stolen[-4:]) or ["made-up"]:
                try:
                    client.put_host_command_complete(
                        HostCommandIdentifier=identifier,
                        CommandStatus="Failed",
                        Diagnostics=diagnostics(error_code=5, message="not mine"),
                    )
                except ClientError as error:
                    refused.append(error.response["Error"]["Code"])

    intruding = threading.Thread(target=intrude)
    intruding.start()
    try:
        results = _together([lambda agent=agent: host(agent) for agent in agents])
    finally:
        done.set()
        intruding.join()
    assert [result for result in results if result is not None] == []
    assert refused and set(refused) == {"ClientException"}

    info = wait_for_status(server, deployment_id, {"Succeeded", "Failed"})
    assert info["status"] == "Succeeded"
    assert info["deploymentOverview"]["Succeeded"] == len(agents)
    codedeploy = server.client("codedeploy")
    for agent in agents:
        target = codedeploy.get_deployment_target(deploymentId=deployment_id, targetId=agent.name)
        events = target["deploymentTarget"]["instanceTarget"]["lifecycleEvents"]
        assert [(e["lifecycleEventName"], e["status"]) for e in events] == [
            (name, "Succeeded") for name in IN_PLACE_EVENTS
        ]
    per_event = _commands_per_event(server, deployment_id)
    assert len(per_event) == len(agents) * len(IN_PLACE_EVENTS) and set(per_event.values()) == {1}


@pytest.mark.parametrize("backend_name", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_answered_completions_survive_kill_9_at_once(backend_name: str, server_factory: Any) -> None:
    server = server_factory(backend_name, extra_args=FAST_ENGINE)
    fleet = create_fleet(server)
    agents = [fleet.add_instance() for _ in range(6)]
    deployment_id = fleet.deploy()
    commands = {agent.name: agent.poll_until_command() for agent in agents}
    for agent in agents:
        agent.specification(commands[agent.name])
        assert agent.acknowledge(commands[agent.name]) == "InProgress"

    answers = _together([lambda agent=agent: agent.complete(commands[agent.name]) for agent in agents])
    assert answers == [None] * len(agents)  # every completion answered ...
    server.restart(kill=True)  # ... then the server dies before anything else happens

    codedeploy = server.client("codedeploy")
    for agent in agents:
        target = codedeploy.get_deployment_target(deploymentId=deployment_id, targetId=agent.name)
        events = target["deploymentTarget"]["instanceTarget"]["lifecycleEvents"]
        assert events[0]["status"] == "Succeeded"
        assert agent.poll_until_command()["CommandName"] == "DownloadBundle"
