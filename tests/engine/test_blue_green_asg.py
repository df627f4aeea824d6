"""Blue/green deployments that copy the deployment group's Auto Scaling group (greenFleetProvisioningOption
COPY_AUTO_SCALING_GROUP, issue 11), on the engine's virtual clock, with the server's real Auto Scaling
client (``integrations.aws_clients``, pointed at a moto server by ``AWS_ENDPOINT_URL_AUTO_SCALING``) and
the in-memory load balancer (``FakeLoadBalancer``).

moto launches fake EC2 instances for a group with a launch template, InService and Healthy at once. The
test stands in for their boot script: it registers an on-premises instance named with each instance id
(and gives it a ``FakeAgent``). What is checked, read back from moto and the database: the copy's name,
size, launch template and subnets; the install on the copy's instances and the reroute to them; the
original group deleted and its instances deregistered with TERMINATE, and the deployment group naming
the copy; a copy whose instances never all register failing the deployment after the wait, naming them;
and a restarted engine that lost its record of the copy finding it instead of creating it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from test_blue_green_engine import BACKEND, BLUE_GREEN, ORIGINAL_EVENTS, REPLACEMENT_EVENTS, Balancers

from opendeploy.engine.reconciler import Reconciler
from opendeploy.integrations import aws_clients
from opendeploy.settings import TrafficSettings
from opendeploy.store.models import Deployment, DeploymentGroup, OnPremisesInstance
from support.engine_harness import EngineHarness, FakeAgent
from support.moto import ACCESS_KEY, SECRET_KEY, MotoServer
from support.names import unique

COPY = {"greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"}}
TERMINATE = {**COPY, "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE"}}
KEEP_ALIVE = {**COPY, "terminateBlueInstancesOnDeploymentSuccess": {"action": "KEEP_ALIVE"}}
POLL = 10.0  # EngineSettings.provision_poll_interval
WAIT = 3600.0  # EngineSettings.provision_wait


# --- moto ---------------------------------------------------------------------------------------------


@dataclass
class Cloud:
    moto: MotoServer
    autoscaling: Any
    subnet: str
    template: str  # a launch template id


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    with MotoServer(tmp_path_factory.mktemp("moto")) as moto:
        ec2 = moto.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")
        image = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
        template = ec2.create_launch_template(
            LaunchTemplateName=unique("web"),
            LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro"},
        )["LaunchTemplate"]["LaunchTemplateId"]
        yield Cloud(moto, moto.client("autoscaling"), subnet["Subnet"]["SubnetId"], template)


@pytest.fixture(autouse=True)
def server_aws_environment(cloud: Cloud, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """The server's AWS clients configured the standard way, only Auto Scaling pointed at moto."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_AUTO_SCALING", cloud.moto.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", cloud.moto.region)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    aws_clients.reset()
    yield
    aws_clients.reset()


def original_group(cloud: Cloud, size: int = 2) -> str:
    """A new Auto Scaling group of ``size`` instances launched from the launch template."""
    name = unique("web-asg")
    cloud.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateId": cloud.template, "Version": "$Latest"},
        MinSize=1,
        MaxSize=4,
        DesiredCapacity=size,
        VPCZoneIdentifier=cloud.subnet,
    )
    return name


def described(cloud: Cloud, name: str) -> dict[str, Any] | None:
    groups = cloud.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return groups[0] if groups else None


def instance_ids(cloud: Cloud, name: str) -> list[str]:
    group = described(cloud, name)
    assert group is not None, name
    return sorted(instance["InstanceId"] for instance in group["Instances"])


# --- the engine ---------------------------------------------------------------------------------------


@pytest.fixture
def balancers() -> Balancers:
    return Balancers(serving=())


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


def register(harness: EngineHarness, names: list[str]) -> dict[str, FakeAgent]:
    """What an instance's boot script does: register it under its EC2 instance id, start its agent."""
    with harness.database.transaction() as session:
        for name in names:
            session.add(
                OnPremisesInstance(
                    name=name,
                    iam_user_arn=f"arn:aws:iam::000000000000:user/{name}",
                    register_time=harness.now,
                )
            )
    return {name: FakeAgent(harness, name) for name in names}


