"""In-place deployments with traffic control on the engine's virtual clock, against the in-memory load
balancer (``integrations.traffic.FakeLoadBalancer``): the guide's event order with BlockTraffic and
AllowTraffic run by the server, a drained instance leaving at once and a busy one when its connections end
or the drain limit passes, the 1-hour health wait failing an instance, a restart in the middle of
BlockTraffic, a stop during AllowTraffic and during BlockTraffic, and a load balancer that cannot be used
failing the deployment before any instance is touched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from opendeploy.domain.deployment_style import LoadBalancerInfo
from opendeploy.engine.stop import request_stop
from opendeploy.integrations.traffic import (
    FakeLoadBalancer,
    LoadBalancer,
    TargetObservation,
    TargetState,
    TrafficMisconfigured,
)
from opendeploy.settings import TrafficSettings
from opendeploy.store.models import Deployment, DeploymentGroup
from support.engine_harness import EngineHarness, FakeAgent

HOSTS = ["host-1", "host-2"]
WITH_TRAFFIC_CONTROL = {"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"}
BACKEND = {"targetGroupInfoList": [{"name": "haproxy:web"}]}
EVENTS = [
    "BeforeBlockTraffic",
    "BlockTraffic",
    "AfterBlockTraffic",
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
]
SERVER_RUN = {"BlockTraffic", "AllowTraffic"}


class Balancers:
    """What the engine gets for a loadBalancerInfo: the fake backend (or an error)."""

    def __init__(self) -> None:
        self.web = FakeLoadBalancer("haproxy:web", drain_limit=300.0, healthy_expected=0.3)
        for host in HOSTS:
            self.web.add_target(host)
        self.refusal: Exception | None = None

    def __call__(self, info: LoadBalancerInfo, settings: TrafficSettings) -> dict[str, LoadBalancer]:
        if self.refusal is not None:
            raise self.refusal
        assert info.target_group_names == ("haproxy:web",)
        return {"haproxy:web": self.web}


@pytest.fixture
def balancers() -> Balancers:
    return Balancers()


@pytest.fixture
def harness(tmp_path: Path, balancers: Balancers) -> Iterator[EngineHarness]:
    harness = EngineHarness.on_sqlite(
        tmp_path,
        traffic=TrafficSettings(
            poll_interval=1.0, hold_interval=1.0, health_wait=3600.0, load_balancers=balancers
        ),
    )
    yield harness
    harness.close()


def fleet(
    harness: EngineHarness, config: str = "CodeDeployDefault.OneAtATime"
) -> tuple[str, list[FakeAgent]]:
    group_id, agents = harness.fleet(HOSTS, config)
    with harness.database.transaction() as session:
        session.execute(
            update(DeploymentGroup)
            .where(DeploymentGroup.id == group_id)
            .values(deployment_style=WITH_TRAFFIC_CONTROL, load_balancer_info=BACKEND)
        )
    return group_id, agents


def deploy(harness: EngineHarness, group_id: str) -> str:
    return harness.deploy(group_id, load_balancer_info=BACKEND)


def current(harness: EngineHarness, deployment_id: str, host: str) -> str | None:
    """The instance's event now running, if any."""
    return next(
        (name for name, status in harness.events(deployment_id, host) if status == "InProgress"), None
    )


def run_agent_events(agent: FakeAgent) -> int:
    """Answer every command the agent has now (Succeeded); how many."""
    count = 0
    while (command := agent.poll()) is not None:
        assert agent.acknowledge(command) == "InProgress"
        assert agent.complete(command)
        count += 1
    return count


def settle(harness: EngineHarness, agents: list[FakeAgent]) -> None:
    """Agents answer and the engine acts, at the current virtual time, until nothing moves."""
    for _ in range(200):
        moved = sum(run_agent_events(agent) for agent in agents)
        moved += harness.run()
        if not moved:
            return
    raise AssertionError("the deployment kept moving without settling")


def test_the_guides_event_order_with_traffic_steps_run_by_the_server(
    harness: EngineHarness, balancers: Balancers
) -> None:
    group_id, agents = fleet(harness)
    deployment_id = deploy(harness, group_id)
    assert harness.deployment(deployment_id)["deploymentStatusMessages"] == [
        "Traffic control through haproxy:web: BlockTraffic takes at most 300 s per instance and ends as soon "
        "as its connections have (AWS always waits for the deregistration delay, 300 s by default); "
        "AllowTraffic about 0.3 s (healthy threshold × check interval + one interval)."
    ]
    settle(harness, agents)

    info = harness.deployment(deployment_id)
    assert info["status"] == "Succeeded", info
    for host in HOSTS:
        assert harness.events(deployment_id, host) == [(name, "Succeeded") for name in EVENTS]
    # Each instance left the load balancer once drained and came back once healthy, one at a time.
    assert balancers.web.calls == [
        ("block", "host-1"),
        ("finish_block", "host-1"),
        ("allow", "host-1"),
        ("block", "host-2"),
        ("finish_block", "host-2"),
        ("allow", "host-2"),
    ]
    assert balancers.web.observe(HOSTS) == dict.fromkeys(HOSTS, TargetObservation(TargetState.IN_SERVICE))
    # Agents ran only the events that are theirs.
    agent_events = {event for event in EVENTS if event not in SERVER_RUN}
    assert len(agent_events) == 11


