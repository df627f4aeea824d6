"""``opendeploy watch``: following deployments carried out by simulated agents (the real command protocol),
as plain lines when stdout is a pipe and as a live view on a terminal; large fleets shown compactly,
with few requests; finished and unknown deployments; a server that goes away and comes back.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from typing import Any

from cli_helpers import BackgroundRun, TerminalRun, opendeploy
from command_agents import FAST_ENGINE, IN_PLACE_EVENTS, Agent, Fleet, create_fleet, register_instance
from simulated_fleet import FAILED_SCRIPT, FleetRun

from opendeploy.cli.deployment_progress import DeploymentTracker
from support.names import unique
from support.server import ServerProcess, free_port, wait_for


def _summary_rows(output: str, names: set[str]) -> dict[str, str]:
    """The summary's instance rows (``name  Status  [strip]  time``), by instance name."""
    rows = {}
    for line in output.splitlines():
        match = re.match(r"^(\S+)\s+(\w+)\s+\[([+>x\-.?]*)\]", line)
        if match and match.group(1) in names:
            rows[match.group(1)] = f"{match.group(2)} {match.group(3)}"
    return rows


def _deploy(fleet: Fleet) -> str:
    return fleet.deploy()


def test_a_large_fleet_is_shown_by_counts_with_failures_first(
    cli_server: ServerProcess, tmp_path: Path
) -> None:
    fleet = create_fleet(cli_server)  # AllAtOnce: succeeds if one instance does
    agents = [fleet.add_instance() for _ in range(12)]
    failing = {agents[3].name, agents[8].name}
    last = agents[0].name  # kept at ValidateService until the watch is under way
    deployment_id = _deploy(fleet)
    run = FleetRun(
        cli_server,
        deployment_id,
        agents,
        fail={name: "Install" for name in failing},
        hold={last: "ValidateService"},
    ).start()
    watcher = BackgroundRun(cli_server, tmp_path, "watch", deployment_id, "--max-rows", "5")
    wait_for(lambda: run.holding[last].is_set(), timeout=60, message="the held event")
    wait_for(lambda: f"{deployment_id}: InProgress" in watcher.stdout(), timeout=30, message="the watch")
    run.release(last)
    run.join()
    assert watcher.wait(60) == 0, watcher.stderr()
    out = watcher.stdout()

    names = {agent.name for agent in agents}
    # Twelve instances and a limit of five: no line per lifecycle event, a line per failed instance.
    assert not [line for line in out.splitlines() if re.match(r"^\S+: (ApplicationStop|Install) ", line)]
    for name in failing:
        assert re.search(rf"^{name}: Failed \(\d", out, re.MULTILINE), out
    assert re.search(rf"^{deployment_id}: Pending 0, InProgress \d+, ", out, re.MULTILINE), out
    # The summary: five rows, the two failures among them; the other seven counted.
    summary = out[out.index(f"Deployment {deployment_id} Succeeded") :]
    rows = _summary_rows(summary, names)
    assert len(rows) == 5, summary
    assert {name for name, row in rows.items() if row.startswith("Failed")} == failing
    assert all(row == "Failed +++x---" for name, row in rows.items() if name in failing)
    assert all(row == "Succeeded +++++++" for name, row in rows.items() if name not in failing)
    assert "… and 7 more instances: Succeeded 7" in summary
    assert "12 instances: Succeeded 10, Failed 2" in summary
    for name in failing:
        assert f"{name} failed at Install: ScriptFailed" in summary
    assert summary.count(f"  script: {FAILED_SCRIPT}") == 2
    assert summary.count("    [stderr]disk full on /var/app") == 2


