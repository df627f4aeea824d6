"""ELBv2 target groups and Classic Load Balancers as opendeploy load balancers, against a real moto server.

What moto can show, and is tested here: which calls BlockTraffic and AllowTraffic make (targets really
registered and deregistered, instance and IP targets, by name and by ARN), the states it reports
(registered → healthy/InService; deregistered → gone; a stopped instance → ``unused`` /
``OutOfService``), the timing read back from the target group's and the Classic ELB's own settings,
AWS errors as TrafficError (unknown names, a refused registration, nothing listening), and the
deployment group's ``loadBalancerInfo`` (10 + 10 at most) through the server's own AWS clients.

What moto cannot show (spec §2): it never drains (a deregistered target disappears at once: no
``draining`` state, no deregistration delay, no Classic "deregistration currently in progress"), and
it reports every registered running target healthy at once (no ``initial`` or ``unhealthy``, no health
checks). Those answers of AWS are fed to the drivers through botocore's Stubber instead, which still
checks them against the service model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.config
import pytest
from botocore.stub import Stubber

from opendeploy.integrations import aws_clients
from opendeploy.integrations.elb import (
    ClassicLoadBalancer,
    TargetGroup,
    TargetGroupPair,
    load_balancers,
    target_description,
    target_group_pairs,
)
from opendeploy.integrations.traffic import (
    HealthTiming,
    TargetObservation,
    TargetState,
    TrafficError,
    TrafficMisconfigured,
)
from support.moto import MotoServer
from support.names import unique

IN = TargetState.IN_SERVICE
OUT = TargetState.OUT_OF_SERVICE
ZONE = "us-east-1a"


@dataclass
class Aws:
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
        return [i["InstanceId"] for i in response["Instances"]]

    def target_group(self, target_type: str = "instance", **settings: Any) -> dict[str, Any]:
        return self.elbv2.create_target_group(
            Name=unique("tg"), Protocol="HTTP", Port=80, VpcId=self.vpc, TargetType=target_type, **settings
        )["TargetGroups"][0]

    def classic(self) -> str:
        name = unique("clb")
        self.elb.create_load_balancer(
            LoadBalancerName=name,
            Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}],
            AvailabilityZones=[ZONE],
        )
        return name

    def registered(self, target_group_arn: str) -> set[tuple[str, int]]:
        answer = self.elbv2.describe_target_health(TargetGroupArn=target_group_arn)
        return {(d["Target"]["Id"], d["Target"]["Port"]) for d in answer["TargetHealthDescriptions"]}

    def classic_registered(self, name: str) -> set[str]:
        description = self.elb.describe_load_balancers(LoadBalancerNames=[name])["LoadBalancerDescriptions"][
            0
        ]
        return {i["InstanceId"] for i in description["Instances"]}


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    with MotoServer(tmp_path_factory.mktemp("moto")) as moto:
        ec2 = moto.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=ZONE)["Subnet"]
        image = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
        yield Aws(moto, ec2, moto.client("elbv2"), moto.client("elb"), vpc, subnet["SubnetId"], image)


def states(observations: dict[str, TargetObservation] | Any) -> dict[str, TargetState]:
    return {target: observation.state for target, observation in observations.items()}


# --- ELBv2 target groups --------------------------------------------------------------------------


def test_target_group_blocks_and_allows_instances(aws: Aws) -> None:
    group = aws.target_group()
    one, two = aws.instances(2)
    lb = TargetGroup(group["TargetGroupName"], aws.elbv2)
    assert lb.name == group["TargetGroupName"]
    assert lb.arn == group["TargetGroupArn"]

    assert states(lb.observe([one, two])) == {one: OUT, two: OUT}

    lb.allow(one)
    lb.allow(one)  # idempotent
    assert aws.registered(lb.arn) == {(one, 80)}
    assert states(lb.observe([one, two, one])) == {one: IN, two: OUT}  # moto: healthy at once

    lb.block(one)
    lb.finish_block(one)
    lb.block(one)  # idempotent: moto answers InvalidTarget for a target that is not registered
    assert aws.registered(lb.arn) == set()
    assert states(lb.observe([one])) == {one: OUT}  # moto: gone at once, never draining
    assert lb.observe([]) == {}


def test_target_group_by_arn(aws: Aws) -> None:
    group = aws.target_group()
    (instance,) = aws.instances(1)
    lb = TargetGroup(group["TargetGroupArn"], aws.elbv2)
    assert lb.name == group["TargetGroupName"]

    lb.allow(instance)

    assert aws.registered(group["TargetGroupArn"]) == {(instance, 80)}


def test_target_group_ip_targets_with_and_without_port(aws: Aws) -> None:
    group = aws.target_group("ip")
    lb = TargetGroup(group["TargetGroupName"], aws.elbv2)

    lb.allow("10.0.1.5:8080")
    lb.allow("10.0.1.6")

    assert aws.registered(lb.arn) == {("10.0.1.5", 8080), ("10.0.1.6", 80)}
    assert states(lb.observe(["10.0.1.5:8080", "10.0.1.6", "10.0.1.7"])) == {
        "10.0.1.5:8080": IN,
        "10.0.1.6": IN,
        "10.0.1.7": OUT,  # moto: "unavailable" with Target.NotRegistered
    }

    lb.block("10.0.1.5:8080")

    assert aws.registered(lb.arn) == {("10.0.1.6", 80)}
    assert states(lb.observe(["10.0.1.5:8080"])) == {"10.0.1.5:8080": OUT}


def test_target_group_stopped_instance_is_out_of_service_and_cannot_be_allowed(aws: Aws) -> None:
    group = aws.target_group()
    registered, stopped_later, stopped = aws.instances(3)
    lb = TargetGroup(group["TargetGroupName"], aws.elbv2)
    lb.allow(registered)
    lb.allow(stopped_later)
    aws.ec2.stop_instances(InstanceIds=[stopped_later, stopped])

    assert states(lb.observe([registered, stopped_later])) == {registered: IN, stopped_later: OUT}
    with pytest.raises(TrafficError) as refused:
        lb.allow(stopped)
    message = str(refused.value)
    assert f"target group '{group['TargetGroupName']}'" in message
    assert f"RegisterTargets of {stopped}" in message
    assert "InvalidTarget" in message


def test_target_group_timing_from_its_attributes(aws: Aws) -> None:
    group = aws.target_group(HealthCheckIntervalSeconds=10, HealthyThresholdCount=3)
    lb = TargetGroup(group["TargetGroupName"], aws.elbv2)
    assert lb.timing() == HealthTiming(drain_limit=300.0, healthy_expected=40.0)  # moto's default delay

    aws.elbv2.modify_target_group_attributes(
        TargetGroupArn=lb.arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}]
    )
    aws.elbv2.modify_target_group(
        TargetGroupArn=lb.arn, HealthCheckIntervalSeconds=5, HealthyThresholdCount=2
    )

    assert lb.timing() == HealthTiming(drain_limit=30.0, healthy_expected=15.0)  # read again, not cached


def test_unknown_target_group_is_a_clear_error(aws: Aws) -> None:
    name = unique("missing")
    lb = TargetGroup(name, aws.elbv2)
    for call in (lambda: lb.allow("i-0123456789abcdef0"), lb.timing, lambda: lb.observe(["10.0.0.1"])):
        with pytest.raises(TrafficMisconfigured, match=f"target group '{name}' does not exist in us-east-1"):
            call()


# --- Classic Load Balancers -----------------------------------------------------------------------


def test_classic_load_balancer_blocks_and_allows_instances(aws: Aws) -> None:
    name = aws.classic()
    one, two = aws.instances(2)
    lb = ClassicLoadBalancer(name, aws.elb)

    # moto answers "Unknown" for an instance that is not registered; the driver asks the load balancer
    assert states(lb.observe([one, two])) == {one: OUT, two: OUT}

    lb.allow(one)
    lb.allow(one)
    assert aws.classic_registered(name) == {one}
    assert states(lb.observe([one, two])) == {one: IN, two: OUT}

    lb.block(one)
    lb.finish_block(one)
    lb.block(one)
    assert aws.classic_registered(name) == set()
    assert states(lb.observe([one])) == {one: OUT}


def test_classic_stopped_instance_is_unhealthy(aws: Aws) -> None:
    name = aws.classic()
    (instance,) = aws.instances(1)
    lb = ClassicLoadBalancer(name, aws.elb)
    lb.allow(instance)
    aws.ec2.stop_instances(InstanceIds=[instance])

    assert states(lb.observe([instance])) == {instance: TargetState.UNHEALTHY}  # OutOfService


def test_classic_timing_from_draining_and_health_check(aws: Aws) -> None:
    name = aws.classic()
    lb = ClassicLoadBalancer(name, aws.elb)
    aws.elb.configure_health_check(
        LoadBalancerName=name,
        HealthCheck={
            "Target": "HTTP:8080/health",
            "Interval": 15,
            "Timeout": 5,
            "UnhealthyThreshold": 2,
            "HealthyThreshold": 2,
        },
    )
    assert lb.timing() == HealthTiming(drain_limit=0.0, healthy_expected=45.0)  # draining off

    aws.elb.modify_load_balancer_attributes(
        LoadBalancerName=name, LoadBalancerAttributes={"ConnectionDraining": {"Enabled": True, "Timeout": 30}}
    )
    assert lb.timing() == HealthTiming(drain_limit=30.0, healthy_expected=45.0)


def test_unknown_classic_load_balancer_is_a_clear_error(aws: Aws) -> None:
    name = unique("missing")
    lb = ClassicLoadBalancer(name, aws.elb)
    with pytest.raises(
        TrafficError,
        match=f"Classic Load Balancer '{name}': DescribeInstanceHealth failed: LoadBalancerNotFound",
    ):
        lb.observe(["i-0123456789abcdef0"])
    # moto answers these with an HTML error page (HTTP 500) where AWS says LoadBalancerNotFound
    with pytest.raises(
        TrafficError, match=f"Classic Load Balancer '{name}': RegisterInstancesWithLoadBalancer"
    ):
        lb.allow("i-0123456789abcdef0")
    with pytest.raises(TrafficError, match=f"Classic Load Balancer '{name}': DescribeLoadBalancerAttributes"):
        lb.timing()


def test_nothing_listening_is_a_traffic_error() -> None:
    client = _offline_client("elbv2", endpoint_url="http://127.0.0.1:9")
    lb = TargetGroup(
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef", client
    )
    with pytest.raises(
        TrafficError, match=re.escape("target group 'web': DeregisterTargets of 10.0.0.1 failed: Could not")
    ):
        lb.block("10.0.0.1")


# --- a deployment group's loadBalancerInfo --------------------------------------------------------


@pytest.fixture
def server_clients(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The server's own AWS clients (aws_clients) pointed at moto through the environment."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in aws.moto.env.items():
        monkeypatch.setenv(name, value)
    aws_clients.reset()
    yield
    aws_clients.reset()


def test_load_balancer_info_through_the_servers_clients(aws: Aws, server_clients: None) -> None:
    classic = aws.classic()
    group = aws.target_group()
    (instance,) = aws.instances(1)

    found = load_balancers(
        {
            "elbInfoList": [{"name": classic}],
            "targetGroupInfoList": [{"name": group["TargetGroupName"]}, {"name": group["TargetGroupName"]}],
            "targetGroupPairInfoList": [{"targetGroups": [{"name": "ecs-blue"}, {"name": "ecs-green"}]}],
        }
    )

    assert [(type(lb), lb.name) for lb in found] == [
        (ClassicLoadBalancer, classic),
        (TargetGroup, group["TargetGroupName"]),
    ]
    for lb in found:
        lb.allow(instance)
    assert aws.classic_registered(classic) == {instance}
    assert aws.registered(group["TargetGroupArn"]) == {(instance, 80)}
    assert [states(lb.observe([instance])) for lb in found] == [{instance: IN}, {instance: IN}]


def test_load_balancer_info_limits_ten_and_ten() -> None:
    made: list[str] = []

    def client(service: str) -> Any:
        made.append(service)
        return _offline_client(service)

    ten = [{"name": f"lb-{n}"} for n in range(10)]
    found = load_balancers({"elbInfoList": ten, "targetGroupInfoList": ten}, client=client)
    assert len(found) == 20
    assert made == ["elb", "elbv2"]  # one client each; no call to AWS yet

    eleven = [*ten, {"name": "lb-10"}]
    with pytest.raises(TrafficError, match=r"elbInfoList names 11 Classic Load Balancers; .* at most 10"):
        load_balancers({"elbInfoList": eleven}, client=client)
    with pytest.raises(TrafficError, match=r"targetGroupInfoList names 11 target groups; .* at most 10"):
        load_balancers({"targetGroupInfoList": eleven}, client=client)
    with pytest.raises(TrafficError, match="every entry needs a name"):
        load_balancers({"targetGroupInfoList": [{"name": ""}]}, client=client)

    made.clear()
    assert load_balancers(None, client=client) == []
    assert load_balancers({"elbInfoList": [], "targetGroupPairInfoList": [{}]}, client=client) == []
    assert made == []


def test_load_balancer_info_without_a_region_is_a_traffic_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    aws_clients.reset()
    try:
        with pytest.raises(
            TrafficError, match=r"cannot reach AWS for load balancers \(elbv2\): no AWS region"
        ):
            load_balancers({"targetGroupInfoList": [{"name": "web"}]})
    finally:
        aws_clients.reset()


# --- target strings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "description"),
    [
        ("i-0123456789abcdef0", {"Id": "i-0123456789abcdef0"}),
        ("10.0.0.5", {"Id": "10.0.0.5"}),
        ("10.0.0.5:8080", {"Id": "10.0.0.5", "Port": 8080}),
        ("fd00::5", {"Id": "fd00::5"}),
        ("[fd00::5]:8080", {"Id": "fd00::5", "Port": 8080}),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:hook",
            {"Id": "arn:aws:lambda:us-east-1:123456789012:function:hook"},
        ),
        ("web-1.internal:8080", {"Id": "web-1.internal:8080"}),
    ],
)
def test_target_strings(target: str, description: dict[str, Any]) -> None:
    assert target_description(target) == description


# --- AWS answers moto never gives (Stubber; shapes checked against the service model) -------------


def _offline_client(service: str, endpoint_url: str | None = None) -> Any:
    return boto3.session.Session(
        aws_access_key_id="AKIDOFFLINE", aws_secret_access_key="offline", region_name="us-east-1"
    ).client(
        service,
        endpoint_url=endpoint_url,
        config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 0}, connect_timeout=1),
    )


TG_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"


def test_target_group_states_moto_never_reports() -> None:
    client = _offline_client("elbv2")
    lb = TargetGroup(TG_ARN, client)
    health = [
        ("10.0.0.1", "initial", "Elb.InitialHealthChecking"),
        ("10.0.0.2", "unhealthy", "Target.Timeout"),
        ("10.0.0.3", "draining", "Target.DeregistrationInProgress"),
        ("10.0.0.4", "unhealthy.draining", "Target.FailedHealthChecks"),
        ("10.0.0.5", "unused", "Target.NotRegistered"),
        ("10.0.0.6", "unavailable", "Elb.InternalError"),
    ]
    targets = [t for t, _, _ in health]
    with Stubber(client) as stub:
        stub.add_response(
            "describe_target_health",
            {
                "TargetHealthDescriptions": [
                    {"Target": {"Id": t, "Port": 80}, "TargetHealth": {"State": s, "Reason": r}}
                    for t, s, r in health
                ]
            },
            {"TargetGroupArn": TG_ARN, "Targets": [{"Id": t} for t in targets]},
        )
        observed = states(lb.observe(targets))
        stub.assert_no_pending_responses()
        assert observed == {
            "10.0.0.1": TargetState.UNHEALTHY,
            "10.0.0.2": TargetState.UNHEALTHY,
            "10.0.0.3": TargetState.DRAINING,
            "10.0.0.4": TargetState.DRAINING,
            "10.0.0.5": OUT,
            "10.0.0.6": TargetState.UNHEALTHY,
        }


def test_target_group_unknown_target_is_asked_alone() -> None:
    client = _offline_client("elbv2")
    lb = TargetGroup(TG_ARN, client)
    known, unknown = "i-0123456789abcdef0", "i-0fffffffffffffff0"
    with Stubber(client) as stub:
        stub.add_client_error(
            "describe_target_health", "InvalidTarget", "The specified target does not exist"
        )
        stub.add_response(
            "describe_target_health",
            {
                "TargetHealthDescriptions": [
                    {"Target": {"Id": known, "Port": 80}, "TargetHealth": {"State": "healthy"}}
                ]
            },
            {"TargetGroupArn": TG_ARN, "Targets": [{"Id": known}]},
        )
        stub.add_client_error(
            "describe_target_health", "InvalidTarget", "The specified target does not exist"
        )
        observed = states(lb.observe([known, unknown]))
        stub.assert_no_pending_responses()
        assert observed == {known: IN, unknown: TargetState.UNKNOWN}


def test_classic_states_moto_never_reports() -> None:
    client = _offline_client("elb")
    lb = ClassicLoadBalancer("web", client)
    draining, unregistered, registering, gone = (f"i-0{n}23456789abcdef0" for n in range(4))
    with Stubber(client) as stub:
        stub.add_response(
            "describe_instance_health",
            {
                "InstanceStates": [
                    {
                        "InstanceId": draining,
                        "State": "InService",
                        "ReasonCode": "N/A",
                        "Description": "Instance deregistration currently in progress.",
                    },
                    {
                        "InstanceId": unregistered,
                        "State": "OutOfService",
                        "ReasonCode": "ELB",
                        "Description": "Instance is not currently registered with the LoadBalancer.",
                    },
                    {
                        "InstanceId": registering,
                        "State": "Unknown",
                        "ReasonCode": "ELB",
                        "Description": "Instance registration is still in progress.",
                    },
                ]
            },
        )
        stub.add_response(
            "describe_load_balancers",
            {
                "LoadBalancerDescriptions": [
                    {"LoadBalancerName": "web", "Instances": [{"InstanceId": registering}]}
                ]
            },
        )
        observed = states(lb.observe([draining, unregistered, registering, gone]))
        stub.assert_no_pending_responses()
        assert observed == {
            draining: TargetState.DRAINING,
            unregistered: OUT,
            registering: TargetState.UNHEALTHY,
            gone: TargetState.UNKNOWN,  # terminated instances are left out of the answer
        }


# --- weighted shifting: a target group pair behind a production listener --------------------------
# moto stores and echoes a listener's weighted forward action but does not route by it (spec §2), so
# these tests check the weights the listener is given and reads back, not where requests go.


@dataclass
class Pair:
    blue: dict[str, Any]
    green: dict[str, Any]
    listener: str
    load_balancer: str

    @property
    def info(self) -> dict[str, Any]:
        return {
            "targetGroups": [{"name": self.blue["TargetGroupName"]}, {"name": self.green["TargetGroupName"]}],
            "prodTrafficRoute": {"listenerArns": [self.listener]},
        }


def listener(aws: Aws, load_balancer: str, port: int, *actions: dict[str, Any]) -> str:
    return aws.elbv2.create_listener(
        LoadBalancerArn=load_balancer, Protocol="HTTP", Port=port, DefaultActions=list(actions)
    )["Listeners"][0]["ListenerArn"]


def forward(*groups: tuple[dict[str, Any], int], stickiness: dict[str, Any] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "TargetGroups": [{"TargetGroupArn": g["TargetGroupArn"], "Weight": w} for g, w in groups]
    }
    if stickiness:
        config["TargetGroupStickinessConfig"] = stickiness
    return {"Type": "forward", "ForwardConfig": config}


def listener_weights(aws: Aws, listener_arn: str) -> dict[str, int]:
    """The listener's default forward action as AWS reports it: target group name -> weight."""
    (found,) = aws.elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"]
    (action,) = [a for a in found["DefaultActions"] if a["Type"] == "forward"]
    return {g["TargetGroupArn"].split("/")[1]: g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]}


