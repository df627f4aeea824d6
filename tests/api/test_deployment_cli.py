"""The guide's ``aws deploy`` examples for configurations, groups, revisions and deployments, run with
the ``aws`` CLI from PyPI as a subprocess against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_deployment_targets import registered_instance

from support.names import unique

ROLE = "arn:aws:iam::444455556666:role/AnyCompany-service-role"


@pytest.fixture
def application(server) -> str:
    name = unique("WordPress_App")
    server.aws_json("deploy", "create-application", "--application-name", name)
    return name


def test_create_deployment_configs(server):
    """Guide L15062–15099: minimum healthy hosts, zonal configuration, traffic routing."""
    three_quarters = unique("ThreeQuartersHealthy")
    created = server.aws_json(
        "deploy", "create-deployment-config", "--deployment-config-name", three_quarters,
        "--minimum-healthy-hosts", "type=FLEET_PERCENT,value=75",
    )  # fmt: skip
    assert "deploymentConfigId" in created
    zonal = unique("300Total50PerAZ")
    server.aws_json(
        "deploy", "create-deployment-config", "--deployment-config-name", zonal,
        "--minimum-healthy-hosts", "type=HOST_COUNT,value=300",
        "--zonal-config",
        '{"monitorDurationInSeconds":3600,"minimumHealthyHostsPerZone":{"type":"HOST_COUNT","value":50}}',
    )  # fmt: skip
    canary = unique("Canary25Percent45Minutes")
    server.aws_json(
        "deploy", "create-deployment-config", "--deployment-config-name", canary,
        "--traffic-routing-config",
        "type=TimeBasedCanary,timeBasedCanary={canaryPercentage=25,canaryInterval=45}",
        "--compute-platform", "Lambda",
    )  # fmt: skip

    codedeploy = server.client("codedeploy")  # checks go through boto3; the guide's commands through the CLI
    info = server.aws_json("deploy", "get-deployment-config", "--deployment-config-name", three_quarters)
    assert info["deploymentConfigInfo"]["minimumHealthyHosts"] == {"type": "FLEET_PERCENT", "value": 75}
    info = codedeploy.get_deployment_config(deploymentConfigName=zonal)
    assert info["deploymentConfigInfo"]["zonalConfig"] == {
        "monitorDurationInSeconds": 3600,
        "minimumHealthyHostsPerZone": {"type": "HOST_COUNT", "value": 50},
    }
    info = codedeploy.get_deployment_config(deploymentConfigName=canary)
    assert info["deploymentConfigInfo"]["trafficRoutingConfig"] == {
        "type": "TimeBasedCanary",
        "timeBasedCanary": {"canaryPercentage": 25, "canaryInterval": 45},
    }
    listed = server.aws_json("deploy", "list-deployment-configs")[
        "deploymentConfigsList"
    ]  # the CLI pages itself
    assert {three_quarters, zonal, canary, "CodeDeployDefault.OneAtATime"} <= set(listed)

    server.aws_json("deploy", "delete-deployment-config", "--deployment-config-name", three_quarters)
    refused = server.aws(
        "deploy", "delete-deployment-config", "--deployment-config-name", "CodeDeployDefault.AllAtOnce"
    )
    assert refused.returncode != 0 and "InvalidOperationException" in refused.stderr


def test_create_and_update_deployment_groups(server, application):
    """Guide L16796–16872 and L16926–17033: EC2 and on-premises tag filters (the CLI's flag for the
    latter is --on-premises-instance-tag-filters), configuration, service role; update with
    --current-deployment-group-name, rename, outdated-instances strategy (L17152–17154)."""
    ec2_group, onprem_group = unique("WordPress_DG"), unique("OnPrem_DG")
    server.aws_json(
        "deploy", "create-deployment-group", "--application-name", application,
        "--deployment-group-name", ec2_group,
        "--deployment-config-name", "CodeDeployDefault.OneAtATime",
        "--ec2-tag-filters", "Key=Name,Value=CodeDeployDemo,Type=KEY_AND_VALUE",
        "--service-role-arn", ROLE,
    )  # fmt: skip
    server.aws_json(
        "deploy", "create-deployment-group", "--application-name", application,
        "--deployment-group-name", onprem_group,
        "--deployment-config-name", "CodeDeployDefault.HalfAtATime",
        "--on-premises-instance-tag-filters", "Key=Name,Value=CodeDeployDemo-OnPrem,Type=KEY_AND_VALUE",
        "--service-role-arn", ROLE,
    )  # fmt: skip
    info = server.aws_json(
        "deploy",
        "get-deployment-group",
        "--application-name",
        application,
        "--deployment-group-name",
        ec2_group,
    )["deploymentGroupInfo"]
    assert info["ec2TagFilters"] == [{"Key": "Name", "Value": "CodeDeployDemo", "Type": "KEY_AND_VALUE"}]
    assert info["deploymentConfigName"] == "CodeDeployDefault.OneAtATime"
    assert info["serviceRoleArn"] == ROLE
    info = server.aws_json(
        "deploy",
        "get-deployment-group",
        "--application-name",
        application,
        "--deployment-group-name",
        onprem_group,
    )["deploymentGroupInfo"]
    assert info["onPremisesInstanceTagFilters"] == [
        {"Key": "Name", "Value": "CodeDeployDemo-OnPrem", "Type": "KEY_AND_VALUE"}
    ]

    renamed = unique("WordPress_DG_renamed")
    server.aws_json(
        "deploy", "update-deployment-group", "--application-name", application,
        "--current-deployment-group-name", ec2_group, "--new-deployment-group-name", renamed,
        "--outdated-instances-strategy", "IGNORE",
    )  # fmt: skip
    groups = server.aws_json("deploy", "list-deployment-groups", "--application-name", application)
    assert sorted(groups["deploymentGroups"]) == sorted([renamed, onprem_group])
    info = server.aws_json(
        "deploy",
        "get-deployment-group",
        "--application-name",
        application,
        "--deployment-group-name",
        renamed,
    )["deploymentGroupInfo"]
    assert info["outdatedInstancesStrategy"] == "IGNORE"
    assert info["ec2TagFilters"] == [{"Key": "Name", "Value": "CodeDeployDemo", "Type": "KEY_AND_VALUE"}]


def test_triggers_from_a_cli_input_json_file(server, application, tmp_path: Path):
    """Guide L20826–20860 (create from --cli-input-json) and L21074–21075 (an empty
    --trigger-configurations deletes every trigger)."""
    group = unique("dep-group-ghi-789-2")
    request = {
        "applicationName": application,
        "deploymentConfigName": "CodeDeployDefault.OneAtATime",
        "deploymentGroupName": group,
        "ec2TagFilters": [{"Key": "Name", "Value": "Project-ABC", "Type": "KEY_AND_VALUE"}],
        "serviceRoleArn": ROLE,
        "triggerConfigurations": [
            {
                "triggerName": "Trigger-group-us-east-2",
                "triggerTargetArn": "arn:aws:sns:us-east-2:444455556666:us-east-deployments",
                "triggerEvents": ["DeploymentStart", "DeploymentSuccess", "DeploymentFailure"],
            }
        ],
    }
    path = tmp_path / "group.json"
    path.write_text(json.dumps(request))
    server.aws_json("deploy", "create-deployment-group", "--cli-input-json", f"file://{path}")
    codedeploy = server.client("codedeploy")
    info = codedeploy.get_deployment_group(applicationName=application, deploymentGroupName=group)[
        "deploymentGroupInfo"
    ]
    assert info["triggerConfigurations"] == request["triggerConfigurations"]
    server.aws_json(
        "deploy", "update-deployment-group", "--application-name", application,
        "--current-deployment-group-name", group, "--trigger-configurations",
    )  # fmt: skip
    info = codedeploy.get_deployment_group(applicationName=application, deploymentGroupName=group)[
        "deploymentGroupInfo"
    ]
    assert info["triggerConfigurations"] == []


def test_revisions_and_deployments(server, application):
    """Guide L18077–18111 (register-application-revision), L17922–17935 (create-deployment with
    --s3-location), L19093–19175 (get-deployment, list-deployments), L19367 (stop-deployment)."""
    group = unique("WordPress_DG")
    codedeploy = server.client("codedeploy")
    codedeploy.create_deployment_group(  # one instance whose agent never answers: deployments stay active
        applicationName=application,
        deploymentGroupName=group,
        serviceRoleArn=ROLE,
        onPremisesInstanceTagFilters=[registered_instance(codedeploy)],
    )
    server.aws_json(
        "deploy", "register-application-revision", "--application-name", application,
        "--s3-location", "bucket=codedeploydemobucket,key=WordPressApp.zip,bundleType=zip",
        "--description", "This is a revision for the application WordPress_App",
    )  # fmt: skip
    server.aws_json(
        "deploy", "register-application-revision", "--application-name", application,
        "--github-location", f"repository=awslabs/aws-codedeploy-sample-tomcat,commitId={'b' * 40}",
    )  # fmt: skip
    revision = server.aws_json(
        "deploy", "get-application-revision", "--application-name", application,
        "--s3-location", "bucket=codedeploydemobucket,key=WordPressApp.zip,bundleType=zip",
    )  # fmt: skip
    assert revision["revisionInfo"]["description"] == "This is a revision for the application WordPress_App"
    listed = server.aws_json(
        "deploy", "list-application-revisions", "--application-name", application,
        "--s3-bucket", "codedeploydemobucket", "--deployed", "exclude",
        "--sort-by", "registerTime", "--sort-order", "descending",
    )  # fmt: skip
    assert [r["s3Location"]["key"] for r in listed["revisions"]] == ["WordPressApp.zip"]

    created = server.aws_json(
        "deploy", "create-deployment", "--application-name", application,
        "--deployment-config-name", "CodeDeployDefault.OneAtATime", "--deployment-group-name", group,
        "--s3-location", "bucket=codedeploydemobucket,key=WordPressApp.zip,bundleType=zip",
        "--description", "My demo deployment", "--file-exists-behavior", "RETAIN",
        "--ignore-application-stop-failures",
    )  # fmt: skip
    deployment_id = created["deploymentId"]
    info = server.aws_json("deploy", "get-deployment", "--deployment-id", deployment_id)["deploymentInfo"]
    assert info["status"] in ("Created", "InProgress")  # the engine may have started it
    assert info["revision"]["s3Location"] == {
        "bucket": "codedeploydemobucket",
        "key": "WordPressApp.zip",
        "bundleType": "zip",
    }
    assert info["fileExistsBehavior"] == "RETAIN"
    assert info["ignoreApplicationStopFailures"] is True
    listed = server.aws_json(
        "deploy", "list-deployments", "--application-name", application, "--deployment-group-name", group,
        "--include-only-statuses", "Created", "Queued", "InProgress",
    )  # fmt: skip
    assert listed["deployments"] == [deployment_id]
    with pytest.raises(codedeploy.exceptions.DeploymentLimitExceededException):
        codedeploy.create_deployment(
            applicationName=application,
            deploymentGroupName=group,
            revision={
                "revisionType": "GitHub",
                "gitHubLocation": {"repository": "a/b", "commitId": "c" * 40},
            },
        )
    # No lifecycle event runs on an agent (the instance has none): the stop takes effect at once.
    stopped = server.aws_json("deploy", "stop-deployment", "--deployment-id", deployment_id)
    assert stopped["status"] == "Succeeded"


def test_delete_application_cascades(server, application):
    """Guide L15967–16012: deleting an application removes its deployment groups and deployment details."""
    group = unique("WordPress_DG")
    server.aws_json(
        "deploy", "create-deployment-group", "--application-name", application,
        "--deployment-group-name", group, "--service-role-arn", ROLE,
    )  # fmt: skip
    deployment_id = server.aws_json(
        "deploy", "create-deployment", "--application-name", application, "--deployment-group-name", group,
        "--s3-location", "bucket=codedeploydemobucket,key=WordPressApp.zip,bundleType=zip",
    )["deploymentId"]  # fmt: skip
    server.aws_json("deploy", "delete-application", "--application-name", application)
    gone = server.aws("deploy", "get-deployment", "--deployment-id", deployment_id)
    assert gone.returncode != 0 and "DeploymentDoesNotExistException" in gone.stderr
    gone = server.aws(
        "deploy", "get-deployment-group", "--application-name", application, "--deployment-group-name", group
    )
    assert gone.returncode != 0 and "ApplicationDoesNotExistException" in gone.stderr
    server.aws_json("deploy", "create-application", "--application-name", application)
    assert (
        server.aws_json("deploy", "list-deployment-groups", "--application-name", application)[
            "deploymentGroups"
        ]
        == []
    )
    assert (
        server.aws_json("deploy", "list-application-revisions", "--application-name", application)[
            "revisions"
        ]
        == []
    )
