"""Applications through boto3 and the aws CLI against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest

from support.names import unique


def test_create_get_list_batch_get(server, codedeploy):
    before = time.time()
    server_app, lambda_app = unique("app"), unique("app")
    created = codedeploy.create_application(applicationName=server_app)
    codedeploy.create_application(applicationName=lambda_app, computePlatform="Lambda")

    info = codedeploy.get_application(applicationName=server_app)["application"]
    assert info["applicationId"] == created["applicationId"]
    assert info["applicationName"] == server_app
    assert info["computePlatform"] == "Server"  # the default
    assert info["linkedToGitHub"] is False
    assert before - 1 <= info["createTime"].timestamp() <= time.time() + 1

    names = [
        n for page in codedeploy.get_paginator("list_applications").paginate() for n in page["applications"]
    ]
    assert {server_app, lambda_app} <= set(names)
    assert names == sorted(names)

    batch = codedeploy.batch_get_applications(applicationNames=[lambda_app, server_app])["applicationsInfo"]
    assert [(a["applicationName"], a["computePlatform"]) for a in batch] == [
        (lambda_app, "Lambda"),
        (server_app, "Server"),
    ]


def test_ecs_application(codedeploy):
    name = unique("ecs")
    codedeploy.create_application(applicationName=name, computePlatform="ECS")
    assert codedeploy.get_application(applicationName=name)["application"]["computePlatform"] == "ECS"


def test_name_is_unique(codedeploy):
    name = unique("dup")
    codedeploy.create_application(applicationName=name)
    with pytest.raises(codedeploy.exceptions.ApplicationAlreadyExistsException):
        codedeploy.create_application(applicationName=name, computePlatform="Lambda")


def test_invalid_names_and_platform(codedeploy):
    with pytest.raises(codedeploy.exceptions.InvalidApplicationNameException, match="too long"):
        codedeploy.create_application(applicationName="a" * 101)
    with pytest.raises(codedeploy.exceptions.InvalidApplicationNameException, match="not allowed"):
        codedeploy.create_application(applicationName="has space")
    # boto3 checks the enum's type only, so the server must refuse an unknown platform itself.
    with pytest.raises(codedeploy.exceptions.InvalidComputePlatformException, match="Server, Lambda, ECS"):
        codedeploy.create_application(applicationName=unique("p"), computePlatform="Mainframe")


def test_missing_application(codedeploy):
    missing = unique("missing")
    with pytest.raises(codedeploy.exceptions.ApplicationDoesNotExistException, match=missing):
        codedeploy.get_application(applicationName=missing)
    existing = unique("app")
    codedeploy.create_application(applicationName=existing)
    with pytest.raises(codedeploy.exceptions.ApplicationDoesNotExistException, match=missing):
        codedeploy.batch_get_applications(applicationNames=[existing, missing])
    with pytest.raises(codedeploy.exceptions.ApplicationDoesNotExistException):
        codedeploy.update_application(applicationName=missing, newApplicationName=unique("new"))


def test_batch_get_limit(server, codedeploy):
    names = [f"n{i}" for i in range(101)]
    with pytest.raises(codedeploy.exceptions.BatchLimitExceededException, match="100"):
        codedeploy.batch_get_applications(applicationNames=names)
    with pytest.raises(codedeploy.exceptions.ApplicationNameRequiredException):
        codedeploy.batch_get_applications(applicationNames=[])


def test_rename(codedeploy):
    old, new, taken = unique("old"), unique("new"), unique("taken")
    app_id = codedeploy.create_application(applicationName=old)["applicationId"]
    codedeploy.create_application(applicationName=taken)
    with pytest.raises(codedeploy.exceptions.ApplicationAlreadyExistsException):
        codedeploy.update_application(applicationName=old, newApplicationName=taken)
    with pytest.raises(codedeploy.exceptions.ApplicationNameRequiredException):
        codedeploy.update_application(applicationName=old)

    codedeploy.update_application(applicationName=old, newApplicationName=new)
    assert codedeploy.get_application(applicationName=new)["application"]["applicationId"] == app_id
    with pytest.raises(codedeploy.exceptions.ApplicationDoesNotExistException):
        codedeploy.get_application(applicationName=old)
    # Renaming to the same name changes nothing and is not an error.
    codedeploy.update_application(applicationName=new, newApplicationName=new)


def test_delete(codedeploy):
    name = unique("del")
    codedeploy.create_application(applicationName=name)
    codedeploy.delete_application(applicationName=name)
    with pytest.raises(codedeploy.exceptions.ApplicationDoesNotExistException):
        codedeploy.get_application(applicationName=name)
    # Decision (the model lists no ApplicationDoesNotExistException for DeleteApplication):
    # deleting an application that does not exist succeeds, so a retried delete is harmless.
    codedeploy.delete_application(applicationName=name)
    # The name is free again at once.
    codedeploy.create_application(applicationName=name)


def test_delete_cascades_to_groups_deployments_revisions_and_tags(server, codedeploy):
    name, group = unique("cascade"), unique("group")
    codedeploy.create_application(applicationName=name, tags=[{"Key": "team", "Value": "a"}])
    codedeploy.create_deployment_group(
        applicationName=name,
        deploymentGroupName=group,
        serviceRoleArn=f"arn:aws:iam::{server.account_id}:role/CodeDeployDemo",
        tags=[{"Key": "tier", "Value": "web"}],
    )
    group_arn = f"arn:aws:codedeploy:{server.region}:{server.account_id}:deploymentgroup:{name}/{group}"
    assert codedeploy.list_tags_for_resource(ResourceArn=group_arn)["Tags"] == [
        {"Key": "tier", "Value": "web"}
    ]

    revision = {
        "revisionType": "S3",
        "s3Location": {"bucket": "releases", "key": "app.zip", "bundleType": "zip"},
    }
    deployment_id = codedeploy.create_deployment(
        applicationName=name, deploymentGroupName=group, revision=revision
    )["deploymentId"]

    codedeploy.delete_application(applicationName=name)
    # Its deployments and revisions went with it.
    with pytest.raises(codedeploy.exceptions.DeploymentDoesNotExistException):
        codedeploy.get_deployment(deploymentId=deployment_id)

    # A new application and group with the same names start empty: nothing of the old ones survived.
    codedeploy.create_application(applicationName=name)
    with pytest.raises(codedeploy.exceptions.DeploymentGroupDoesNotExistException):
        codedeploy.get_deployment_group(applicationName=name, deploymentGroupName=group)
    assert codedeploy.list_deployment_groups(applicationName=name)["deploymentGroups"] == []
    assert codedeploy.list_application_revisions(applicationName=name)["revisions"] == []
    app_arn = f"arn:aws:codedeploy:{server.region}:{server.account_id}:application:{name}"
    assert codedeploy.list_tags_for_resource(ResourceArn=app_arn)["Tags"] == []
    codedeploy.create_deployment_group(
        applicationName=name,
        deploymentGroupName=group,
        serviceRoleArn=f"arn:aws:iam::{server.account_id}:role/CodeDeployDemo",
    )
    assert codedeploy.list_tags_for_resource(ResourceArn=group_arn)["Tags"] == []


def test_application_quota(server_factory):
    server = server_factory("sqlite", extra_args=["--quota", "applications_per_account=2"])
    codedeploy = server.client()
    codedeploy.create_application(applicationName="one")
    codedeploy.create_application(applicationName="two")
    with pytest.raises(codedeploy.exceptions.ApplicationLimitExceededException, match="2"):
        codedeploy.create_application(applicationName="three")
    codedeploy.delete_application(applicationName="one")
    codedeploy.create_application(applicationName="three")


def test_guide_cli_examples(server):
    """The guide's commands for applications, run through the aws CLI with only the profile."""
    name, renamed, other = unique("WordPress_App"), unique("WordPress_App2"), unique("Other_App")
    app_id = server.aws_json("deploy", "create-application", "--application-name", name)["applicationId"]
    server.aws_json(
        "deploy", "create-application", "--application-name", other, "--compute-platform", "Lambda"
    )

    info = server.aws_json("deploy", "get-application", "--application-name", name)["application"]
    assert info["applicationId"] == app_id and info["computePlatform"] == "Server"
    assert name in server.aws_json("deploy", "list-applications")["applications"]
    batch = server.aws_json("deploy", "batch-get-applications", "--application-names", name, other)
    assert {a["applicationName"] for a in batch["applicationsInfo"]} == {name, other}

    server.aws_json(
        "deploy", "update-application", "--application-name", name, "--new-application-name", renamed
    )
    assert (
        server.aws_json("deploy", "get-application", "--application-name", renamed)["application"][
            "applicationId"
        ]
        == app_id
    )

    codedeploy = server.client()
    codedeploy.create_deployment_group(
        applicationName=renamed,
        deploymentGroupName="WordPress_DepGroup",
        serviceRoleArn=f"arn:aws:iam::{server.account_id}:role/CodeDeployDemo",
    )
    server.aws_json("deploy", "delete-application", "--application-name", renamed)
    missing = server.aws("deploy", "get-application", "--application-name", renamed)
    assert missing.returncode != 0
    assert "ApplicationDoesNotExistException" in missing.stderr
    # The delete cascaded: a new application of that name has no deployment groups.
    codedeploy.create_application(applicationName=renamed)
    groups = server.aws_json("deploy", "list-deployment-groups", "--application-name", renamed)
    assert groups["deploymentGroups"] == []
