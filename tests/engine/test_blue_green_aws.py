"""Blue/green deployments of server fleets through an ELBv2 target group pair (issue 11), on the engine's
virtual clock (``support.engine_harness``), with the real AWS drivers (``integrations.elb.TargetGroupPair``
made by ``integrations.load_balancers.load_balancers_for``) talking to a real moto server: an Application
Load Balancer whose production listener forwards to target group A, where the original instances are
registered, and an empty target group B.

What is checked, read back from moto: the production listener's forward weights at every agent event and
after every step (a canary goes 0 % → 10 % → 100 % to the replacement group on virtual time; an
all-at-once deployment moves the listener when the originals' BlockTraffic starts, once every replacement
is in), which instances each group has registered (replacements registered with the replacement group by
AllowTraffic, originals deregistered from the original group by BlockTraffic), that a second deployment
goes the other way round (B original, A replacement) and keeps those roles through a restart of the engine
in its middle step, and that a stop there (with and without rollback) gives every request back to the
original group.

What is not: where requests go — moto stores the weights but does not route by them (spec §2) — nor any
timing of health or draining: moto's health is synthetic (``describe_target_health`` answers ``healthy``
for every registered running instance at once, so each AllowTraffic ends at its first look) and a
deregistered target is gone at once (no ``draining``, no deregistration delay). Routing by weight is
tested with HAProxy (``tests/e2e``), health and drain waits with the in-memory fake
(``test_blue_green_engine``, ``test_traffic_control_engine``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from test_blue_green_engine import (
    BLUE_GREEN,
    CANARY_10_FOR_15,
    ORIGINAL_EVENTS,
    REPLACEMENT_EVENTS,
    shifting_config,
    traffic_message,
    with_deployment,
)

from opendeploy.domain.deployment_style import LoadBalancerInfo
from opendeploy.engine.reconciler import Reconciler
from opendeploy.engine.stop import request_stop
from opendeploy.integrations.load_balancers import load_balancers_for
from opendeploy.integrations.traffic import LoadBalancer
from opendeploy.settings import TrafficSettings
from opendeploy.store.models import DeploymentGroup, OnPremisesInstanceTag
from support.engine_harness import EngineHarness, FakeAgent
from support.moto import MotoServer
from support.names import unique

BLUE = ["blue-1", "blue-2"]
GREEN = ["green-1", "green-2"]
TARGET_TAG = "opendeploy:lb-target"
KEEP_ALIVE = {"terminateBlueInstancesOnDeploymentSuccess": {"action": "KEEP_ALIVE"}}
CANARY = "Canary10Percent15Minutes"
ALL_AT_ONCE = "CodeDeployDefault.AllAtOnce"


# --- moto -------------------------------------------------------------------------------------------


@dataclass
class Network:
    moto: MotoServer
    ec2: Any
    elbv2: Any
    vpc: str
    subnets: list[str]
    image: str


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with MotoServer(tmp_path_factory.mktemp("moto")) as moto:
        ec2 = moto.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [  # an Application Load Balancer needs two Availability Zones
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=f"us-east-1{zone}")[
                "Subnet"
            ]["SubnetId"]
            for n, zone in ((1, "a"), (2, "b"))
        ]
        image = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
        yield Network(moto, ec2, moto.client("elbv2"), vpc, subnets, image)


@dataclass
class Stand:
    """One test's ALB: target groups A and B, the production listener (forwarding to A), and an EC2
    instance per host (the target each host's ``opendeploy:lb-target`` tag names)."""

    network: Network
    groups: dict[str, dict[str, Any]]  # "A" / "B" -> the target group
    listener: str
    targets: dict[str, str]  # host -> EC2 instance id

    @property
    def info(self) -> dict[str, Any]:
        return {
            "targetGroupPairInfoList": [
                {
                    "targetGroups": [{"name": self.groups[k]["TargetGroupName"]} for k in ("A", "B")],
                    "prodTrafficRoute": {"listenerArns": [self.listener]},
                }
            ]
        }

    def weights(self) -> dict[str, int]:
        """The listener's forward weights as moto reports them: "A" / "B" -> weight (a plain forward to
        one group, as the listener was created: that group 1)."""
        elbv2 = self.network.elbv2
        (listener,) = elbv2.describe_listeners(ListenerArns=[self.listener])["Listeners"]
        (action,) = [a for a in listener["DefaultActions"] if a["Type"] == "forward"]
        letter = {group["TargetGroupArn"]: k for k, group in self.groups.items()}
        forwarded = (action.get("ForwardConfig") or {}).get("TargetGroups") or [
            {"TargetGroupArn": action["TargetGroupArn"], "Weight": 1}
        ]
        return {letter[g["TargetGroupArn"]]: g["Weight"] for g in forwarded}

    def health(self, group: str) -> dict[str, str]:
        """DescribeTargetHealth of every target registered in ``group``: host -> state."""
        host = {target: name for name, target in self.targets.items()}
        answer = self.network.elbv2.describe_target_health(
            TargetGroupArn=self.groups[group]["TargetGroupArn"]
        )
        return {
            host[d["Target"]["Id"]]: d["TargetHealth"]["State"] for d in answer["TargetHealthDescriptions"]
        }

    def registered(self) -> dict[str, set[str]]:
        return {group: set(self.health(group)) for group in ("A", "B")}


@pytest.fixture
def stand(network: Network) -> Stand:
    ec2, elbv2 = network.ec2, network.elbv2
    balancer = elbv2.create_load_balancer(Name=unique("alb"), Subnets=network.subnets)["LoadBalancers"][0]
    groups = {
        letter: elbv2.create_target_group(
            Name=unique(f"tg-{letter.lower()}"), Protocol="HTTP", Port=80, VpcId=network.vpc
        )["TargetGroups"][0]
        for letter in ("A", "B")
    }
    listener = elbv2.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": groups["A"]["TargetGroupArn"]}],
    )["Listeners"][0]["ListenerArn"]
    hosts = BLUE + GREEN
    instances = ec2.run_instances(
        ImageId=network.image, MinCount=len(hosts), MaxCount=len(hosts), SubnetId=network.subnets[0]
    )["Instances"]
    targets = dict(zip(hosts, [instance["InstanceId"] for instance in instances], strict=True))
    elbv2.register_targets(
        TargetGroupArn=groups["A"]["TargetGroupArn"], Targets=[{"Id": targets[host]} for host in BLUE]
    )
    return Stand(network, groups, listener, targets)


