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
    load_balancers,
    target_description,
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
