"""Alarms watch a deployment for its whole life, on the engine's virtual clock with the in-memory alarm
source: an alarm going off stops the deployment at the next event boundary (ALARM_ACTIVE, the alarm
named) and rolls it back with DEPLOYMENT_STOP_ON_ALARM; with no event ending it is still caught by the
poll; ``ignorePollAlarmFailure`` both ways; ``enabled: false`` keeps alarms but ignores them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from opendeploy.domain.alarm_checks import AlarmState
from opendeploy.integrations.alarms import FakeAlarmSource
from opendeploy.settings import AlarmSettings
from opendeploy.store.models import Deployment, DeploymentGroup
from support.engine_harness import EngineHarness, FakeAgent

HOSTS = ["host-1", "host-2", "host-3"]
POLL = 30.0


@pytest.fixture
def alarms() -> FakeAlarmSource:
    source = FakeAlarmSource()
    source.set("api-5xx", AlarmState.OK)
    source.set("latency", AlarmState.OK)
    return source


@pytest.fixture
def harness(tmp_path: Path, alarms: FakeAlarmSource) -> Iterator[EngineHarness]:
    harness = EngineHarness.on_sqlite(tmp_path, alarms=AlarmSettings(poll_interval=POLL, source=alarms))
    yield harness
    harness.close()


def fleet(harness: EngineHarness, **alarm_configuration: Any) -> tuple[str, list[FakeAgent]]:
    configuration = {"enabled": True, "alarms": [{"name": "api-5xx"}, {"name": "latency"}]}
    configuration.update(alarm_configuration)
    return harness.fleet(
        HOSTS,
        "CodeDeployDefault.OneAtATime",
        alarm_configuration=configuration,
        auto_rollback_configuration={"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]},
    )


def deploy(harness: EngineHarness, group_id: str) -> str:
    with harness.database.transaction(write=False) as session:
        group = session.get(DeploymentGroup, group_id)
        assert group is not None
        rollback = group.auto_rollback_configuration
    return harness.deploy(group_id, auto_rollback_configuration=rollback)


def first_event_done(harness: EngineHarness, agent: FakeAgent) -> None:
    """The agent runs one event; the engine acts at once and again a moment later (the boundary check)."""
    agent.run_events(1)
    harness.run()
    harness.advance(1.0)


def run_to_end(harness: EngineHarness, agents: list[FakeAgent]) -> None:
    """Agents answer every command at once and time passes, until nothing moves."""
    for _ in range(100):
        moved = 0
        for agent in agents:
            while (command := agent.poll()) is not None:
                assert agent.acknowledge(command) == "InProgress"
                assert agent.complete(command)
                moved += 1
        harness.advance(POLL)
        if not moved:
            return


def rollbacks(harness: EngineHarness, deployment_id: str) -> list[Deployment]:
    with harness.database.transaction(write=False) as session:
        return list(
            session.scalars(
                select(Deployment)
                .where(Deployment.creator == "codeDeployRollback")
                .order_by(Deployment.create_time)
            )
        )


def test_an_alarm_going_off_stops_the_deployment_at_the_next_event_boundary_and_rolls_it_back(
    harness: EngineHarness, alarms: FakeAlarmSource
) -> None:
    group_id, agents = fleet(harness)
    good = deploy(harness, group_id)
    run_to_end(harness, agents)
    assert harness.deployment(good)["status"] == "Succeeded"
    deployment_id = deploy(harness, group_id)
    first_event_done(harness, agents[0])
    assert harness.deployment(deployment_id)["status"] == "InProgress"

    alarms.set("latency", AlarmState.ALARM)
    first_event_done(harness, agents[0])  # the boundary: read within a second, not after 30 s

    info = harness.deployment(deployment_id)
    assert info["status"] == "Stopped"
    assert info["errorInformation"] == {
        "code": "ALARM_ACTIVE",
        "message": "One or more alarms have been activated according to the Amazon CloudWatch metrics you "
        "selected, and the affected deployments have been stopped. Activated alarms: <latency>",
    }
    assert info["rollbackInfo"]["rollbackDeploymentId"] == rollbacks(harness, deployment_id)[0].id


def test_the_poll_catches_an_alarm_while_no_event_ends(
    harness: EngineHarness, alarms: FakeAlarmSource
) -> None:
    group_id, agents = fleet(harness)
    deployment_id = deploy(harness, group_id)
    agents[0].start()  # ApplicationStop runs and runs
    harness.advance(10.0)
    alarms.set("api-5xx", AlarmState.ALARM)
    harness.advance(POLL - 10.0 - 0.5)
    assert harness.deployment(deployment_id)["status"] == "InProgress"  # not read since the start
    harness.advance(0.5)  # 30 s after the last read
    # Stopping: the agent's running event drains first, as for StopDeployment.
    assert agents[0].complete(agents[0].running)
    harness.run()
    info = harness.deployment(deployment_id)
    assert info["status"] == "Stopped" and info["errorInformation"]["code"] == "ALARM_ACTIVE"
    assert "<api-5xx>" in info["errorInformation"]["message"]


@pytest.mark.parametrize("ignore", [False, True])
def test_alarms_that_cannot_be_read_stop_the_deployment_unless_told_to_ignore_it(
    harness: EngineHarness, alarms: FakeAlarmSource, ignore: bool
) -> None:
    group_id, agents = fleet(harness, ignorePollAlarmFailure=ignore)
    deployment_id = deploy(harness, group_id)
    alarms.fail("CloudWatch could not be reached")
    first_event_done(harness, agents[0])
    info = harness.deployment(deployment_id)
    if ignore:
        assert info["status"] == "InProgress"
        assert any("CloudWatch could not be reached" in line for line in info["deploymentStatusMessages"])
    else:
        assert info["status"] == "Stopped" and info["errorInformation"]["code"] == "ALARM_ACTIVE"
        assert "CloudWatch could not be reached" in info["errorInformation"]["message"]


def test_a_missing_alarm_is_unreadable_not_quiet(harness: EngineHarness, alarms: FakeAlarmSource) -> None:
    group_id, _ = fleet(harness)
    alarms.delete("latency")
    deployment_id = deploy(harness, group_id)
    info = harness.deployment(deployment_id)
    assert info["status"] == "Stopped" and "<latency>" in info["errorInformation"]["message"]


def test_disabled_alarms_are_kept_but_ignored(harness: EngineHarness, alarms: FakeAlarmSource) -> None:
    group_id, agents = fleet(harness, enabled=False)
    deployment_id = deploy(harness, group_id)
    alarms.set("api-5xx", AlarmState.ALARM)
    run_to_end(harness, agents)
    assert harness.deployment(deployment_id)["status"] == "Succeeded"