@pytest.fixture(scope="module")
def second_subnet(aws: Aws) -> str:
    """An Application Load Balancer needs subnets in two Availability Zones."""
    subnet = aws.ec2.create_subnet(VpcId=aws.vpc, CidrBlock="10.0.2.0/24", AvailabilityZone="us-east-1b")
    return subnet["Subnet"]["SubnetId"]


@pytest.fixture
def pair(aws: Aws, second_subnet: str) -> Pair:
    """Blue serves all production traffic (a plain forward, as a listener is usually created)."""
    balancer = aws.elbv2.create_load_balancer(Name=unique("alb"), Subnets=[aws.subnet, second_subnet])
    arn = balancer["LoadBalancers"][0]["LoadBalancerArn"]
    blue, green = aws.target_group(), aws.target_group()
    production = listener(aws, arn, 80, {"Type": "forward", "TargetGroupArn": blue["TargetGroupArn"]})
    return Pair(blue, green, production, arn)


def shifter(aws: Aws, info: dict[str, Any]) -> tuple[TargetGroupPair, list[str]]:
    """The driver of a pair (its own client), and the listeners it modifies (botocore's event hook)."""
    client = aws.moto.client("elbv2")
    (driver,) = target_group_pairs({"targetGroupPairInfoList": [info]}, client=lambda _: client)
    modified: list[str] = []
    client.meta.events.register(
        "before-call.elastic-load-balancing-v2.ModifyListener",
        lambda params, **_: modified.append(params["body"]["ListenerArn"]),
    )
    return driver, modified