# --- the engine -------------------------------------------------------------------------------------


def real_load_balancers(network: Network) -> Any:
    """What the engine makes its load balancers with: the real drivers, on clients of their own (a new
    factory is a new process for ``load_balancers_for``, which keeps its drivers per factory)."""
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        return clients.setdefault(service, network.moto.client(service))

    def balancers(info: LoadBalancerInfo, settings: TrafficSettings) -> dict[str, LoadBalancer]:
        return load_balancers_for(info, settings, aws_client=client)

    return balancers


@pytest.fixture
def harness(tmp_path: Path, network: Network) -> Iterator[EngineHarness]:
    harness = EngineHarness.on_sqlite(
        tmp_path,
        traffic=TrafficSettings(
            poll_interval=1.0,
            hold_interval=1.0,
            health_wait=3600.0,
            load_balancers=real_load_balancers(network),
        ),
    )
    yield harness
    harness.close()


def restart(harness: EngineHarness, network: Network) -> None:
    """A new engine on the same database, whose drivers know nothing of the ones before."""
    traffic = replace(harness.settings.traffic, load_balancers=real_load_balancers(network))
    harness.settings = replace(harness.settings, traffic=traffic)
    harness.reconciler = Reconciler(harness.database, harness.settings)


def fleet(harness: EngineHarness, stand: Stand) -> tuple[str, dict[str, FakeAgent]]:
    """A blue/green group (KEEP_ALIVE) through the pair selecting the four hosts, each tagged with its
    target and with ``env`` blue or green."""
    group_id, agents = harness.fleet(
        BLUE + GREEN,
        ALL_AT_ONCE,
        load_balancer_info=stand.info,
        blue_green_deployment_configuration=KEEP_ALIVE,
    )
    shifting_config(harness, CANARY, CANARY_10_FOR_15)
    with harness.database.transaction() as session:
        session.get(DeploymentGroup, group_id).deployment_style = BLUE_GREEN
        for host, target in stand.targets.items():
            session.add(OnPremisesInstanceTag(instance_name=host, key=TARGET_TAG, value=target))
            session.add(OnPremisesInstanceTag(instance_name=host, key="env", value=host.split("-")[0]))
    return group_id, {agent.name: agent for agent in agents}


