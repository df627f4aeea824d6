"""``opendeploy targets``: the registered instances a deployment group's tags select, on the guide's four
tag-group examples (guide L11395–11401, L11405–11636), for instances registered and tagged through boto3.

The server is this module's own, so the registered instances are exactly the fleet below.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cli_helpers import opendeploy

from support.names import unique
from support.server import ServerProcess, wait_for

SERVICE_ROLE = "arn:aws:iam::111122223333:role/CodeDeployServiceRole"

# The fleet: names say the tags. Example 4's six instances are the guide's own (L11585–11600).
FLEET: dict[str, dict[str, str]] = {
    "abc-north-medium": {"Name": "AppVersion-ABC", "Region": "North", "Type": "t2.medium"},
    "abc-south-large": {"Name": "AppVersion-ABC", "Region": "South", "Type": "t2.large"},
    "abc-plain": {"Name": "AppVersion-ABC", "Owner": "ops"},
    "xyz-north-medium": {"Name": "AppVersion-XYZ", "Region": "North", "Type": "t2.medium"},
    "beta-north-medium": {"Environment": "Beta", "Region": "North", "Type": "t2.medium"},
    "staging-east-large": {"Environment": "Staging", "Region": "East", "Type": "t2.large"},
    "staging-south-large": {"Environment": "Staging", "Region": "South", "Type": "t2.large"},
    "beta-west-medium": {"Environment": "Beta", "Region": "West", "Type": "t2.medium"},
    "staging-east-micro": {"Environment": "Staging", "Region": "East", "Type": "t2.micro"},
    "production-south-large": {"Environment": "Production", "Region": "South", "Type": "t2.large"},
}
# Matches every example but is deregistered: never selected.
DEREGISTERED = ("gone-abc-north-medium", {"Name": "AppVersion-ABC", "Region": "North", "Type": "t2.medium"})


def _tags(key: str, *values: str) -> list[dict[str, str]]:
    return [{"Type": "KEY_AND_VALUE", "Key": key, "Value": value} for value in values]


EXAMPLES: dict[str, tuple[list[list[dict[str, str]]], set[str]]] = {
    # Example 1: single tag group, single tag — every instance tagged Name=AppVersion-ABC.
    "example 1": (
        [_tags("Name", "AppVersion-ABC")],
        {"abc-north-medium", "abc-south-large", "abc-plain"},
    ),
    # Example 2: single tag group, multiple tags — any of Region North, South, East; not West.
    "example 2": (
        [_tags("Region", "North", "South", "East")],
        {
            "abc-north-medium",
            "abc-south-large",
            "xyz-north-medium",
            "beta-north-medium",
            "staging-east-large",
            "staging-south-large",
            "staging-east-micro",
            "production-south-large",
        },
    ),
    # Example 3: three tag groups of one tag — all three needed.
    "example 3": (
        [_tags("Name", "AppVersion-ABC"), _tags("Region", "North"), _tags("Type", "t2.medium")],
        {"abc-north-medium"},
    ),
    # Example 4: three tag groups of several tags — one tag of each group; the guide's three included
    # instances, not its three excluded ones.
    "example 4": (
        [
            _tags("Environment", "Beta", "Staging"),
            _tags("Region", "North", "South", "East"),
            _tags("Type", "t2.medium", "t2.large"),
        ],
        {"beta-north-medium", "staging-east-large", "staging-south-large"},
    ),
}


def _register(codedeploy: Any, server: ServerProcess, name: str, tags: dict[str, str]) -> None:
    codedeploy.register_on_premises_instance(
        instanceName=name, iamUserArn=f"arn:aws:iam::{server.account_id}:user/{name}"
    )
    codedeploy.add_tags_to_on_premises_instances(
        instanceNames=[name], tags=[{"Key": key, "Value": value} for key, value in tags.items()]
    )


@pytest.fixture(scope="module")
def fleet(cli_server: ServerProcess) -> str:
    """The fleet registered and tagged; the application (Server) its groups belong to."""
    codedeploy = cli_server.client("codedeploy")
    for name, tags in FLEET.items():
        _register(codedeploy, cli_server, name, tags)
    _register(codedeploy, cli_server, *DEREGISTERED)
    codedeploy.deregister_on_premises_instance(instanceName=DEREGISTERED[0])
    application = unique("app")
    codedeploy.create_application(applicationName=application, computePlatform="Server")
    return application


def _group(server: ServerProcess, application: str, **criteria: Any) -> str:
    group = unique("group")
    server.client("codedeploy").create_deployment_group(
        applicationName=application, deploymentGroupName=group, serviceRoleArn=SERVICE_ROLE, **criteria
    )
    return group


def _targets_json(server: ServerProcess, application: str, group: str) -> dict[str, Any]:
    result = opendeploy(
        server, "targets", "--application-name", application, "--deployment-group-name", group,
        "--output", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("example", sorted(EXAMPLES))
@pytest.mark.parametrize(
    ("member", "list_member"),
    [("onPremisesTagSet", "onPremisesTagSetList"), ("ec2TagSet", "ec2TagSetList")],
)
def test_the_guides_tag_group_examples(
    cli_server: ServerProcess, fleet: str, example: str, member: str, list_member: str
) -> None:
    # The guide writes the examples as ec2TagSet; opendeploy's hosts are all registered instances,
    # which an EC2 tag set selects by their tags just as an on-premises tag set does.
    tag_groups, expected = EXAMPLES[example]
    group = _group(cli_server, fleet, **{member: {list_member: tag_groups}})

    document = _targets_json(cli_server, fleet, group)

    assert {i["instanceName"] for i in document["instances"]} == expected
    assert document["registeredInstances"] == len(FLEET)  # the deregistered one is not counted
    kind = "onPremises" if member == "onPremisesTagSet" else "ec2"
    assert all(i["matchedBy"] == [kind] for i in document["instances"])
    for instance in document["instances"]:
        name = instance["instanceName"]
        assert {t["Key"]: t["Value"] for t in instance["tags"]} == FLEET[name]
        assert instance["instanceArn"].endswith(f":instance/{name}")


def test_a_filter_list_is_one_tag_group_and_the_table_shows_exactly_the_matches(
    cli_server: ServerProcess, fleet: str
) -> None:
    group = _group(
        cli_server, fleet, onPremisesInstanceTagFilters=_tags("Environment", "Staging", "Production")
    )
    expected = {"staging-east-large", "staging-south-large", "staging-east-micro", "production-south-large"}

    result = opendeploy(cli_server, "targets", "--application-name", fleet, "--deployment-group-name", group)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "on-premises tags: Environment=Staging OR Environment=Production" in result.stdout
    assert f"{len(expected)} of {len(FLEET)} registered instances match." in lines
    shown = {
        line.split()[0] for line in lines if line.split() and line.split()[0] in {*FLEET, DEREGISTERED[0]}
    }
    assert shown == expected
    row = next(line for line in lines if line.startswith("staging-east-micro"))
    assert "on-premises tags" in row and "Environment=Staging, Region=East, Type=t2.micro" in row


def test_the_table_describes_a_tag_set_as_groups_anded(cli_server: ServerProcess, fleet: str) -> None:
    tag_groups, expected = EXAMPLES["example 4"]
    group = _group(cli_server, fleet, onPremisesTagSet={"onPremisesTagSetList": tag_groups})

    result = opendeploy(cli_server, "targets", "--application-name", fleet, "--deployment-group-name", group)

    assert result.returncode == 0, result.stderr
    assert (
        "on-premises tags: (Environment=Beta OR Environment=Staging) AND (Region=North OR Region=South "
        "OR Region=East) AND (Type=t2.medium OR Type=t2.large)"
    ) in result.stdout
    assert f"{len(expected)} of {len(FLEET)} registered instances match." in result.stdout


def test_what_targets_shows_is_what_a_deployment_targets(cli_server: ServerProcess, fleet: str) -> None:
    tag_groups, expected = EXAMPLES["example 4"]
    group = _group(cli_server, fleet, onPremisesTagSet={"onPremisesTagSetList": tag_groups})
    shown = {i["instanceName"] for i in _targets_json(cli_server, fleet, group)["instances"]}
    codedeploy = cli_server.client("codedeploy")
    deployment_id = codedeploy.create_deployment(
        applicationName=fleet,
        deploymentGroupName=group,
        revision={
            "revisionType": "S3",
            "s3Location": {"bucket": "bundles", "key": "app.zip", "bundleType": "zip"},
        },
    )["deploymentId"]
    try:
        targeted = wait_for(
            lambda: codedeploy.list_deployment_targets(deploymentId=deployment_id)["targetIds"],
            timeout=30,
            message="the deployment's targets",
        )
        assert set(targeted) == shown == expected
    finally:
        codedeploy.stop_deployment(deploymentId=deployment_id)


def test_a_group_without_tags_matches_nothing_and_says_why(cli_server: ServerProcess, fleet: str) -> None:
    group = _group(cli_server, fleet)

    table = opendeploy(cli_server, "targets", "--application-name", fleet, "--deployment-group-name", group)

    assert table.returncode == 0, table.stderr
    assert "no instances by tag: the group has no tag filters and no tag set" in table.stdout
    assert f"0 of {len(FLEET)} registered instances match." in table.stdout
    assert _targets_json(cli_server, fleet, group)["instances"] == []


def test_an_unknown_group_is_a_clear_error(cli_server: ServerProcess, fleet: str) -> None:
    result = opendeploy(
        cli_server, "targets", "--application-name", fleet, "--deployment-group-name", "no-such-group"
    )

    assert result.returncode == 1
    assert "GetDeploymentGroup failed: DeploymentGroupDoesNotExistException" in result.stderr
    assert result.stdout == ""