def names(pair: Pair, blue: int, green: int) -> dict[str, int]:
    return {pair.blue["TargetGroupName"]: blue, pair.green["TargetGroupName"]: green}


def test_pair_shifts_the_listener_by_weight(aws: Aws, pair: Pair) -> None:
    driver, modified = shifter(aws, pair.info)
    original, replacement = ["i-original"], ["i-replacement"]  # not needed by a pair: the groups decide
    assert driver.observe_shift(original, replacement) == 0  # blue takes everything

    for percent, blue, green in [(10, 900, 100), (25, 750, 250), (50, 500, 500), (100, 0, 999), (0, 999, 0)]:
        driver.shift(original, replacement, percent)
        driver.shift(original, replacement, percent)  # idempotent: the second call modifies nothing
        assert listener_weights(aws, pair.listener) == names(pair, blue, green)
        assert driver.observe_shift(original, replacement) == pytest.approx(percent)
    assert modified == [pair.listener] * 5

    driver.shift(original, replacement, 12.34)  # tenths of a percent
    assert listener_weights(aws, pair.listener) == names(pair, 877, 123)
    assert driver.observe_shift(original, replacement) == pytest.approx(12.3)


def test_pair_shifts_every_production_listener_and_keeps_other_settings(aws: Aws, pair: Pair) -> None:
    stickiness = {"Enabled": True, "DurationSeconds": 60}
    second = listener(aws, pair.load_balancer, 8080, forward((pair.blue, 1), stickiness=stickiness))
    info = {**pair.info, "prodTrafficRoute": {"listenerArns": [pair.listener, second]}}
    driver, _ = shifter(aws, info)

    driver.shift([], [], 30)

    assert listener_weights(aws, pair.listener) == listener_weights(aws, second) == names(pair, 700, 300)
    (found,) = aws.elbv2.describe_listeners(ListenerArns=[second])["Listeners"]
    assert found["DefaultActions"][0]["ForwardConfig"]["TargetGroupStickinessConfig"] == stickiness
    assert driver.observe_shift([], []) == pytest.approx(30)

    aws.elbv2.modify_listener(ListenerArn=second, DefaultActions=[forward((pair.blue, 1), (pair.green, 1))])
    assert driver.observe_shift([], []) is None  # the listeners disagree: unknown, shift again
    driver.shift([], [], 30)
    assert driver.observe_shift([], []) == pytest.approx(30)


