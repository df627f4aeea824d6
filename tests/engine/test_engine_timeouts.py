"""Deadlines: an event nobody picks up, and an event that runs too long, fail the instance — no hang.

The guide's windows are 5 minutes to pick an event up and an hour to run it (troubleshooting
L27516–27529); these servers shorten both to seconds.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from command_agents import create_fleet, wait_for_status

from support.server import ServerProcess

# Short, but long enough that a working agent on a loaded 2-core machine always makes them.
START_TIMEOUT = 3.0
RUN_TIMEOUT = 4.0
SHORT_DEADLINES = [
    "--event-start-timeout",
    str(START_TIMEOUT),
    "--event-timeout",
    str(RUN_TIMEOUT),
    "--poll-hold",
    "0.5",
    "--engine-sweep-interval",
    "0.5",
]


@pytest.fixture(scope="module")
def deadline_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One server with second-long deadlines for the module (each test has its own fleet)."""
    process = ServerProcess(tmp_path_factory.mktemp("deadlines"), extra_args=SHORT_DEADLINES)
    process.start()
    yield process
    process.stop()


def _instance(server: ServerProcess, deployment_id: str, name: str) -> dict[str, Any]:
    target = server.client("codedeploy").get_deployment_target(deploymentId=deployment_id, targetId=name)
    return target["deploymentTarget"]["instanceTarget"]


def test_an_event_no_agent_picks_up_fails_the_instance(deadline_server: ServerProcess) -> None:
    server = deadline_server
    fleet = create_fleet(server)
    silent = fleet.add_instance()  # registered, but its agent never polls
    started = time.monotonic()
    deployment_id = fleet.deploy()
    info = wait_for_status(server, deployment_id, {"Succeeded", "Failed"}, timeout=START_TIMEOUT + 10)
    assert time.monotonic() - started >= START_TIMEOUT
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "AGENT_ISSUE"
    assert "problem with the CodeDeploy agent" in info["errorInformation"]["message"]
    instance = _instance(server, deployment_id, silent.name)
    assert instance["status"] == "Failed"
    events = instance["lifecycleEvents"]
    assert [e["status"] for e in events] == ["Failed"] + ["Skipped"] * 6
    assert events[0]["diagnostics"]["errorCode"] == "UnknownError"
    assert (
        "did not pick up the ApplicationStop lifecycle event within 3 seconds"
        in (events[0]["diagnostics"]["message"])
    )
    # An agent that turns up late gets nothing to do.
    assert silent.poll() is None


def test_an_event_that_runs_too_long_fails_and_a_late_completion_is_ignored(
    deadline_server: ServerProcess,
) -> None:
    server = deadline_server
    fleet = create_fleet(server)
    agent = fleet.add_instance()
    deployment_id = fleet.deploy()
    command = agent.poll_until_command()
    agent.specification(command)
    assert agent.acknowledge(command) == "InProgress"
    info = wait_for_status(server, deployment_id, {"Succeeded", "Failed"}, timeout=RUN_TIMEOUT + 10)
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "TIMEOUT"
    event = _instance(server, deployment_id, agent.name)["lifecycleEvents"][0]
    assert event["status"] == "Failed"
    # The run deadline counts from the hand-out, when the event started.
    assert (event["endTime"] - event["startTime"]).total_seconds() >= RUN_TIMEOUT
    assert "did not complete within 4 seconds" in event["diagnostics"]["message"]
    agent.complete(command)  # too late: accepted, changes nothing
    assert _instance(server, deployment_id, agent.name)["lifecycleEvents"][0]["status"] == "Failed"
    assert agent.acknowledge(command) == "Failed"  # an agent asking again is told not to run it


def test_an_estimated_completion_time_extends_the_deadline(deadline_server: ServerProcess) -> None:
    server = deadline_server
    fleet = create_fleet(server)
    agent = fleet.add_instance()
    deployment_id = fleet.deploy()
    command = agent.poll_until_command()
    agent.acknowledge(command)
    agent.client.post_host_command_update(
        HostCommandIdentifier=command["HostCommandIdentifier"],
        EstimatedCompletionTime=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30),
    )
    # Well past the 4-second event timeout, the event still runs (its deadline is the estimate + grace).
    deadline = time.monotonic() + RUN_TIMEOUT + 2
    while time.monotonic() < deadline:
        assert _instance(server, deployment_id, agent.name)["lifecycleEvents"][0]["status"] == "InProgress"
        time.sleep(0.2)
    agent.complete(command)
    assert agent.poll_until_command()["CommandName"] == "DownloadBundle"


def test_a_second_instance_still_succeeds_when_one_agent_is_down(deadline_server: ServerProcess) -> None:
    """AllAtOnce needs one success: the silent instance fails by timeout, the other finishes."""
    server = deadline_server
    fleet = create_fleet(server)
    working, silent = fleet.add_instance(), fleet.add_instance()
    deployment_id = fleet.deploy()
    for _ in range(7):
        working.run(working.poll_until_command())
    info = wait_for_status(server, deployment_id, {"Succeeded", "Failed"}, timeout=START_TIMEOUT + 10)
    assert info["status"] == "Succeeded"
    assert info["deploymentOverview"]["Succeeded"] == 1 and info["deploymentOverview"]["Failed"] == 1
    assert _instance(server, deployment_id, silent.name)["status"] == "Failed"
