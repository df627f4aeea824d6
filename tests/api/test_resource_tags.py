"""TagResource, UntagResource and ListTagsForResource through boto3 against a real server."""

from __future__ import annotations

import pytest

from support.names import unique


def _arn(server, kind: str, name: str) -> str:
    return f"arn:aws:codedeploy:{server.region}:{server.account_id}:{kind}:{name}"


def test_tag_untag_list_application(server, codedeploy):
    name = unique("tagged")
    codedeploy.create_application(applicationName=name, tags=[{"Key": "team", "Value": "payments"}])
    arn = _arn(server, "application", name)
    codedeploy.tag_resource(
        ResourceArn=arn, Tags=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "ops"}]
    )
    # A key already present takes the new value and keeps its place.
    assert codedeploy.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "team", "Value": "ops"},
        {"Key": "env", "Value": "prod"},
    ]
    codedeploy.untag_resource(ResourceArn=arn, TagKeys=["team", "not-there"])
    assert codedeploy.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "prod"}]


def test_tags_follow_a_renamed_application(server, codedeploy):
    old, new = unique("before"), unique("after")
    codedeploy.create_application(applicationName=old, tags=[{"Key": "owner", "Value": "me"}])
    codedeploy.update_application(applicationName=old, newApplicationName=new)
    tags = codedeploy.list_tags_for_resource(ResourceArn=_arn(server, "application", new))["Tags"]
    assert tags == [{"Key": "owner", "Value": "me"}]
    with pytest.raises(codedeploy.exceptions.ApplicationDoesNotExistException):
        codedeploy.list_tags_for_resource(ResourceArn=_arn(server, "application", old))


def test_deployment_group_tags_follow_a_rename(server, codedeploy):
    app, group, renamed = unique("app"), unique("group"), unique("group")
    codedeploy.create_application(applicationName=app)
    codedeploy.create_deployment_group(
        applicationName=app,
        deploymentGroupName=group,
        serviceRoleArn=f"arn:aws:iam::{server.account_id}:role/CodeDeployDemo",
    )
    codedeploy.tag_resource(
        ResourceArn=_arn(server, "deploymentgroup", f"{app}/{group}"), Tags=[{"Key": "k", "Value": "v"}]
    )
    codedeploy.update_deployment_group(
        applicationName=app, currentDeploymentGroupName=group, newDeploymentGroupName=renamed
    )
    tags = codedeploy.list_tags_for_resource(ResourceArn=_arn(server, "deploymentgroup", f"{app}/{renamed}"))
    assert tags["Tags"] == [{"Key": "k", "Value": "v"}]


def test_custom_deployment_config_tags(server, codedeploy):
    name = unique("config")
    codedeploy.create_deployment_config(
        deploymentConfigName=name, minimumHealthyHosts={"type": "HOST_COUNT", "value": 1}
    )
    arn = _arn(server, "deploymentconfig", name)
    codedeploy.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "b"}])
    assert codedeploy.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "a", "Value": "b"}]
    # Decision: the predefined configurations are shared constants and cannot carry tags.
    with pytest.raises(codedeploy.exceptions.ArnNotSupportedException):
        codedeploy.tag_resource(
            ResourceArn=_arn(server, "deploymentconfig", "CodeDeployDefault.OneAtATime"),
            Tags=[{"Key": "a", "Value": "b"}],
        )


def test_errors(server, codedeploy):
    app = unique("app")
    codedeploy.create_application(applicationName=app)
    arn = _arn(server, "application", app)
    with pytest.raises(codedeploy.exceptions.InvalidArnException):
        codedeploy.tag_resource(ResourceArn="arn:aws:s3:::bucket", Tags=[{"Key": "a", "Value": "b"}])
    with pytest.raises(codedeploy.exceptions.ApplicationDoesNotExistException):
        codedeploy.tag_resource(ResourceArn=_arn(server, "application", unique("none")), Tags=[{"Key": "a"}])
    with pytest.raises(codedeploy.exceptions.DeploymentGroupDoesNotExistException):
        codedeploy.list_tags_for_resource(ResourceArn=_arn(server, "deploymentgroup", f"{app}/nope"))
    with pytest.raises(codedeploy.exceptions.DeploymentConfigDoesNotExistException):
        codedeploy.untag_resource(ResourceArn=_arn(server, "deploymentconfig", unique("none")), TagKeys=["a"])
    with pytest.raises(codedeploy.exceptions.ArnNotSupportedException):
        codedeploy.tag_resource(
            ResourceArn=f"arn:aws:codedeploy:{server.region}:{server.account_id}:instance/i-1",
            Tags=[{"Key": "a", "Value": "b"}],
        )
    # Decision: an ARN of another region or account names nothing on this server.
    with pytest.raises(codedeploy.exceptions.ApplicationDoesNotExistException):
        codedeploy.tag_resource(
            ResourceArn=f"arn:aws:codedeploy:eu-west-3:{server.account_id}:application:{app}",
            Tags=[{"Key": "a", "Value": "b"}],
        )
    with pytest.raises(codedeploy.exceptions.TagRequiredException):
        codedeploy.tag_resource(ResourceArn=arn, Tags=[])
    with pytest.raises(codedeploy.exceptions.TagRequiredException):
        codedeploy.untag_resource(ResourceArn=arn, TagKeys=[])
    raw = server.raw_client()
    with pytest.raises(raw.exceptions.ResourceArnRequiredException):
        raw.tag_resource(ResourceArn="", Tags=[{"Key": "a", "Value": "b"}])
    with pytest.raises(codedeploy.exceptions.InvalidTagsToAddException, match="reserved"):
        codedeploy.tag_resource(ResourceArn=arn, Tags=[{"Key": "aws:owner", "Value": "x"}])
    with pytest.raises(codedeploy.exceptions.InvalidTagsToAddException, match="128"):
        codedeploy.tag_resource(ResourceArn=arn, Tags=[{"Key": "k" * 129, "Value": "x"}])
    with pytest.raises(codedeploy.exceptions.InvalidTagsToAddException, match="256"):
        codedeploy.tag_resource(ResourceArn=arn, Tags=[{"Key": "k", "Value": "v" * 257}])
    # Nothing of the refused requests was stored.
    assert codedeploy.list_tags_for_resource(ResourceArn=arn)["Tags"] == []


def test_tags_per_resource_quota(codedeploy, server):
    app = unique("many")
    codedeploy.create_application(applicationName=app)
    arn = _arn(server, "application", app)
    codedeploy.tag_resource(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    with pytest.raises(codedeploy.exceptions.InvalidTagsToAddException, match="50"):
        codedeploy.tag_resource(ResourceArn=arn, Tags=[{"Key": "one-more", "Value": "v"}])
    # Replacing values of existing keys stays within the quota.
    codedeploy.tag_resource(ResourceArn=arn, Tags=[{"Key": "k0", "Value": "changed"}])
    tags = codedeploy.list_tags_for_resource(ResourceArn=arn)["Tags"]
    assert len(tags) == 50 and tags[0] == {"Key": "k0", "Value": "changed"}
