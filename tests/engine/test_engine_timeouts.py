"""Deadlines through a real server and the agent protocol: an instance whose agent never answers fails
by its deadline while another succeeds — no hang.

The guide's windows are 5 minutes to pick an event up and an hour to run it (troubleshooting
L27516–27529); this server shortens both to seconds. The deadlines themselves (an event nobody picks up,
one that runs too long, an agent's estimate extending it) are tested at the guide's own lengths on the
engine's virtual clock: ``test_engine_deadlines``.
"""

from __future__ import annotations

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
