"""Blue/green deployments of server fleets on the engine's virtual clock, against the in-memory load
balancer (``integrations.traffic.FakeLoadBalancer``): the guide's order (install on the replacement
environment, reroute, take the originals out), the wait for ContinueDeployment and the same wait running
out, the termination wait, a stop in the middle of the reroute giving the traffic back, and the rollback
of a failed deployment rerouting back to its original instances."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from opendeploy.domain.alarm_checks import AlarmState
from opendeploy.domain.deployment_style import LoadBalancerInfo
from opendeploy.engine import notifying
from opendeploy.engine.stop import continue_deployment, request_stop
from opendeploy.integrations.alarms import FakeAlarmSource
from opendeploy.integrations.traffic import FakeLoadBalancer, LoadBalancer, TargetObservation, TargetState
from opendeploy.settings import AlarmSettings, TrafficSettings
from opendeploy.store.models import (
    Deployment,
    DeploymentConfigRecord,
    DeploymentGroup,
    OnPremisesInstance,
    OnPremisesInstanceTag,
    OutboxNotification,
)
from support.engine_harness import EngineHarness, FakeAgent

BLUE = ["blue-1", "blue-2"]
GREEN = ["green-1", "green-2"]
BACKEND = {"targetGroupInfoList": [{"name": "haproxy:web"}]}
BLUE_GREEN = {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}
KEEP_ALIVE = {"terminateBlueInstancesOnDeploymentSuccess": {"action": "KEEP_ALIVE"}}
REPLACEMENT_EVENTS = [
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
ORIGINAL_EVENTS = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
IN_SERVICE = TargetObservation(TargetState.IN_SERVICE)
OUT = TargetObservation(TargetState.OUT_OF_SERVICE)


class Balancers:
    """What the engine gets for a loadBalancerInfo: one fake backend, ``serving`` in service at first
    (the blue hosts unless told otherwise)."""

    def __init__(self, serving: Iterable[str] = tuple(BLUE)) -> None:
        self.web = FakeLoadBalancer("haproxy:web", drain_limit=300.0, healthy_expected=0.3)
        for host in serving:
            self.web.add_target(host)

    def __call__(self, info: LoadBalancerInfo, settings: TrafficSettings) -> dict[str, LoadBalancer]:
        return {"haproxy:web": self.web}

    def serving(self, hosts: Iterable[str] | None = None) -> set[str]:
        """Which of ``hosts`` (by default every target the backend has seen) are in service."""
        names = list(hosts) if hosts is not None else list(self.web.targets)
        observed = self.web.observe(names)
        return {host for host, seen in observed.items() if seen.state is TargetState.IN_SERVICE}


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
    harness: EngineHarness, options: dict[str, Any], config: str = "CodeDeployDefault.OneAtATime"
) -> tuple[str, dict[str, FakeAgent]]:
    """A blue/green group selecting the four hosts; the green ones also carry ``env=green``, the blue
    ones ``env=blue``."""
    group_id, agents = harness.fleet(
        BLUE + GREEN,
        config,
        load_balancer_info=BACKEND,
        blue_green_deployment_configuration=options,
    )
    with harness.database.transaction() as session:
        session.get(DeploymentGroup, group_id).deployment_style = BLUE_GREEN
        for host in BLUE + GREEN:
            session.add(OnPremisesInstanceTag(instance_name=host, key="env", value=host.split("-")[0]))
    return group_id, {agent.name: agent for agent in agents}


def deploy(
    harness: EngineHarness, group_id: str, env: str = "green", options: dict[str, Any] | None = None
) -> str:
    with harness.database.transaction(write=False) as session:
        group = session.get(DeploymentGroup, group_id)
        options = options if options is not None else group.blue_green_deployment_configuration
    return harness.deploy(
        group_id,
        load_balancer_info=BACKEND,
        blue_green_deployment_configuration=options,
        target_instances={"tagFilters": [{"Key": "env", "Value": env, "Type": "KEY_AND_VALUE"}]},
    )


def settle(
    harness: EngineHarness, agents: dict[str, FakeAgent], failing: tuple[str, str] | None = None
) -> None:
    """Agents answer (``failing``: that host's event fails) and the engine acts, until nothing moves."""
    for _ in range(200):
        moved = 0
        for agent in agents.values():
            while (command := agent.poll()) is not None:
                assert agent.acknowledge(command) == "InProgress"
                status = "Failed" if failing == (agent.name, command.command_name) else "Succeeded"
                agent.complete(command, status)
                moved += 1
        moved += harness.run()
        if not moved:
            return
    raise AssertionError("the deployment kept moving without settling")


def statuses(harness: EngineHarness, deployment_id: str, hosts: list[str]) -> dict[str, str]:
    return {host: harness.instance(deployment_id, host)["status"] for host in hosts}


def with_deployment(harness: EngineHarness, deployment_id: str, action: Any) -> None:
    with harness.database.transaction() as session:
        deployment = session.get(Deployment, deployment_id)
        action(session, deployment)


def test_replacements_install_then_take_the_traffic_and_the_originals_leave(
    harness: EngineHarness, balancers: Balancers
) -> None:
    group_id, agents = fleet(harness, KEEP_ALIVE)
    deployment_id = deploy(harness, group_id)
    settle(harness, agents)

    info = harness.deployment(deployment_id)
    assert info["status"] == "Succeeded", info
    for host in GREEN:
        assert harness.events(deployment_id, host) == [(name, "Succeeded") for name in REPLACEMENT_EVENTS]
        assert harness.instance(deployment_id, host)["instanceLabel"] == "Green"
    for host in BLUE:
        assert harness.events(deployment_id, host) == [(name, "Succeeded") for name in ORIGINAL_EVENTS]
        assert harness.instance(deployment_id, host)["instanceLabel"] == "Blue"
    # OneAtATime registers one replacement at a time; the originals then leave together (guide L15587).
    calls = balancers.web.calls
    assert calls[:2] == [("allow", "green-1"), ("allow", "green-2")]
    assert sorted(calls[2:]) == [
        ("block", "blue-1"),
        ("block", "blue-2"),
        ("finish_block", "blue-1"),
        ("finish_block", "blue-2"),
    ]
    assert balancers.serving() == set(GREEN)


def test_no_replacement_instance_is_touched_by_traffic_until_every_one_is_ready(
    harness: EngineHarness, balancers: Balancers
) -> None:
    group_id, agents = fleet(harness, KEEP_ALIVE, config="CodeDeployDefault.AllAtOnce")
    deployment_id = deploy(harness, group_id)
    assert agents["green-1"].run_events(7)[-1] == "ValidateService"
    harness.run()
    assert statuses(harness, deployment_id, GREEN) == {"green-1": "Ready", "green-2": "InProgress"}
    assert balancers.web.calls == []
    assert agents["green-2"].run_events(7)[-1] == "ValidateService"
    harness.run()
    assert statuses(harness, deployment_id, GREEN) == dict.fromkeys(GREEN, "InProgress")
    assert agents["green-1"].run_events(1) == ["BeforeAllowTraffic"]
    harness.run()
    assert balancers.web.calls == [("allow", "green-1")]
    settle(harness, agents)
    assert harness.deployment(deployment_id)["status"] == "Succeeded"


def test_a_ready_wait_holds_the_traffic_until_continue_deployment(
    harness: EngineHarness, balancers: Balancers
) -> None:
    options = {
        **KEEP_ALIVE,
        "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60},
    }
    group_id, agents = fleet(harness, options)
    deployment_id = deploy(harness, group_id)
    settle(harness, agents)
    assert harness.deployment(deployment_id)["status"] == "Ready"
    assert statuses(harness, deployment_id, GREEN) == dict.fromkeys(GREEN, "Ready")
    assert balancers.web.calls == []

    harness.advance(59 * 60.0)  # still within the wait: nothing moves
    assert harness.deployment(deployment_id)["status"] == "Ready"
    with_deployment(harness, deployment_id, lambda s, d: continue_deployment(s, d, "READY_WAIT", harness.now))
    settle(harness, agents)
    assert harness.deployment(deployment_id)["status"] == "Succeeded"
    assert balancers.serving() == set(GREEN)


def test_a_ready_wait_that_runs_out_stops_the_deployment_with_traffic_untouched(
    harness: EngineHarness, balancers: Balancers
) -> None:
    options = {
        **KEEP_ALIVE,
        "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60},
    }
    group_id, agents = fleet(harness, options)
    deployment_id = deploy(harness, group_id)
    settle(harness, agents)
    harness.advance(60 * 60.0)

    info = harness.deployment(deployment_id)
    assert info["status"] == "Stopped", info
    assert "within the wait time (60 minutes" in info["deploymentStatusMessages"][-1]
    assert balancers.web.calls == []
    assert balancers.serving() == set(BLUE)
    assert harness.events(deployment_id, "green-1")[-3:] == [
        ("BeforeAllowTraffic", "Skipped"),
        ("AllowTraffic", "Skipped"),
        ("AfterAllowTraffic", "Skipped"),
    ]


def test_original_instances_are_terminated_after_the_termination_wait(
    harness: EngineHarness, balancers: Balancers
) -> None:
    options = {
        "terminateBlueInstancesOnDeploymentSuccess": {
            "action": "TERMINATE",
            "terminationWaitTimeInMinutes": 30,
        }
    }
    group_id, agents = fleet(harness, options)
    deployment_id = deploy(harness, group_id)
    settle(harness, agents)
    info = harness.deployment(deployment_id)
    assert info["status"] == "InProgress"
    assert info["instanceTerminationWaitTimeStarted"] is True

    harness.advance(29 * 60.0)
    assert harness.deployment(deployment_id)["status"] == "InProgress"
    harness.advance(60.0)
    info = harness.deployment(deployment_id)
    assert info["status"] == "Succeeded", info
    assert "terminated (deregistered): blue-1, blue-2" in info["deploymentStatusMessages"][-1]
    with harness.database.transaction(write=False) as session:
        gone = {
            instance.name: instance.deregister_time is not None
            for instance in session.scalars(select(OnPremisesInstance))
        }
    assert gone == {"blue-1": True, "blue-2": True, "green-1": False, "green-2": False}


def test_continue_deployment_skips_the_termination_wait(harness: EngineHarness) -> None:
    options = {
        "terminateBlueInstancesOnDeploymentSuccess": {
            "action": "TERMINATE",
            "terminationWaitTimeInMinutes": 600,
        }
    }
    group_id, agents = fleet(harness, options)
    deployment_id = deploy(harness, group_id)
    settle(harness, agents)
    assert harness.deployment(deployment_id)["status"] == "InProgress"
    with_deployment(
        harness, deployment_id, lambda s, d: continue_deployment(s, d, "TERMINATION_WAIT", harness.now)
    )
    harness.run()
    assert harness.deployment(deployment_id)["status"] == "Succeeded"


def test_a_stop_during_the_reroute_gives_the_traffic_back_to_the_originals(
    harness: EngineHarness, balancers: Balancers
) -> None:
    group_id, agents = fleet(harness, KEEP_ALIVE)
    deployment_id = deploy(harness, group_id)
    settle(harness, agents)
    assert harness.deployment(deployment_id)["status"] == "Succeeded"

    # A second deployment back to the blue hosts, stopped while blue-2 is still to be let in.
    deployment_id = deploy(harness, group_id, env="blue")
    held = None
    for _ in range(20):
        for agent in agents.values():
            while (command := agent.poll()) is not None:
                agent.acknowledge(command)
                if (agent.name, command.command_name) == ("blue-1", "AfterAllowTraffic"):
                    held = command
                else:
                    agent.complete(command)
        harness.run()
    assert held is not None
    assert harness.instance(deployment_id, "blue-1")["status"] == "InProgress"
    assert ("allow", "blue-1") in balancers.web.calls
    with_deployment(
        harness, deployment_id, lambda s, d: request_stop(s, d, None, harness.now, harness.settings)
    )
    assert harness.deployment(deployment_id)["status"] == "InProgress"  # blue-1's hook still runs
    agents["blue-1"].complete(held)
    settle(harness, agents)
    info = harness.deployment(deployment_id)
    assert info["status"] == "Stopped", info
    assert balancers.serving() == set(GREEN)


def test_a_failed_deployment_rolls_back_by_rerouting_to_its_original_instances(
    harness: EngineHarness, balancers: Balancers
) -> None:
    group_id, agents = fleet(harness, KEEP_ALIVE)
    first = deploy(harness, group_id)
    settle(harness, agents)
    assert harness.deployment(first)["status"] == "Succeeded"
    assert balancers.serving() == set(GREEN)

    with harness.database.transaction() as session:
        session.get(DeploymentGroup, group_id).auto_rollback_configuration = {
            "enabled": True,
            "events": ["DEPLOYMENT_FAILURE"],
        }
    second = harness.deploy(
        group_id,
        load_balancer_info=BACKEND,
        blue_green_deployment_configuration=KEEP_ALIVE,
        auto_rollback_configuration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
        target_instances={"tagFilters": [{"Key": "env", "Value": "blue", "Type": "KEY_AND_VALUE"}]},
    )
    settle(harness, agents, failing=("green-1", "AfterBlockTraffic"))

    info = harness.deployment(second)
    assert info["status"] == "Failed", info
    rollback = info["rollbackInfo"]["rollbackDeploymentId"]
    settle(harness, agents)
    rolled = harness.deployment(rollback)
    assert rolled["status"] == "Succeeded", rolled
    # The rollback installs nothing: the originals of the failed deployment take the traffic back and
    # the replacements it had let in leave.
    assert harness.events(rollback, "green-1") == [
        ("BeforeAllowTraffic", "Succeeded"),
        ("AllowTraffic", "Succeeded"),
        ("AfterAllowTraffic", "Succeeded"),
    ]
    assert harness.events(rollback, "blue-1") == [
        ("BeforeBlockTraffic", "Succeeded"),
        ("BlockTraffic", "Succeeded"),
        ("AfterBlockTraffic", "Succeeded"),
    ]
    assert balancers.serving() == set(GREEN)


# --- canary and linear shifting (beyond AWS: trafficRoutingConfig on a Server configuration) -------------


def shifting_config(harness: EngineHarness, name: str, routing: dict[str, Any]) -> str:
    with harness.database.transaction() as session:
        session.add(
            DeploymentConfigRecord(
                id=str(uuid.uuid4()),
                name=name,
                compute_platform="Server",
                minimum_healthy_hosts={"type": "HOST_COUNT", "value": 1},
                traffic_routing_config=routing,
                create_time=harness.now,
            )
        )
    return name


LINEAR_25_EVERY_10 = {
    "type": "TimeBasedLinear",
    "timeBasedLinear": {"linearPercentage": 25, "linearInterval": 10},
}
CANARY_10_FOR_15 = {
    "type": "TimeBasedCanary",
    "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 15},
}


def shares(balancers: Balancers) -> list[float]:
    """The replacement's shares the load balancer was asked for, in order (a share re-applied, as after
    a reload, counted once)."""
    asked = [percent for _, _, percent in balancers.web.shifts]
    return [share for k, share in enumerate(asked) if k == 0 or asked[k - 1] != share]


def traffic_message(harness: EngineHarness, deployment_id: str) -> str:
    messages = harness.deployment(deployment_id)["deploymentStatusMessages"]
    return next(m for m in messages if m.startswith("Traffic: "))


def test_a_linear_shift_moves_the_traffic_step_by_step_then_takes_the_originals_out(
    harness: EngineHarness, balancers: Balancers
) -> None:
    config = shifting_config(harness, "Linear25PercentEvery10Minutes", LINEAR_25_EVERY_10)
    group_id, agents = fleet(harness, KEEP_ALIVE, config=config)
    deployment_id = deploy(harness, group_id)
    settle(harness, agents)

    # Both replacements are in (health-checked) with weight 0 first, then get 25 %.
    assert shares(balancers) == [0.0, 25.0]
    assert ("allow", "green-1") in balancers.web.calls and ("allow", "green-2") in balancers.web.calls
    assert balancers.serving() == set(BLUE + GREEN)
    assert traffic_message(harness, deployment_id).startswith(
        "Traffic: 25% to the replacement instances, 75% to the original instances; step 1, the next at"
    )
    balancers.web.forget_shift()  # an HAProxy reload forgets runtime weights: they are applied again
    harness.advance(1.0)
    assert balancers.web.replacement_share == 25.0
    for minutes, share in ((10, 50.0), (20, 75.0)):
        harness.advance(10 * 60.0 - (1.0 if minutes == 10 else 0.0))
        settle(harness, agents)
        assert balancers.web.replacement_share == share, minutes
        assert harness.deployment(deployment_id)["status"] == "InProgress"
        assert not any(call == "block" for call, _ in balancers.web.calls)
    harness.advance(10 * 60.0)
    settle(harness, agents)

    info = harness.deployment(deployment_id)
    assert info["status"] == "Succeeded", info
    # 100 % before the originals were blocked; then even weights again for whatever comes next.
    assert shares(balancers)[:5] == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert balancers.web.shifts[-1][2] == 50.0  # two and two: the same weight for every instance
    assert balancers.serving() == set(GREEN)
    assert traffic_message(harness, deployment_id) == (
        "Traffic: 100% to the replacement instances, 0% to the original instances."
    )


def test_continue_deployment_promotes_a_canary_in_its_middle_step(
    harness: EngineHarness, balancers: Balancers
) -> None:
    config = shifting_config(harness, "Canary10Percent15Minutes", CANARY_10_FOR_15)
    group_id, agents = fleet(harness, KEEP_ALIVE, config=config)
    deployment_id = deploy(harness, group_id)
    settle(harness, agents)
    assert balancers.web.replacement_share == 10.0
    harness.advance(5 * 60.0)
    assert balancers.web.replacement_share == 10.0

    with_deployment(harness, deployment_id, lambda s, d: continue_deployment(s, d, "READY_WAIT", harness.now))
    settle(harness, agents)
    info = harness.deployment(deployment_id)
    assert info["status"] == "Succeeded", info
    assert shares(balancers)[:3] == [0.0, 10.0, 100.0]
    assert "promoted by ContinueDeployment" in traffic_message(harness, deployment_id)


@pytest.mark.parametrize("roll_back", [False, True])
def test_a_stop_in_the_middle_of_a_shift_gives_every_request_back_to_the_originals(
    harness: EngineHarness, balancers: Balancers, roll_back: bool
) -> None:
    config = shifting_config(harness, "Linear25PercentEvery10Minutes", LINEAR_25_EVERY_10)
    group_id, agents = fleet(harness, KEEP_ALIVE, config=config)
    first = deploy(harness, group_id, options={**KEEP_ALIVE})
    with harness.database.transaction() as session:  # the first one without steps, to have a revision
        session.get(Deployment, first).deployment_config_name = "CodeDeployDefault.AllAtOnce"
    settle(harness, agents)
    assert harness.deployment(first)["status"] == "Succeeded"
    balancers.web.shifts.clear()

    second = deploy(harness, group_id, env="blue")
    settle(harness, agents)
    harness.advance(10 * 60.0)
    assert balancers.web.replacement_share == 50.0
    with_deployment(
        harness, second, lambda s, d: request_stop(s, d, roll_back, harness.now, harness.settings)
    )
    settle(harness, agents)

    info = harness.deployment(second)
    assert info["status"] == "Stopped", info
    assert shares(balancers)[:4] == [0.0, 25.0, 50.0, 0.0]  # every new request back to the originals
    assert balancers.serving() == set(GREEN)
    rollback = info.get("rollbackInfo", {}).get("rollbackDeploymentId")
    if roll_back:
        assert rollback is not None
        assert harness.deployment(rollback)["status"] == "Succeeded"
        assert balancers.serving() == set(GREEN)
    else:
        assert rollback is None


def test_a_shift_through_a_load_balancer_without_weights_fails_before_any_instance_is_touched(
    harness: EngineHarness, balancers: Balancers
) -> None:
    balancers.web.cannot_shift()
    config = shifting_config(harness, "Canary10Percent15Minutes", CANARY_10_FOR_15)
    group_id, agents = fleet(harness, KEEP_ALIVE, config=config)
    deployment_id = deploy(harness, group_id)

    info = harness.deployment(deployment_id)
    assert info["status"] == "Failed", info
    assert info["errorInformation"]["code"] == "ELASTIC_LOAD_BALANCING_INVALID"
    assert "cannot split traffic by weight" in info["errorInformation"]["message"]
    assert all(agent.poll() is None for agent in agents.values())


def test_replacements_that_never_become_healthy_fail_the_deployment_and_leave_the_traffic_on_the_originals(
    harness: EngineHarness, balancers: Balancers
) -> None:
    for host in GREEN:
        balancers.web.add_target(host)
        balancers.web.never_healthy(host)
        balancers.web.finish_block(host)  # out, as an idle environment is
    group_id, agents = fleet(harness, KEEP_ALIVE, config="CodeDeployDefault.AllAtOnce")
    deployment_id = deploy(harness, group_id)
    settle(harness, agents)
    assert harness.events(deployment_id, "green-1")[8] == ("AllowTraffic", "InProgress")

    for _ in range(61):  # the health wait (1 hour) passes
        harness.advance(60.0)
        if harness.deployment(deployment_id)["status"] != "InProgress":
            break
    settle(harness, agents)
    info = harness.deployment(deployment_id)
    assert info["status"] == "Failed", info
    assert info["errorInformation"]["code"] == "HEALTH_CONSTRAINTS", info
    allow = harness.instance(deployment_id, "green-1")["lifecycleEvents"][8]
    assert allow["status"] == "Failed"
    assert (
        "green-1 did not become healthy behind its load balancers within 3600 seconds"
        in (allow["diagnostics"]["message"])
    )
    # The originals were never touched and serve everything; the replacements are out again.
    assert balancers.serving() == set(BLUE)
    assert not any(call == "block" and host in BLUE for call, host in balancers.web.calls)
    assert {host: seen.state for host, seen in balancers.web.observe(GREEN).items()} == dict.fromkeys(
        GREEN, TargetState.OUT_OF_SERVICE
    )


def test_the_continue_that_ends_a_ready_wait_starts_a_canary_without_promoting_it(
    harness: EngineHarness, balancers: Balancers
) -> None:
    config = shifting_config(harness, "Canary10Percent15Minutes", CANARY_10_FOR_15)
    options = {
        **KEEP_ALIVE,
        "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60},
    }
    group_id, agents = fleet(harness, options, config=config)
    deployment_id = deploy(harness, group_id)
    settle(harness, agents)
    assert harness.deployment(deployment_id)["status"] == "Ready"
    with_deployment(harness, deployment_id, lambda s, d: continue_deployment(s, d, "READY_WAIT", harness.now))
    settle(harness, agents)  # no time passes: the shift starts at the very moment of the continue
    assert balancers.web.replacement_share == 10.0
    assert harness.deployment(deployment_id)["status"] == "InProgress"
    harness.advance(15 * 60.0)
    settle(harness, agents)
    assert harness.deployment(deployment_id)["status"] == "Succeeded"
    assert shares(balancers)[:3] == [0.0, 10.0, 100.0]


def test_ready_replacements_and_a_ready_deployment_notify_their_triggers(
    harness: EngineHarness, balancers: Balancers
) -> None:
    """The guide's InstanceReady and DeploymentReady trigger events: a replacement instance waiting for
    the reroute, and a deployment whose replacement environment is installed."""
    topic = "arn:aws:sns:us-east-1:000000000000:deployments"
    notifying.install(harness.settings)
    try:
        options = {
            **KEEP_ALIVE,
            "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60},
        }
        group_id, agents = fleet(harness, options)
        triggers = [
            {
                "triggerName": "ready",
                "triggerTargetArn": topic,
                "triggerEvents": ["DeploymentReady", "InstanceReady"],
            }
        ]
        with harness.database.transaction() as session:
            session.get(DeploymentGroup, group_id).trigger_configurations = triggers
        deployment_id = deploy(harness, group_id)
        settle(harness, agents)
        assert harness.deployment(deployment_id)["status"] == "Ready"
    finally:
        notifying.install(None)
    with harness.database.transaction(write=False) as session:
        rows = [(row.event_type, json.loads(row.body)) for row in session.scalars(select(OutboxNotification))]
    assert sorted(event for event, _ in rows) == ["DeploymentReady", "InstanceReady", "InstanceReady"]
    instances = sorted(
        body["instanceId"].rsplit("/", 1)[-1] for event, body in rows if event == "InstanceReady"
    )
    assert instances == GREEN
    deployment = next(body for event, body in rows if event == "DeploymentReady")
    assert deployment["deploymentId"] == deployment_id
    assert deployment["status"] == "Ready"  # the guide's payloads carry the status as the API names it


def test_each_step_of_a_shift_is_followed_by_a_look_at_the_alarms(
    tmp_path: Path, balancers: Balancers
) -> None:
    """No lifecycle event ends between two steps; with a poll interval of an hour only the check that
    follows each step can stop the deployment (and give every request back to the originals)."""
    source = FakeAlarmSource()
    source.set("errors", AlarmState.OK)
    harness = EngineHarness.on_sqlite(
        tmp_path,
        traffic=TrafficSettings(
            poll_interval=1.0, hold_interval=1.0, health_wait=3600.0, load_balancers=balancers
        ),
        alarms=AlarmSettings(poll_interval=3600.0, source=source),
    )
    try:
        config = shifting_config(harness, "Linear25PercentEvery10Minutes", LINEAR_25_EVERY_10)
        group_id, agents = fleet(harness, KEEP_ALIVE, config=config)
        with harness.database.transaction() as session:
            session.get(DeploymentGroup, group_id).alarm_configuration = {
                "enabled": True,
                "alarms": [{"name": "errors"}],
            }
        deployment_id = deploy(harness, group_id)
        settle(harness, agents)
        harness.advance(60.0)  # the checks after the install and the first step have found nothing
        assert balancers.web.replacement_share == 25.0
        source.set("errors", AlarmState.ALARM)
        harness.advance(9 * 60.0)  # the second step (50 %)
        assert balancers.web.replacement_share == 50.0
        harness.advance(1.0)
        settle(harness, agents)
        info = harness.deployment(deployment_id)
        assert info["status"] == "Stopped", info
        assert info["errorInformation"]["code"] == "ALARM_ACTIVE"
        # Every new request back to the originals, the replacements out, then even weights again.
        assert shares(balancers) == [0.0, 25.0, 50.0, 0.0, 50.0]
        assert balancers.serving() == set(BLUE)
    finally:
        harness.close()
