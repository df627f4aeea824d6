"""Deadlines on the virtual clock, at the guide's own lengths: an event nobody picks up within 5 minutes,
and one that runs past its hour, fail the instance — no hang (troubleshooting L27516–27529). The engine
runs in process (``support.engine_harness``); minutes and hours pass in milliseconds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.engine_harness import EngineHarness


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[EngineHarness]:
    harness = EngineHarness.on_sqlite(tmp_path)
    yield harness
    harness.close()


def test_the_event_start_deadline_of_five_minutes_fires_on_the_virtual_clock(harness: EngineHarness) -> None:
    assert harness.settings.engine.event_start_timeout == 300.0  # the guide's 5 minutes
    group, _ = harness.fleet(["silent"])
    deployment_id = harness.deploy(group)
    harness.advance(299.0)
    assert harness.deployment(deployment_id)["status"] == "InProgress"
    assert harness.instance(deployment_id, "silent")["lifecycleEvents"][0]["status"] == "Pending"
    harness.advance(1.0)  # the timer fires
    harness.run()  # … and the engine ends the deployment
    assert harness.deployment(deployment_id)["status"] == "Failed"


def test_an_event_no_agent_picks_up_fails_the_instance(harness: EngineHarness) -> None:
    group, [silent] = harness.fleet(["silent"])  # registered, but its agent never polls
    deployment_id = harness.deploy(group)
    harness.advance(300.0)
    harness.run()
    info = harness.deployment(deployment_id)
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "AGENT_ISSUE"
    assert "problem with the CodeDeploy agent" in info["errorInformation"]["message"]
    instance = harness.instance(deployment_id, "silent")
    assert instance["status"] == "Failed"
    events = instance["lifecycleEvents"]
    assert [e["status"] for e in events] == ["Failed"] + ["Skipped"] * 6
    assert events[0]["diagnostics"]["errorCode"] == "UnknownError"
    assert (
        "did not pick up the ApplicationStop lifecycle event within 300 seconds"
        in events[0]["diagnostics"]["message"]
    )
    # An agent that turns up late gets nothing to do.
    assert silent.poll() is None


def test_an_event_that_runs_too_long_fails_and_a_late_completion_is_ignored(harness: EngineHarness) -> None:
    group, [agent] = harness.fleet(["slow"])
    deployment_id = harness.deploy(group)
    command = agent.start()
    harness.advance(3599.0)
    assert harness.instance(deployment_id, "slow")["lifecycleEvents"][0]["status"] == "InProgress"
    harness.advance(1.0)  # an hour: the run deadline (no script timeouts known)
    harness.run()
    info = harness.deployment(deployment_id)
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "TIMEOUT"
    event = harness.instance(deployment_id, "slow")["lifecycleEvents"][0]
    assert event["status"] == "Failed"
    # The run deadline counts from the hand-out, when the event started.
    assert event["endTime"] - event["startTime"] >= 3600.0
    assert "did not complete within 3600 seconds" in event["diagnostics"]["message"]
    assert not agent.complete(command)  # too late: accepted, changes nothing
    assert harness.instance(deployment_id, "slow")["lifecycleEvents"][0]["status"] == "Failed"
    assert agent.acknowledge(command) == "Failed"  # an agent asking again is told not to run it


def test_an_estimated_completion_time_extends_the_deadline(harness: EngineHarness) -> None:
    group, [agent] = harness.fleet(["busy"])
    deployment_id = harness.deploy(group)
    command = agent.start()
    agent.update(command, harness.now + 2 * 3600.0)  # two hours, where an hour is allowed
    harness.advance(2 * 3600.0 + 59.0)  # still within the estimate plus the 60 s grace
    assert harness.instance(deployment_id, "busy")["lifecycleEvents"][0]["status"] == "InProgress"
    assert agent.complete(command)
    following = agent.poll()
    assert following is not None and following.command_name == "DownloadBundle"