def test_a_busy_instance_leaves_when_its_connections_end_or_the_drain_limit_passes(
    harness: EngineHarness, balancers: Balancers
) -> None:
    balancers.web.add_target("host-1", connections=2)
    balancers.web.add_target("host-2", connections=2)
    group_id, agents = fleet(harness)
    deployment_id = deploy(harness, group_id)
    settle(harness, agents)
    assert current(harness, deployment_id, "host-1") == "BlockTraffic"
    assert balancers.web.observe(["host-1"])["host-1"] == TargetObservation(TargetState.DRAINING, 2)

    harness.advance(42.0)
    assert current(harness, deployment_id, "host-1") == "BlockTraffic"
    balancers.web.end_connections("host-1")
    harness.advance(1.0)  # the next look finds it drained
    settle(harness, agents)
    block = harness.instance(deployment_id, "host-1")["lifecycleEvents"][1]
    assert block["status"] == "Succeeded"
    assert block["endTime"] - block["startTime"] == pytest.approx(43.0)

    # host-2's connections never end: it is taken out once the drain limit (300 s) has passed.
    assert current(harness, deployment_id, "host-2") == "BlockTraffic"
    for _ in range(300):
        harness.advance(1.0)
        if current(harness, deployment_id, "host-2") != "BlockTraffic":
            break
    settle(harness, agents)
    block = harness.instance(deployment_id, "host-2")["lifecycleEvents"][1]
    assert block["status"] == "Succeeded"
    assert block["endTime"] - block["startTime"] == pytest.approx(300.0)
    assert harness.deployment(deployment_id)["status"] == "Succeeded"


def test_an_haproxy_reload_during_the_install_does_not_put_the_instance_back(
    harness: EngineHarness, balancers: Balancers
) -> None:
    group_id, agents = fleet(harness)
    deployment_id = deploy(harness, group_id)
    agent = agents[0]
    assert agent.run_events(1) == ["BeforeBlockTraffic"]
    harness.run()  # BlockTraffic
    assert agent.run_events(2) == ["AfterBlockTraffic", "ApplicationStop"]
    command = agent.start()  # DownloadBundle, running
    balancers.web.add_target("host-1")  # a reload: HAProxy forgot the maintenance
    harness.advance(1.0)
    assert balancers.web.observe(["host-1"])["host-1"].state is TargetState.OUT_OF_SERVICE
    assert balancers.web.calls[-2:] == [("block", "host-1"), ("finish_block", "host-1")]
    assert agent.complete(command)
    settle(harness, agents)
    assert harness.deployment(deployment_id)["status"] == "Succeeded"


def test_a_reload_during_block_traffic_is_drained_again(harness: EngineHarness, balancers: Balancers) -> None:
    balancers.web.add_target("host-1", connections=1)
    group_id, agents = fleet(harness)
    deployment_id = deploy(harness, group_id)
    settle(harness, agents)
    assert current(harness, deployment_id, "host-1") == "BlockTraffic"
    balancers.web.add_target("host-1", connections=1)  # a reload: back in rotation, still busy
    harness.advance(1.0)
    assert balancers.web.observe(["host-1"])["host-1"] == TargetObservation(TargetState.DRAINING, 1)
    assert balancers.web.calls.count(("block", "host-1")) == 2