def test_a_refresh_costs_a_few_requests_whatever_the_fleet_size(cli_server: ServerProcess) -> None:
    fleet = create_fleet(cli_server)
    # Forty instances; only the first (by name) has an agent, the rest never poll.
    driven = register_instance(cli_server, fleet.tag, name=f"a{unique('host')}")
    codedeploy = cli_server.client("codedeploy")
    for _ in range(39):
        name = unique("idle")
        codedeploy.register_on_premises_instance(
            instanceName=name, iamUserArn=f"arn:aws:iam::{cli_server.account_id}:user/{name}"
        )
        codedeploy.add_tags_to_on_premises_instances(
            instanceNames=[name], tags=[{"Key": k, "Value": v} for k, v in fleet.tag.items()]
        )
    deployment_id = _deploy(fleet)
    try:
        wait_for(
            lambda: (
                codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
                .get("deploymentOverview", {})
                .get("InProgress")
                == 40
            ),
            timeout=30,
            message="40 instances in progress",
        )
        tracker = DeploymentTracker(codedeploy, deployment_id, max_rows=5)

        def cost() -> tuple[int, Any]:
            before = tracker.requests
            snapshot = tracker.refresh()
            return tracker.requests - before, snapshot

        # The first refresh lists the targets (four pages of ten in the test server) and fetches five rows.
        requests, snapshot = cost()
        assert requests <= 1 + 1 + 4 + 1, requests  # GetDeployment, Unknown, InProgress pages, one batch
        assert len(snapshot.rows) == 5 and snapshot.hidden == {"InProgress": 35}
        assert snapshot.rows[0].target_id == driven.name
        assert [e.name for e in snapshot.rows[0].events] == IN_PLACE_EVENTS
        # Nothing changed: GetDeployment and the running rows' events, no listing.
        requests, snapshot = cost()
        assert requests == 2
        # One event done on the shown instance: still two requests, and the row shows it.
        driven.run(driven.poll_until_command())
        requests, snapshot = cost()
        assert requests == 2
        assert snapshot.rows[0].events[0].status == "Succeeded"
        # The instance finishes: the statuses whose counts moved are listed again, once.
        while (command := driven.poll()) is not None:
            driven.run(command)
        wait_for(
            lambda: (
                codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["deploymentOverview"][
                    "Succeeded"
                ]
                == 1
            ),
            timeout=15,
            message="the instance counted as Succeeded",
        )
        requests, snapshot = cost()
        assert requests <= 1 + 4 + 1 + 1, requests  # GetDeployment, InProgress, Succeeded, one batch
        assert snapshot.hidden == {"InProgress": 34, "Succeeded": 1}
        assert all(row.status == "InProgress" for row in snapshot.rows)  # running ones come first
        requests, snapshot = cost()
        assert requests == 2  # and steady again
    finally:
        codedeploy.stop_deployment(deploymentId=deployment_id)


def test_the_live_view_on_a_terminal(cli_server: ServerProcess) -> None:
    fleet = create_fleet(cli_server)
    first, second = fleet.add_instance(), fleet.add_instance()
    deployment_id = _deploy(fleet)
    terminal = TerminalRun(cli_server, "watch", deployment_id)
    run = FleetRun(cli_server, deployment_id, [first, second], hold={second.name: "Install"}).start()
    try:
        wait_for(lambda: run.holding[second.name].is_set(), timeout=60, message="the held event")
        # A frame with the held instance running Install (three events done) and the deployment's counts.
        running = re.compile(rf"{re.escape(second.name)}\s+InProgress\s+■■■▶···\s+Install\s+\d")
        wait_for(lambda: running.search(terminal.screen_text()), timeout=30, message="the live row")
        screen = terminal.screen_text()
        assert f"Deployment {deployment_id}  InProgress" in screen
        assert "■ done  ▶ running  ✗ failed  ○ skipped  · pending" in screen
        assert "\x1b[" in terminal.raw()  # drawn with the terminal's colours and cursor moves
        run.release(second.name)
        run.join()
        assert terminal.wait(60) == 0
    finally:
        terminal.kill()
    screen = terminal.screen_text()
    final = screen[screen.rindex(f"Deployment {deployment_id} Succeeded") :]
    for agent in (first, second):
        assert re.search(rf"{re.escape(agent.name)}\s+Succeeded\s+■■■■■■■", final), final