def asg_fleet(
    harness: EngineHarness, balancers: Balancers, cloud: Cloud, options: dict[str, Any]
) -> tuple[str, str, dict[str, FakeAgent]]:
    """A blue/green group naming a new Auto Scaling group (and no instance by tags) whose instances are
    registered and serve; (group id, Auto Scaling group name, their agents)."""
    source = original_group(cloud)
    group_id, _ = harness.fleet(
        [],
        "CodeDeployDefault.OneAtATime",
        load_balancer_info=BACKEND,
        blue_green_deployment_configuration=options,
        auto_scaling_groups=[source],
    )
    with harness.database.transaction() as session:
        session.get(DeploymentGroup, group_id).deployment_style = BLUE_GREEN
    originals = instance_ids(cloud, source)
    for name in originals:
        balancers.web.add_target(name)
    return group_id, source, register(harness, originals)


def deploy(harness: EngineHarness, group_id: str, options: dict[str, Any]) -> str:
    return harness.deploy(group_id, load_balancer_info=BACKEND, blue_green_deployment_configuration=options)


def copy_of(harness: EngineHarness, group_id: str, deployment_id: str) -> str:
    with harness.database.transaction(write=False) as session:
        return f"CodeDeploy_{session.get(DeploymentGroup, group_id).name}_{deployment_id}"


def settle(harness: EngineHarness, agents: dict[str, FakeAgent]) -> None:
    for _ in range(200):
        moved = 0
        for agent in agents.values():
            while (command := agent.poll()) is not None:
                assert agent.acknowledge(command) == "InProgress"
                agent.complete(command)
                moved += 1
        moved += harness.run()
        if not moved:
            return
    raise AssertionError("the deployment kept moving without settling")


def auto_scaling_groups(harness: EngineHarness, group_id: str) -> list[str] | None:
    """The Auto Scaling groups the deployment group names now."""
    with harness.database.transaction(write=False) as session:
        return session.get(DeploymentGroup, group_id).auto_scaling_groups


# --- the scenarios ------------------------------------------------------------------------------------


def test_the_copy_is_provisioned_deployed_to_and_replaces_the_original_group(
    harness: EngineHarness, balancers: Balancers, cloud: Cloud
) -> None:
    group_id, source, originals = asg_fleet(harness, balancers, cloud, TERMINATE)
    deployment_id = deploy(harness, group_id, TERMINATE)

    # The copy: the guide's name, the original's launch template and subnet, as many instances as it
    # has healthy ones.
    name = copy_of(harness, group_id, deployment_id)
    copy = described(cloud, name)
    assert copy is not None
    assert copy["DesiredCapacity"] == 2
    assert copy["LaunchTemplate"]["LaunchTemplateId"] == cloud.template
    assert copy["VPCZoneIdentifier"] == cloud.subnet
    replacements = instance_ids(cloud, name)
    assert len(replacements) == 2 and not set(replacements) & set(originals)
    info = harness.deployment(deployment_id)
    assert info["status"] == "InProgress", info
    assert all(agent.poll() is None for agent in originals.values())

    # Their boot scripts register them a little later; the next look finds them and the install starts.
    harness.advance(POLL)
    assert harness.deployment(deployment_id)["status"] == "InProgress"
    agents = {**originals, **register(harness, replacements)}
    assert all(agent.poll() is None for agent in agents.values())
    harness.advance(POLL)
    settle(harness, agents)

    info = harness.deployment(deployment_id)
    assert info["status"] == "Succeeded", info
    for host in replacements:
        assert harness.events(deployment_id, host) == [(event, "Succeeded") for event in REPLACEMENT_EVENTS]
        assert harness.instance(deployment_id, host)["instanceLabel"] == "Green"
    for host in originals:
        assert harness.events(deployment_id, host) == [(event, "Succeeded") for event in ORIGINAL_EVENTS]
        assert harness.instance(deployment_id, host)["instanceLabel"] == "Blue"
    assert balancers.serving([*originals, *replacements]) == set(replacements)
    # TERMINATE: the original group is gone, its instances deregistered; the group names the copy.
    assert described(cloud, source) is None
    assert described(cloud, name) is not None
    with harness.database.transaction(write=False) as session:
        gone = {host: session.get(OnPremisesInstance, host).deregister_time is not None for host in agents}
    assert gone == {host: host in originals for host in agents}
    assert auto_scaling_groups(harness, group_id) == [name]
    deleted = f"The original Auto Scaling group {source} was deleted (its instances terminated)."
    assert deleted in info["deploymentStatusMessages"]