def test_pair_blocks_originals_in_the_original_group_and_allows_replacements_in_the_other(
    aws: Aws, pair: Pair
) -> None:
    old, new = aws.instances(2)
    aws.elbv2.register_targets(TargetGroupArn=pair.blue["TargetGroupArn"], Targets=[{"Id": old}])
    driver, _ = shifter(aws, pair.info)
    assert driver.name == f"{pair.blue['TargetGroupName']}+{pair.green['TargetGroupName']}"
    assert states(driver.observe([old, new])) == {old: IN, new: OUT}

    driver.allow(new)
    assert aws.registered(pair.green["TargetGroupArn"]) == {(new, 80)}
    assert states(driver.observe([old, new])) == {old: IN, new: IN}
    assert driver.observe_shift([], []) == 0  # letting a target in moves no request

    # Blocking an original first sends every request to the replacement group (an all-at-once
    # reroute; after a canary or linear shift nothing changes), then deregisters it.
    driver.block(old)
    driver.finish_block(old)
    assert listener_weights(aws, pair.listener) == names(pair, 0, 999)
    assert aws.registered(pair.blue["TargetGroupArn"]) == set()
    assert states(driver.observe([old, new])) == {old: OUT, new: IN}
    assert driver.timing() == HealthTiming(drain_limit=300.0, healthy_expected=5 * 30.0 + 30.0)

    # Giving the traffic back: the swapped pair lets the original in again to the original group, and
    # takes the replacement out of its group after sending every request back to the original one.
    back = driver.swapped()
    assert (back.original.name, back.replacement.name) == (
        pair.green["TargetGroupName"],
        pair.blue["TargetGroupName"],
    )
    back.allow(old)
    back.block(new)
    assert listener_weights(aws, pair.listener) == names(pair, 999, 0)
    assert aws.registered(pair.blue["TargetGroupArn"]) == {(old, 80)}
    assert aws.registered(pair.green["TargetGroupArn"]) == set()


