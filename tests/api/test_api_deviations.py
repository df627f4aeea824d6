"""Where the API answered differently from botocore's CodeDeploy model (issue 8, item 11), against a real
server through boto3 and the aws CLI."""

from __future__ import annotations

import secrets

import pytest

from support.names import unique


def _deployment_arn(server, deployment_id: str) -> str:
    return f"arn:aws:codedeploy:{server.region}:{server.account_id}:deployment/{deployment_id}"


def test_list_deployments_needs_the_group_with_the_application(server, codedeploy):
    # The model documents applicationName: "If applicationName is specified, then deploymentGroupName
    # must be specified", and lists DeploymentGroupNameRequiredException for the operation.
    application = unique("app")
    codedeploy.create_application(applicationName=application)
    with pytest.raises(codedeploy.exceptions.DeploymentGroupNameRequiredException):
        codedeploy.list_deployments(applicationName=application)
    # The missing name is reported before the application is looked up.
    with pytest.raises(codedeploy.exceptions.DeploymentGroupNameRequiredException):
        codedeploy.list_deployments(applicationName=unique("none"))
    # And the other way round, as before.
    with pytest.raises(codedeploy.exceptions.ApplicationNameRequiredException):
        codedeploy.list_deployments(deploymentGroupName=unique("group"))


def test_list_deployments_needs_the_group_with_the_application_aws_cli(server, codedeploy):
    application = unique("app")
    codedeploy.create_application(applicationName=application)
    result = server.aws("deploy", "list-deployments", "--application-name", application)
    assert result.returncode != 0, result.stdout
    assert "DeploymentGroupNameRequiredException" in result.stderr, result.stderr


def test_tags_of_a_deployment_arn_are_not_supported(server, codedeploy):
    arn = _deployment_arn(server, "d-" + secrets.token_hex(5).upper()[:9])
    with pytest.raises(codedeploy.exceptions.ArnNotSupportedException):
        codedeploy.list_tags_for_resource(ResourceArn=arn)
    with pytest.raises(codedeploy.exceptions.ArnNotSupportedException):
        codedeploy.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "b"}])
    with pytest.raises(codedeploy.exceptions.ArnNotSupportedException):
        codedeploy.untag_resource(ResourceArn=arn, TagKeys=["a"])
    result = server.aws("deploy", "list-tags-for-resource", "--resource-arn", arn)
    assert result.returncode != 0 and "ArnNotSupportedException" in result.stderr, result.stderr
    # What is no CodeDeploy ARN at all is still InvalidArnException.
    with pytest.raises(codedeploy.exceptions.InvalidArnException):
        codedeploy.list_tags_for_resource(ResourceArn=f"arn:aws:codedeploy:{server.region}:x:deployment")
