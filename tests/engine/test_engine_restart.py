"""A server killed with SIGKILL mid-deployment carries on after a restart; replicas share the work.

All deployment state is in the database: in-flight host commands stay valid across the restart, timers
fire after it, and the deployment completes. On PostgreSQL, a second server process on the same
database (a replica) wakes long polls and advances deployments as well as the first.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from command_agents import commands_client, create_fleet, wait_for_status

from support.server import ServerProcess

FAST = ["--poll-hold", "1", "--engine-sweep-interval", "0.5"]


def _events(server: ServerProcess, deployment_id: str, name: str) -> list[dict[str, Any]]:
    target = server.client("codedeploy").get_deployment_target(deploymentId=deployment_id, targetId=name)
    return target["deploymentTarget"]["instanceTarget"]["lifecycleEvents"]


def test_kill_9_mid_deployment_then_the_deployment_completes(backend: str, server_factory: Any) -> None:
    server = server_factory(backend, extra_args=FAST)
    fleet = create_fleet(server, "CodeDeployDefault.OneAtATime")
    agents = sorted([fleet.add_instance(), fleet.add_instance()], key=lambda a: a.name)
    deployment_id = fleet.deploy()
    first, second = agents
    for _ in range(3):  # ApplicationStop, DownloadBundle, BeforeInstall
        first.run(first.poll_until_command())
    in_flight = first.poll_until_command()
    assert in_flight["CommandName"] == "Install"
    first.specification(in_flight)
    assert first.acknowledge(in_flight) == "InProgress"

    server.restart(kill=True)

    # The command handed out before the crash is still valid: its completion is taken.
    first.complete(in_flight)
    for _ in range(3):
        first.run(first.poll_until_command())
    # The engine, restarted, moves on to the second instance.
    for _ in range(7):
        second.run(second.poll_until_command())
    info = wait_for_status(server, deployment_id, {"Succeeded", "Failed"})
    assert info["status"] == "Succeeded"
    for agent in agents:
        events = _events(server, deployment_id, agent.name)
        assert [e["status"] for e in events] == ["Succeeded"] * 7
        assert all(e["startTime"] <= e["endTime"] for e in events)


def test_a_deadline_that_passed_while_the_server_was_down_fires_after_restart(
    backend: str, server_factory: Any
) -> None:
    server = server_factory(backend, extra_args=[*FAST, "--event-start-timeout", "2"])
    fleet = create_fleet(server)
    silent = fleet.add_instance()
    deployment_id = fleet.deploy()
    wait_for_status(server, deployment_id, {"InProgress"})
    server.kill9()
    down_since = time.monotonic()
    while time.monotonic() - down_since < 2.5:  # stay down past the pick-up deadline
        time.sleep(0.1)
    server.start()
    info = wait_for_status(server, deployment_id, {"Succeeded", "Failed"}, timeout=20)
    assert info["status"] == "Failed" and info["errorInformation"]["code"] == "AGENT_ISSUE"
    assert _events(server, deployment_id, silent.name)[0]["status"] == "Failed"


@pytest.mark.postgres
def test_a_replica_wakes_its_long_polls_for_work_created_through_another(
    postgres_databases: Any, server_factory: Any
) -> None:
    primary = server_factory("postgresql", extra_args=FAST)
    # A second server process on the same database and data directory (master key, signing key).
    replica = ServerProcess(primary.workdir, primary.database_url, extra_args=["--poll-hold", "30"])
    replica.start(init=False)
    try:
        fleet = create_fleet(primary)
        agent = fleet.add_instance()
        through_replica = commands_client(replica, agent.access_key, agent.secret_key)
        result: dict[str, Any] = {}

        def poll() -> None:
            result["command"] = through_replica.poll_host_command(HostIdentifier=agent.user_arn).get(
                "HostCommand"
            )
            result["returned"] = time.monotonic()

        waiting = threading.Thread(target=poll)
        waiting.start()
        replica.wait_for_polls_waiting(1)  # the poll is waiting on the replica (for up to 30 s)
        created = time.monotonic()
        deployment_id = fleet.deploy()
        waiting.join(timeout=20)
        assert result["command"]["CommandName"] == "ApplicationStop"
        assert result["returned"] - created < 10.0  # woken by NOTIFY, not the 30 s hold

        # Both replicas' engines run; the deployment still advances exactly once per event.
        agent.client = through_replica
        agent.run(result["command"])
        for name in ["DownloadBundle", "BeforeInstall", "Install", "AfterInstall", "ApplicationStart"]:
            command = agent.poll_until_command()
            assert command["CommandName"] == name
            agent.run(command)
        last = agent.poll_until_command()
        assert last["CommandName"] == "ValidateService"
        agent.run(last)
        assert wait_for_status(primary, deployment_id, {"Succeeded", "Failed"})["status"] == "Succeeded"
        on_primary = commands_client(primary, agent.access_key, agent.secret_key)
        assert on_primary.poll_host_command(HostIdentifier=agent.user_arn).get("HostCommand") is None
    finally:
        replica.stop()