def test_with_keep_alive_the_original_group_stays_and_the_deployment_group_names_the_copy(
    harness: EngineHarness, balancers: Balancers, cloud: Cloud
) -> None:
    group_id, source, originals = asg_fleet(harness, balancers, cloud, KEEP_ALIVE)
    deployment_id = deploy(harness, group_id, KEEP_ALIVE)
    name = copy_of(harness, group_id, deployment_id)
    agents = {**originals, **register(harness, instance_ids(cloud, name))}
    harness.advance(POLL)
    settle(harness, agents)

    assert harness.deployment(deployment_id)["status"] == "Succeeded"
    assert instance_ids(cloud, source) == sorted(originals)
    assert auto_scaling_groups(harness, group_id) == [name]


def test_a_copy_whose_instances_do_not_all_register_fails_after_the_wait_naming_them(
    harness: EngineHarness, balancers: Balancers, cloud: Cloud
) -> None:
    group_id, source, originals = asg_fleet(harness, balancers, cloud, TERMINATE)
    deployment_id = deploy(harness, group_id, TERMINATE)
    late, never = instance_ids(cloud, copy_of(harness, group_id, deployment_id))
    agents = {**originals, **register(harness, [late])}

    harness.advance(WAIT - 1.0)
    assert harness.deployment(deployment_id)["status"] == "InProgress"
    harness.advance(1.0)

    info = harness.deployment(deployment_id)
    assert info["status"] == "Failed", info
    assert info["errorInformation"]["code"] == "TIMEOUT"
    message = info["errorInformation"]["message"]
    assert f"not registered: {never}" in message and late not in message
    assert all(agent.poll() is None for agent in agents.values())
    # Nothing was touched: the original group and instances still serve.
    assert instance_ids(cloud, source) == sorted(originals)
    assert balancers.serving(list(originals)) == set(originals)
    assert auto_scaling_groups(harness, group_id) == [source]


def test_a_restarted_engine_that_lost_its_record_of_the_copy_finds_it_again(
    harness: EngineHarness, balancers: Balancers, cloud: Cloud
) -> None:
    group_id, source, originals = asg_fleet(harness, balancers, cloud, KEEP_ALIVE)
    deployment_id = deploy(harness, group_id, KEEP_ALIVE)
    name = copy_of(harness, group_id, deployment_id)
    first = instance_ids(cloud, name)

    # As if the engine had died after creating the copy, before its transaction committed: the record
    # says Provision with no copy made; a new engine (new AWS clients) takes the step again.
    with harness.database.transaction() as session:
        deployment = session.get(Deployment, deployment_id)
        state = dict(deployment.strategy_state or {})
        state["extra"] = {k: v for k, v in state["extra"].items() if k != "originalInstances"}
        session.execute(
            update(Deployment)
            .where(Deployment.id == deployment_id)
            .values(strategy_state=state, engine_due_at=harness.now)
        )
    aws_clients.reset()
    harness.reconciler = Reconciler(harness.database, harness.settings)
    harness.run()

    copies = [
        g["AutoScalingGroupName"]
        for g in cloud.autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]
        if g["AutoScalingGroupName"].startswith("CodeDeploy_") and deployment_id in g["AutoScalingGroupName"]
    ]
    assert copies == [name]
    assert instance_ids(cloud, name) == first  # not launched again
    info = harness.deployment(deployment_id)
    assert any(f"{name} was found as the copy of {source}" in m for m in info["deploymentStatusMessages"])

    agents = {**originals, **register(harness, first)}
    harness.advance(POLL)
    settle(harness, agents)
    assert harness.deployment(deployment_id)["status"] == "Succeeded"
    assert balancers.serving([*originals, *first]) == set(first)


def test_a_group_naming_no_auto_scaling_group_fails_at_start(
    harness: EngineHarness, balancers: Balancers
) -> None:
    group_id, agents = harness.fleet(
        ["host-1"], load_balancer_info=BACKEND, blue_green_deployment_configuration=KEEP_ALIVE
    )
    with harness.database.transaction() as session:
        session.get(DeploymentGroup, group_id).deployment_style = BLUE_GREEN
    deployment_id = deploy(harness, group_id, KEEP_ALIVE)
    info = harness.deployment(deployment_id)
    assert info["status"] == "Failed", info
    assert info["errorInformation"]["code"] == "AUTO_SCALING_CONFIGURATION"
    assert "exactly one Auto Scaling group" in info["errorInformation"]["message"]
    assert all(agent.poll() is None for agent in agents)