def test_pair_orientation_follows_the_listener_and_is_kept_by_name(aws: Aws, pair: Pair) -> None:
    """After a deployment green serves; the next deployment's original group is green."""
    blue_name, green_name = pair.blue["TargetGroupName"], pair.green["TargetGroupName"]
    driver, _ = shifter(aws, pair.info)
    assert driver.oriented().original.name == blue_name

    driver.shift([], [], 100)
    turned = driver.oriented()
    assert (turned.original.name, turned.replacement.name) == (green_name, blue_name)
    turned.shift([], [], 10)
    assert listener_weights(aws, pair.listener) == names(pair, 100, 900)  # 10 % back to blue
    # Mid-shift, the kept name (not the weights) says which is which.
    assert driver.with_original(green_name).observe_shift([], []) == pytest.approx(10)
    assert driver.with_original(pair.green["TargetGroupArn"]).original.name == green_name
    with pytest.raises(TrafficMisconfigured, match="neither of them"):
        driver.with_original("other")


def test_pair_refuses_a_listener_it_does_not_own(aws: Aws, pair: Pair) -> None:
    other = aws.target_group()
    elsewhere = listener(aws, pair.load_balancer, 81, forward((pair.blue, 1), (other, 1)))
    fixed = listener(
        aws, pair.load_balancer, 82, {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}
    )
    for arn, message in [
        (elsewhere, f"forwards to other target groups too: {other['TargetGroupArn']}"),
        (fixed, "no default forward action"),
    ]:
        driver, modified = shifter(aws, {**pair.info, "prodTrafficRoute": {"listenerArns": [arn]}})
        with pytest.raises(TrafficMisconfigured, match=re.escape(message)):
            driver.shift([], [], 10)
        with pytest.raises(TrafficMisconfigured, match=re.escape(message)):
            driver.observe_shift([], [])
        assert modified == []
    missing = pair.listener.replace("listener/", "listener/x")
    driver, _ = shifter(aws, {**pair.info, "prodTrafficRoute": {"listenerArns": [missing]}})
    with pytest.raises(TrafficMisconfigured, match="ListenerNotFound"):
        driver.shift([], [], 10)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"targetGroups": [{"name": "a"}], "prodTrafficRoute": {"listenerArns": ["arn"]}}, "two named"),
        (
            {"targetGroups": [{"name": "a"}, {"name": "a"}], "prodTrafficRoute": {"listenerArns": ["arn"]}},
            "twice",
        ),
        ({"targetGroups": [{"name": "a"}, {"name": "b"}]}, "production listener"),
    ],
)
def test_pair_info_that_cannot_shift_is_refused(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(TrafficMisconfigured, match=message):
        target_group_pairs({"targetGroupPairInfoList": [entry]}, client=_offline_client)
    assert target_group_pairs({"targetGroupInfoList": [{"name": "a"}]}, client=_offline_client) == []


def test_a_single_target_group_or_classic_elb_cannot_shift(aws: Aws) -> None:
    group = TargetGroup(aws.target_group()["TargetGroupName"], aws.elbv2)
    classic = ClassicLoadBalancer(aws.classic(), aws.elb)
    for balancer in (group, classic):
        for call in (
            lambda b=balancer: b.shift(["a"], ["b"], 10),
            lambda b=balancer: b.observe_shift(["a"], ["b"]),
        ):
            with pytest.raises(
                TrafficMisconfigured, match=r"needs an HAProxy backend .* or an ELBv2 target group pair"
            ):
                call()