def test_watch_of_a_finished_deployment_prints_its_summary_and_exits(cli_server: ServerProcess) -> None:
    fleet = create_fleet(cli_server)
    agent = fleet.add_instance()
    deployment_id = _deploy(fleet)
    FleetRun(cli_server, deployment_id, [agent], fail={agent.name: "AfterInstall"}).start().join()

    started = time.monotonic()
    result = opendeploy(cli_server, "watch", deployment_id)

    assert result.returncode == 3, result.stderr
    assert time.monotonic() - started < 30
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Deployment {deployment_id} Failed after ")
    assert not [line for line in lines if line.startswith(f"{agent.name}: ")]  # no progress lines
    assert _summary_rows(result.stdout, {agent.name}) == {agent.name: "Failed ++++x--"}
    assert f"{agent.name} failed at AfterInstall: ScriptFailed" in lines
    assert any(line.startswith("Error ") for line in lines)


def test_interrupting_a_watch_leaves_the_deployment_running(
    cli_server: ServerProcess, tmp_path: Path
) -> None:
    fleet = create_fleet(cli_server)
    agent = fleet.add_instance()  # no agent polls for it: the deployment stays in progress
    deployment_id = _deploy(fleet)
    watcher = BackgroundRun(cli_server, tmp_path, "watch", deployment_id)
    wait_for(lambda: f"{agent.name}: InProgress" in watcher.stdout(), timeout=60, message="the watch")

    watcher.process.send_signal(signal.SIGINT)

    assert watcher.wait(30) == 130
    assert f"Stopped watching; deployment {deployment_id} goes on" in watcher.stderr()
    assert "Traceback" not in watcher.stderr()
    info = cli_server.client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["status"] == "InProgress"


def test_watch_of_an_unknown_deployment_is_a_clear_error(cli_server: ServerProcess) -> None:
    result = opendeploy(cli_server, "watch", "d-NOSUCH123")

    assert result.returncode == 1
    assert "GetDeployment failed: DeploymentDoesNotExistException" in result.stderr
    assert result.stdout == ""


def test_watch_gives_up_on_a_server_it_cannot_reach(cli_server: ServerProcess) -> None:
    result = opendeploy(
        cli_server, "watch", "d-ABCDEF123", "--endpoint-url", f"http://127.0.0.1:{free_port()}",
        "--retry-for", "1", "--refresh-interval", "0.2",
    )  # fmt: skip

    assert result.returncode == 1
    assert "cannot reach the server" in result.stderr and "retrying" in result.stderr
    assert "gave up after 1s without an answer" in result.stderr


def test_following_carries_on_across_a_server_restart(server_factory: Any, tmp_path: Path) -> None:
    server: ServerProcess = server_factory("sqlite", extra_args=FAST_ENGINE)
    fleet = create_fleet(server)
    agent: Agent = fleet.add_instance()
    deployment_id = _deploy(fleet)
    run = FleetRun(server, deployment_id, [agent], hold={agent.name: "BeforeInstall"}).start()
    watcher = BackgroundRun(server, tmp_path, "watch", deployment_id)
    wait_for(lambda: run.holding[agent.name].is_set(), timeout=60, message="the held event")
    wait_for(lambda: f"{agent.name}: BeforeInstall InProgress" in watcher.stdout(), timeout=30)

    server.restart(kill=True)
    run.release(agent.name)
    run.join()

    assert watcher.wait(120) == 0, watcher.stderr()
    assert f"{deployment_id}: cannot reach the server" in watcher.stderr(), watcher.stderr()
    assert f"{deployment_id}: the server answers again" in watcher.stderr()
    assert f"{agent.name}: ValidateService Succeeded" in watcher.stdout()
    assert f"Deployment {deployment_id} Succeeded" in watcher.stdout()