def deploy(harness: EngineHarness, group_id: str, stand: Stand, env: str, config: str, **fields: Any) -> str:
    """A deployment with ``config`` whose replacement environment is the ``env`` hosts."""
    with harness.database.transaction() as session:
        session.execute(
            update(DeploymentGroup)
            .where(DeploymentGroup.id == group_id)
            .values(deployment_config_name=config)
        )
    return harness.deploy(
        group_id,
        load_balancer_info=stand.info,
        blue_green_deployment_configuration=KEEP_ALIVE,
        target_instances={"tagFilters": [{"Key": "env", "Value": env, "Type": "KEY_AND_VALUE"}]},
        **fields,
    )


@dataclass(frozen=True)
class Seen:
    """An agent event, with the listener's weights and the groups' registrations when it ran."""

    host: str
    event: str
    weights: dict[str, int]
    registered: dict[str, set[str]]


def settle(harness: EngineHarness, agents: dict[str, FakeAgent], stand: Stand) -> list[Seen]:
    """Agents run every command they get (Succeeded), moto read as each runs; the engine acts; until
    nothing moves."""
    seen: list[Seen] = []
    for _ in range(200):
        moved = 0
        for agent in agents.values():
            while (command := agent.poll()) is not None:
                seen.append(Seen(agent.name, command.command_name, stand.weights(), stand.registered()))
                assert agent.acknowledge(command) == "InProgress"
                assert agent.complete(command)
                moved += 1
        moved += harness.run()
        if not moved:
            return seen
    raise AssertionError("the deployment kept moving without settling")


def at(seen: list[Seen], host: str, event: str) -> Seen:
    return next(s for s in seen if (s.host, s.event) == (host, event))


def all_events_succeeded(harness: EngineHarness, deployment_id: str, originals: list[str]) -> None:
    info = harness.deployment(deployment_id)
    assert info["status"] == "Succeeded", info
    for host in BLUE + GREEN:
        events = ORIGINAL_EVENTS if host in originals else REPLACEMENT_EVENTS
        assert harness.events(deployment_id, host) == [(event, "Succeeded") for event in events], host


A_ONLY = {"A": 999, "B": 0}
B_ONLY = {"A": 0, "B": 999}


# --- the scenarios ----------------------------------------------------------------------------------


def test_a_canary_moves_the_listener_from_the_original_group_to_the_replacement_group(
    harness: EngineHarness, stand: Stand
) -> None:
    group_id, agents = fleet(harness, stand)
    assert stand.weights() == {"A": 1}
    deployment_id = deploy(harness, group_id, stand, "green", CANARY)
    seen = settle(harness, agents, stand)

    # The replacements are registered with B while it gets no request, then B gets its 10 %.
    before = at(seen, "green-1", "BeforeAllowTraffic")
    assert before.weights == A_ONLY
    assert before.registered == {"A": set(BLUE), "B": set()}
    assert at(seen, "green-2", "AfterAllowTraffic").registered == {"A": set(BLUE), "B": set(GREEN)}
    assert stand.weights() == {"A": 900, "B": 100}
    assert stand.health("B") == dict.fromkeys(GREEN, "healthy")  # moto: healthy once registered
    assert harness.deployment(deployment_id)["status"] == "InProgress"
    assert traffic_message(harness, deployment_id).startswith(
        "Traffic: 10% to the replacement instances, 90% to the original instances; step 1"
    )

    harness.advance(15 * 60.0 - 1.0)  # the canary interval is not over: nothing moves
    assert settle(harness, agents, stand) == []
    assert stand.weights() == {"A": 900, "B": 100}
    harness.advance(1.0)
    seen = settle(harness, agents, stand)

    # All of it to B before any original leaves A; then the originals leave A.
    assert [(s.host, s.event) for s in seen if s.host == "blue-1"] == [
        ("blue-1", "BeforeBlockTraffic"),
        ("blue-1", "AfterBlockTraffic"),
    ]
    assert at(seen, "blue-1", "BeforeBlockTraffic").weights == B_ONLY
    assert at(seen, "blue-1", "BeforeBlockTraffic").registered["A"] == set(BLUE)
    all_events_succeeded(harness, deployment_id, originals=BLUE)
    assert stand.weights() == B_ONLY
    assert stand.registered() == {"A": set(), "B": set(GREEN)}


