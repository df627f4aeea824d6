"""In-place deployments with traffic control on the engine's virtual clock (``support.engine_harness``),
whose load balancers are the real AWS drivers (``integrations.elb``: an ELBv2 target group, a Classic
ELB, both at once, made by ``integrations.load_balancers.load_balancers_for``) talking to a real moto
server. Every AWS call the server makes is recorded in order through botocore's event system, next to
the events the agents run, and the whole sequence is pinned: the deployment's own calls at start, then,
one instance at a time (OneAtATime), its BlockTraffic calls before its ApplicationStop, a look each poll
that it is still out while its revision is installed, and its AllowTraffic calls after its
BeforeAllowTraffic. moto's own state is read at every agent event: never two instances out at once, and
each ends registered and healthy.

This pins the choreography, not the timing: moto never drains (a deregistered target is gone at once: no
``draining`` state, no deregistration delay) and reports every registered target healthy at once, so
every BlockTraffic and AllowTraffic here ends at its first look. Draining and health waits are tested on
the virtual clock with the in-memory fake (``test_traffic_control_engine``) and for real with HAProxy.

Each agent event takes one poll interval (1 s of virtual time) here, so the server's looks while an
instance is held out (``traffic_hold``) show up between them. The choreography pinned, per instance:

- ELBv2: BeforeBlockTraffic (agent); DescribeTargetGroupAttributes + DescribeTargetGroups (its drain
  limit), DeregisterTargets, DescribeTargetHealth (out: BlockTraffic Succeeded); AfterBlockTraffic …
  BeforeAllowTraffic (agent), a DescribeTargetHealth during each; RegisterTargets, DescribeTargetHealth
  (healthy: AllowTraffic Succeeded); AfterAllowTraffic (agent). The target group's name is resolved to
  its ARN once (DescribeTargetGroups by name), when the deployment starts and reads its timing.
- Classic ELB: the same with DescribeLoadBalancerAttributes + DescribeLoadBalancers,
  DeregisterInstancesFromLoadBalancer, RegisterInstancesWithLoadBalancer and DescribeInstanceHealth
  (followed by DescribeLoadBalancers while the instance is out: moto answers ``Unknown`` for it).
- Both: every step asks the Classic ELB first, then the target group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from opendeploy.domain.deployment_style import LoadBalancerInfo
from opendeploy.integrations.load_balancers import load_balancers_for
from opendeploy.integrations.traffic import LoadBalancer
from opendeploy.settings import TrafficSettings
from opendeploy.store.models import DeploymentGroup, OnPremisesInstanceTag
from support.engine_harness import EngineHarness, FakeAgent
from support.moto import MotoServer
from support.names import unique

ZONE = "us-east-1a"
HOSTS = ["host-1", "host-2", "host-3"]
TARGET_TAG = "opendeploy:lb-target"
WITH_TRAFFIC_CONTROL = {"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"}
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
# The agent's events between BlockTraffic and AllowTraffic: the instance is out of its load balancers.
HELD_OUT = EVENTS[EVENTS.index("BlockTraffic") + 1 : EVENTS.index("AllowTraffic")]
AGENT_EVENT_SECONDS = 1.0  # = the poll interval: the server looks once during each agent event


# --- recording -----------------------------------------------------------------------------------


class Recorder:
    """The AWS clients the server is given (``aws_client``): every call each makes is written to
    ``timeline`` as ``"<Operation> <target ids or names>"``, where the drive also writes the agents'
    events as ``"<host> <event>"``."""

    def __init__(self, moto: MotoServer) -> None:
        self.moto = moto
        self.timeline: list[str] = []
        self.clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self.clients:
            made = self.moto.client(service)
            made.meta.events.register("before-parameter-build.*.*", self._record)
            self.clients[service] = made
        return self.clients[service]

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.timeline.append(f"{model.name} {_named(params)}".rstrip())


def _named(params: dict[str, Any]) -> str:
    """The targets (ELBv2 ``Targets``: ``id[:port]``; Classic ``Instances``) or names a call is about."""
    named = [f"{t['Id']}:{t['Port']}" if "Port" in t else t["Id"] for t in params.get("Targets") or []]
    named += [instance["InstanceId"] for instance in params.get("Instances") or []]
    named += params.get("Names") or []
    return " ".join(named)


# --- moto ----------------------------------------------------------------------------------------


@dataclass
class Aws:
    """The test's own clients (not recorded) on the module's moto server."""

    moto: MotoServer
    ec2: Any
    elbv2: Any
    elb: Any
    vpc: str
    subnet: str
    image: str

    def instances(self, count: int) -> list[str]:
        response = self.ec2.run_instances(
            ImageId=self.image, MinCount=count, MaxCount=count, SubnetId=self.subnet
        )
        return [instance["InstanceId"] for instance in response["Instances"]]

    def target_group(self, target_type: str, targets: list[dict[str, Any]]) -> dict[str, Any]:
        """A target group (30 s deregistration delay, healthy after 3 checks 10 s apart) with ``targets``
        registered, as they are before a deployment."""
        group = self.elbv2.create_target_group(
            Name=unique("tg"),
            Protocol="HTTP",
            Port=80,
            VpcId=self.vpc,
            TargetType=target_type,
            HealthCheckIntervalSeconds=10,
            HealthyThresholdCount=3,
        )["TargetGroups"][0]
        self.elbv2.modify_target_group_attributes(
            TargetGroupArn=group["TargetGroupArn"],
            Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}],
        )
        self.elbv2.register_targets(TargetGroupArn=group["TargetGroupArn"], Targets=targets)
        return group

    def classic(self, instances: list[str]) -> str:
        """A Classic ELB (draining 20 s, healthy after 2 checks 15 s apart) with ``instances``
        registered."""
        name = unique("clb")
        self.elb.create_load_balancer(
            LoadBalancerName=name,
            Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}],
            AvailabilityZones=[ZONE],
        )
        self.elb.configure_health_check(
            LoadBalancerName=name,
            HealthCheck={
                "Target": "HTTP:8080/health",
                "Interval": 15,
                "Timeout": 5,
                "UnhealthyThreshold": 2,
                "HealthyThreshold": 2,
            },
        )
        self.elb.modify_load_balancer_attributes(
            LoadBalancerName=name,
            LoadBalancerAttributes={"ConnectionDraining": {"Enabled": True, "Timeout": 20}},
        )
        self.elb.register_instances_with_load_balancer(
            LoadBalancerName=name, Instances=[{"InstanceId": i} for i in instances]
        )
        return name

    def target_health(self, arn: str) -> dict[str, str]:
        """DescribeTargetHealth of every registered target: ``id:port`` → state."""
        answer = self.elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        return {f"{d['Target']['Id']}:{d['Target']['Port']}": d["TargetHealth"]["State"] for d in answer}

    def instance_health(self, name: str) -> dict[str, str]:
        """DescribeInstanceHealth of every registered instance: id → state."""
        answer = self.elb.describe_instance_health(LoadBalancerName=name)["InstanceStates"]
        return {state["InstanceId"]: state["State"] for state in answer}


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    with MotoServer(tmp_path_factory.mktemp("moto")) as moto:
        ec2 = moto.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=ZONE)["Subnet"]
        image = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
        yield Aws(moto, ec2, moto.client("elbv2"), moto.client("elb"), vpc, subnet["SubnetId"], image)


# --- the engine ----------------------------------------------------------------------------------


@pytest.fixture
def recorder(aws: Aws) -> Recorder:
    return Recorder(aws.moto)


@pytest.fixture
def harness(tmp_path: Path, recorder: Recorder) -> Iterator[EngineHarness]:
    """The engine on a virtual clock whose load balancers are the real drivers, through the
    recording clients (``load_balancers_for`` keeps them per client factory: one per test)."""

    def balancers(info: LoadBalancerInfo, settings: TrafficSettings) -> dict[str, LoadBalancer]:
        return load_balancers_for(info, settings, aws_client=recorder.client)

    harness = EngineHarness.on_sqlite(
        tmp_path,
        traffic=TrafficSettings(
            poll_interval=1.0, hold_interval=1.0, health_wait=3600.0, load_balancers=balancers
        ),
    )
    yield harness
    harness.close()


def fleet(
    harness: EngineHarness, info: dict[str, Any], targets: dict[str, str]
) -> tuple[str, list[FakeAgent]]:
    """A OneAtATime group with traffic control through ``info``; each instance tagged with the target
    id its load balancers know it by (``opendeploy:lb-target``)."""
    group_id, agents = harness.fleet(HOSTS, "CodeDeployDefault.OneAtATime")
    with harness.database.transaction() as session:
        session.execute(
            update(DeploymentGroup)
            .where(DeploymentGroup.id == group_id)
            .values(deployment_style=WITH_TRAFFIC_CONTROL, load_balancer_info=info)
        )
        for host, target in targets.items():
            session.add(OnPremisesInstanceTag(instance_name=host, key=TARGET_TAG, value=target))
    return group_id, agents


@dataclass(frozen=True)
class Seen:
    """An agent event, and which instances moto showed out of a load balancer when it ran."""

    host: str
    event: str
    out: frozenset[str]


def drive(
    harness: EngineHarness, agents: list[FakeAgent], recorder: Recorder, out: Callable[[], set[str]]
) -> list[Seen]:
    """Agents run every command they get (Succeeded), each taking ``AGENT_EVENT_SECONDS`` of virtual
    time; the engine acts; until nothing moves. Each agent event goes into the timeline as it starts."""
    seen: list[Seen] = []
    for _ in range(500):
        moved = 0
        for agent in agents:
            command = agent.poll()
            if command is None:
                continue
            recorder.timeline.append(f"{agent.name} {command.command_name}")
            seen.append(Seen(agent.name, command.command_name, frozenset(out())))
            assert agent.acknowledge(command) == "InProgress"
            harness.advance(AGENT_EVENT_SECONDS)
            assert agent.complete(command)
            moved += 1
        moved += harness.run()
        if not moved:
            return seen
    raise AssertionError("the deployment kept moving without settling")


# --- what is expected ----------------------------------------------------------------------------


def per_instance(host: str, block: list[str], look: list[str], allow: list[str]) -> list[str]:
    """One instance's part of the timeline: its BeforeBlockTraffic, the server's BlockTraffic calls,
    each agent event while it is held out followed by the server's look that it still is, the server's
    AllowTraffic calls, its AfterAllowTraffic."""
    held = [entry for event in HELD_OUT for entry in (f"{host} {event}", *look)]
    return [f"{host} BeforeBlockTraffic", *block, *held, *allow, f"{host} AfterAllowTraffic"]


def classic_look_out(instance: str) -> list[str]:
    """The Classic driver's look at an instance that is not registered: moto answers DescribeInstanceHealth
    ``Unknown`` for it (AWS: ``OutOfService``, "not currently registered"), so the driver asks
    DescribeLoadBalancers whether it is registered."""
    return [f"DescribeInstanceHealth {instance}", "DescribeLoadBalancers"]


def _hosts(targets: dict[str, str], health: dict[str, str]) -> set[str]:
    """The hosts whose target a health answer shows in service (healthy / InService)."""
    return {host for host, target in targets.items() if health.get(target) in ("healthy", "InService")}


def one_out_at_a_time(seen: list[Seen]) -> None:
    """moto, read at every agent event: the instance being deployed is out of its load balancers from
    AfterBlockTraffic to BeforeAllowTraffic and in for its Before/AfterBlock…/AllowTraffic hooks; every
    other instance is in."""
    assert [(s.host, s.event) for s in seen] == [
        (host, event) for host in HOSTS for event in EVENTS if event not in ("BlockTraffic", "AllowTraffic")
    ]
    for s in seen:
        assert s.out == ({s.host} if s.event in HELD_OUT else set()), s


def succeeded_in_the_guides_order(harness: EngineHarness, deployment_id: str) -> None:
    info = harness.deployment(deployment_id)
    assert info["status"] == "Succeeded", info
    for host in HOSTS:
        assert harness.events(deployment_id, host) == [(event, "Succeeded") for event in EVENTS]
        events = harness.instance(deployment_id, host)["lifecycleEvents"]
        block, allow = events[EVENTS.index("BlockTraffic")], events[EVENTS.index("AllowTraffic")]
        # moto: out at the first look, healthy at the first look
        assert block["endTime"] == block["startTime"] and allow["endTime"] == allow["startTime"]
        assert [block["diagnostics"]["errorCode"], allow["diagnostics"]["errorCode"]] == ["Success"] * 2


# --- the scenarios -------------------------------------------------------------------------------


def test_elbv2_ip_target_group_one_instance_at_a_time(
    aws: Aws, harness: EngineHarness, recorder: Recorder
) -> None:
    targets = {host: f"10.0.1.{11 + n}:8080" for n, host in enumerate(HOSTS)}
    group = aws.target_group(
        "ip", [{"Id": target.split(":")[0], "Port": 8080} for target in targets.values()]
    )
    name, arn = group["TargetGroupName"], group["TargetGroupArn"]
    info = {"targetGroupInfoList": [{"name": name}]}
    group_id, agents = fleet(harness, info, targets)

    deployment_id = harness.deploy(group_id, load_balancer_info=info)
    assert harness.deployment(deployment_id)["deploymentStatusMessages"] == [
        f"Traffic control through {name}: BlockTraffic takes at most 30 s per instance and ends as soon as "
        "its connections have (AWS always waits for the deregistration delay, 300 s by default); "
        "AllowTraffic about 40 s (healthy threshold × check interval + one interval)."
    ]
    seen = drive(harness, agents, recorder, lambda: set(targets) - _hosts(targets, aws.target_health(arn)))

    timing = ["DescribeTargetGroupAttributes", "DescribeTargetGroups"]  # by ARN
    expected = [f"DescribeTargetGroups {name}", *timing]  # the name resolved to its ARN once, ever
    for host, target in targets.items():
        look = [f"DescribeTargetHealth {target}"]
        expected += per_instance(
            host,
            block=[*timing, f"DeregisterTargets {target}", *look],
            look=look,
            allow=[f"RegisterTargets {target}", *look],
        )
    assert recorder.timeline == expected
    one_out_at_a_time(seen)
    succeeded_in_the_guides_order(harness, deployment_id)
    assert aws.target_health(arn) == dict.fromkeys(targets.values(), "healthy")


def test_classic_elb_one_instance_at_a_time(aws: Aws, harness: EngineHarness, recorder: Recorder) -> None:
    instances = aws.instances(len(HOSTS))
    targets = dict(zip(HOSTS, instances, strict=True))
    name = aws.classic(instances)
    info = {"elbInfoList": [{"name": name}]}
    group_id, agents = fleet(harness, info, targets)

    deployment_id = harness.deploy(group_id, load_balancer_info=info)
    assert harness.deployment(deployment_id)["deploymentStatusMessages"] == [
        f"Traffic control through {name}: BlockTraffic takes at most 20 s per instance and ends as soon as "
        "its connections have (AWS always waits for the deregistration delay, 300 s by default); "
        "AllowTraffic about 45 s (healthy threshold × check interval + one interval)."
    ]
    seen = drive(harness, agents, recorder, lambda: set(targets) - _hosts(targets, aws.instance_health(name)))

    timing = ["DescribeLoadBalancerAttributes", "DescribeLoadBalancers"]
    expected = list(timing)
    for host, instance in targets.items():
        look = classic_look_out(instance)
        expected += per_instance(
            host,
            block=[*timing, f"DeregisterInstancesFromLoadBalancer {instance}", *look],
            look=look,
            allow=[f"RegisterInstancesWithLoadBalancer {instance}", f"DescribeInstanceHealth {instance}"],
        )
    assert recorder.timeline == expected
    one_out_at_a_time(seen)
    succeeded_in_the_guides_order(harness, deployment_id)
    assert aws.instance_health(name) == dict.fromkeys(instances, "InService")


def test_a_classic_elb_and_a_target_group_at_once(
    aws: Aws, harness: EngineHarness, recorder: Recorder
) -> None:
    instances = aws.instances(len(HOSTS))
    targets = dict(zip(HOSTS, instances, strict=True))
    classic = aws.classic(instances)
    group = aws.target_group("instance", [{"Id": instance} for instance in instances])
    name, arn = group["TargetGroupName"], group["TargetGroupArn"]
    info = {"elbInfoList": [{"name": classic}], "targetGroupInfoList": [{"name": name}]}
    group_id, agents = fleet(harness, info, targets)

    deployment_id = harness.deploy(group_id, load_balancer_info=info)
    assert harness.deployment(deployment_id)["deploymentStatusMessages"] == [
        f"Traffic control through {classic}, {name}: BlockTraffic takes at most 30 s per instance and ends "
        "as soon as its connections have (AWS always waits for the deregistration delay, 300 s by "
        "default); AllowTraffic about 45 s (healthy threshold × check interval + one interval)."
    ]

    def out() -> set[str]:
        in_both = _hosts(targets, aws.instance_health(classic)) & _hosts(
            targets, {target.split(":")[0]: state for target, state in aws.target_health(arn).items()}
        )
        return set(targets) - in_both

    seen = drive(harness, agents, recorder, out)

    # Classic ELBs first, then target groups (the guide's order), in every step.
    classic_timing = ["DescribeLoadBalancerAttributes", "DescribeLoadBalancers"]
    group_timing = ["DescribeTargetGroupAttributes", "DescribeTargetGroups"]
    timing = [*classic_timing, *group_timing]
    expected = [*classic_timing, f"DescribeTargetGroups {name}", *group_timing]  # the ARN, once
    for host, instance in targets.items():
        look = [*classic_look_out(instance), f"DescribeTargetHealth {instance}"]
        expected += per_instance(
            host,
            block=[
                *timing,
                f"DeregisterInstancesFromLoadBalancer {instance}",
                f"DeregisterTargets {instance}",
                *look,
            ],
            look=look,
            allow=[
                f"RegisterInstancesWithLoadBalancer {instance}",
                f"RegisterTargets {instance}",
                f"DescribeInstanceHealth {instance}",
                f"DescribeTargetHealth {instance}",
            ],
        )
    assert recorder.timeline == expected
    one_out_at_a_time(seen)
    succeeded_in_the_guides_order(harness, deployment_id)
    assert aws.instance_health(classic) == dict.fromkeys(instances, "InService")
    assert aws.target_health(arn) == {f"{instance}:80": "healthy" for instance in instances}


def test_a_target_group_that_does_not_exist_fails_the_deployment_at_start(
    aws: Aws, harness: EngineHarness, recorder: Recorder
) -> None:
    name = unique("missing")
    targets = {host: f"10.0.1.{21 + n}:8080" for n, host in enumerate(HOSTS)}
    info = {"targetGroupInfoList": [{"name": name}]}
    group_id, agents = fleet(harness, info, targets)

    deployment_id = harness.deploy(group_id, load_balancer_info=info)

    deployment = harness.deployment(deployment_id)
    assert deployment["status"] == "Failed"
    assert deployment["errorInformation"] == {
        "code": "ELASTIC_LOAD_BALANCING_INVALID",
        "message": f"target group '{name}' does not exist in us-east-1 "
        "(DescribeTargetGroups found no target group of that name)",
    }
    assert all(agent.poll() is None for agent in agents)
    harness.advance(60.0)
    # The name was looked up once, when the deployment started; nothing was ever deregistered.
    assert recorder.timeline == [f"DescribeTargetGroups {name}"]