def test_an_instance_not_healthy_within_the_hour_fails(harness: EngineHarness, balancers: Balancers) -> None:
    balancers.web.never_healthy("host-1")
    group_id, agents = fleet(harness)
    deployment_id = deploy(harness, group_id)
    settle(harness, agents)
    assert current(harness, deployment_id, "host-1") == "AllowTraffic"

    harness.advance(3599.0)
    assert current(harness, deployment_id, "host-1") == "AllowTraffic"
    harness.advance(1.0)
    settle(harness, agents)

    allow = harness.instance(deployment_id, "host-1")["lifecycleEvents"][11]
    assert allow["lifecycleEventName"] == "AllowTraffic" and allow["status"] == "Failed"
    assert allow["diagnostics"]["message"] == (
        "host-1 did not become healthy behind its load balancers within 3600 seconds (haproxy:web: unhealthy)"
    )
    assert harness.events(deployment_id, "host-1")[-1] == ("AfterAllowTraffic", "Skipped")
    # OneAtATime: the first instance failing fails the deployment; host-2 was never taken out.
    info = harness.deployment(deployment_id)
    assert info["status"] == "Failed" and info["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"
    assert ("block", "host-2") not in balancers.web.calls


def test_a_restart_in_the_middle_of_block_traffic_resumes_it(
    harness: EngineHarness, balancers: Balancers
) -> None:
    balancers.web.add_target("host-1", connections=1)
    group_id, agents = fleet(harness)
    deployment_id = deploy(harness, group_id)
    settle(harness, agents)
    assert current(harness, deployment_id, "host-1") == "BlockTraffic"
    harness.advance(5.0)

    restarted = EngineHarness(harness.database, harness.settings, harness.clock)  # a new server process
    balancers.web.end_connections("host-1")
    restarted.advance(1.0)
    settle(restarted, agents)
    assert restarted.deployment(deployment_id)["status"] == "Succeeded"
    assert balancers.web.calls.count(("block", "host-1")) == 1  # not begun again


def test_a_stop_during_allow_traffic_ends_it_at_once(harness: EngineHarness, balancers: Balancers) -> None:
    balancers.web.never_healthy("host-1")
    group_id, agents = fleet(harness)
    deployment_id = deploy(harness, group_id)
    settle(harness, agents)
    harness.advance(60.0)
    assert current(harness, deployment_id, "host-1") == "AllowTraffic"

    assert stop(harness, deployment_id)  # Stopped in the same transaction: nothing else runs
    info = harness.deployment(deployment_id)
    assert info["status"] == "Stopped" and info["errorInformation"]["code"] == "MANUAL_STOP"
    allow = harness.instance(deployment_id, "host-1")["lifecycleEvents"][11]
    assert allow["status"] == "Failed"
    assert allow["diagnostics"]["message"] == "The deployment was stopped during AllowTraffic."
    assert harness.instance(deployment_id, "host-2")["status"] == "Skipped"
    assert ("block", "host-2") not in balancers.web.calls


def test_a_stop_during_block_traffic_gives_the_instance_back(
    harness: EngineHarness, balancers: Balancers
) -> None:
    balancers.web.add_target("host-1", connections=1)
    group_id, agents = fleet(harness)
    deployment_id = deploy(harness, group_id)
    settle(harness, agents)
    assert current(harness, deployment_id, "host-1") == "BlockTraffic"

    assert stop(harness, deployment_id)
    assert harness.deployment(deployment_id)["status"] == "Stopped"
    assert harness.events(deployment_id, "host-1")[1:3] == [
        ("BlockTraffic", "Failed"),
        ("AfterBlockTraffic", "Skipped"),
    ]
    # It was draining and nothing of the new revision ran on it: back in service.
    assert balancers.web.calls[-1] == ("allow", "host-1")
    assert balancers.web.observe(["host-1"])["host-1"].state is TargetState.IN_SERVICE


def test_a_stop_after_block_traffic_gives_the_instance_back_to_its_load_balancer(
    harness: EngineHarness, balancers: Balancers
) -> None:
    group_id, agents = fleet(harness)
    deployment_id = deploy(harness, group_id)
    agent = agents[0]
    assert agent.run_events(1) == ["BeforeBlockTraffic"]
    harness.run()  # the server runs BlockTraffic
    assert agent.run_events(1) == ["AfterBlockTraffic"]
    command = agent.start()  # ApplicationStop, running on the agent
    assert command.command_name == "ApplicationStop"
    assert balancers.web.observe(["host-1"])["host-1"].state is TargetState.OUT_OF_SERVICE

    assert not stop(harness, deployment_id)  # the agent's event drains first
    assert agent.complete(command)
    harness.run()
    assert harness.deployment(deployment_id)["status"] == "Stopped"
    assert balancers.web.calls[-1] == ("allow", "host-1")
    assert balancers.web.observe(["host-1"])["host-1"].state is TargetState.IN_SERVICE


def test_a_load_balancer_that_cannot_be_used_fails_the_deployment_before_any_instance(
    harness: EngineHarness, balancers: Balancers
) -> None:
    balancers.refusal = TrafficMisconfigured(
        "HAProxy at unix:/run/haproxy.sock has no backend 'web' (backends: api)"
    )
    group_id, agents = fleet(harness)
    deployment_id = deploy(harness, group_id)
    info = harness.deployment(deployment_id)
    assert info["status"] == "Failed"
    assert info["errorInformation"] == {
        "code": "ELASTIC_LOAD_BALANCING_INVALID",
        "message": "HAProxy at unix:/run/haproxy.sock has no backend 'web' (backends: api)",
    }
    assert all(agent.poll() is None for agent in agents)


def stop(harness: EngineHarness, deployment_id: str) -> bool:
    """StopDeployment as the API does it; True if the deployment is Stopped at once."""
    with harness.database.transaction() as session:
        deployment = session.get(Deployment, deployment_id, with_for_update=True)
        assert deployment is not None
        return request_stop(session, deployment, None, harness.now, harness.settings)