def test_the_next_deployment_goes_the_other_way_round_and_keeps_its_roles_through_a_restart(
    harness: EngineHarness, stand: Stand, network: Network
) -> None:
    group_id, agents = fleet(harness, stand)
    # All at once: the listener moves when the originals' BlockTraffic starts, every replacement in B.
    first = deploy(harness, group_id, stand, "green", ALL_AT_ONCE)
    seen = settle(harness, agents, stand)
    all_events_succeeded(harness, first, originals=BLUE)
    for host in BLUE:
        assert at(seen, host, "BeforeBlockTraffic").weights == {"A": 1}
        assert at(seen, host, "AfterBlockTraffic").weights == B_ONLY
    assert at(seen, "blue-1", "BeforeBlockTraffic").registered == {"A": set(BLUE), "B": set(GREEN)}
    assert stand.weights() == B_ONLY
    assert stand.registered() == {"A": set(), "B": set(GREEN)}

    # Now B holds the originals (the green hosts) and A receives the replacements (the blue hosts).
    second = deploy(harness, group_id, stand, "blue", CANARY)
    seen = settle(harness, agents, stand)
    assert at(seen, "blue-1", "BeforeAllowTraffic").weights == B_ONLY
    assert at(seen, "blue-2", "AfterAllowTraffic").registered == {"A": set(BLUE), "B": set(GREEN)}
    assert stand.weights() == {"A": 100, "B": 900}

    # A new engine in the middle step: the roles come from the deployment's record, not from the order
    # the pair is listed in (A first) — otherwise the next look would send 90 % to A.
    restart(harness, network)
    harness.advance(60.0)
    assert stand.weights() == {"A": 100, "B": 900}
    harness.advance(15 * 60.0 - 60.0)
    settle(harness, agents, stand)

    all_events_succeeded(harness, second, originals=GREEN)
    assert stand.weights() == A_ONLY
    assert stand.registered() == {"A": set(BLUE), "B": set()}


@pytest.mark.parametrize("roll_back", [False, True])
def test_a_stop_in_the_middle_step_gives_every_request_back_to_the_original_group(
    harness: EngineHarness, stand: Stand, roll_back: bool
) -> None:
    group_id, agents = fleet(harness, stand)
    first = deploy(harness, group_id, stand, "green", ALL_AT_ONCE)  # a revision to roll back to
    settle(harness, agents, stand)
    assert harness.deployment(first)["status"] == "Succeeded"
    assert stand.weights() == B_ONLY

    second = deploy(harness, group_id, stand, "blue", CANARY)
    settle(harness, agents, stand)
    harness.advance(5 * 60.0)
    assert stand.weights() == {"A": 100, "B": 900}
    assert stand.registered() == {"A": set(BLUE), "B": set(GREEN)}
    with_deployment(
        harness, second, lambda s, d: request_stop(s, d, roll_back, harness.now, harness.settings)
    )
    settle(harness, agents, stand)

    info = harness.deployment(second)
    assert info["status"] == "Stopped", info
    assert stand.weights() == B_ONLY
    # The replacements let into A are out again; the originals never left B.
    assert stand.registered() == {"A": set(), "B": set(GREEN)}
    rollback = info.get("rollbackInfo", {}).get("rollbackDeploymentId")
    if not roll_back:
        assert rollback is None
        return
    # The rollback reroutes back with the roles reversed: the stopped deployment's originals (in B) are
    # let in again where they are, its replacements leave A, and the listener stays on B.
    assert rollback is not None
    rolled = harness.deployment(rollback)
    assert rolled["status"] == "Succeeded", rolled
    assert harness.events(rollback, "green-1") == [
        ("BeforeAllowTraffic", "Succeeded"),
        ("AllowTraffic", "Succeeded"),
        ("AfterAllowTraffic", "Succeeded"),
    ]
    assert harness.events(rollback, "blue-1") == [(event, "Succeeded") for event in ORIGINAL_EVENTS]
    assert stand.weights() == B_ONLY
    assert stand.registered() == {"A": set(), "B": set(GREEN)}


def test_a_group_of_the_pair_that_does_not_exist_fails_the_deployment_at_start(
    harness: EngineHarness, stand: Stand
) -> None:
    group_id, agents = fleet(harness, stand)
    missing = {**stand.groups["B"], "TargetGroupName": unique("missing"), "TargetGroupArn": "x"}
    broken = replace(stand, groups={**stand.groups, "B": missing})
    deployment_id = deploy(harness, group_id, broken, "green", CANARY)

    info = harness.deployment(deployment_id)
    assert info["status"] == "Failed", info
    assert info["errorInformation"]["code"] == "ELASTIC_LOAD_BALANCING_INVALID"
    assert (
        f"target group '{missing['TargetGroupName']}' does not exist" in info["errorInformation"]["message"]
    )
    assert all(agent.poll() is None for agent in agents.values())
    assert stand.weights() == {"A": 1}
