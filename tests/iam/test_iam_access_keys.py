"""Access keys made through IAM: at most two per user, listed without secrets, made inactive or
deleted; what such a key may do on the server (the command service and reading bundles, as the
instance registered with its user's ARN) and may not (IAM and CodeDeploy's API)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

import pytest
from botocore.exceptions import ClientError
from iam_helpers import KEY_FORGOTTEN_WITHIN, agent_client, key_client

from opendeploy.domain.instance_permissions import REGISTRATION_POLICY
from support.names import unique
from support.server import ServerProcess, wait_for


def new_user(iam: Any, path: str = "/AWS/CodeDeploy/") -> dict[str, Any]:
    return iam.create_user(UserName=unique("host"), Path=path)["User"]


def refused_code(call: Any) -> str | None:
    """The error code ``call()`` fails with, or ``None`` if it succeeds."""
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"]
    return None


def test_two_keys_per_user_then_limit_exceeded(iam: Any) -> None:
    user = new_user(iam)
    name = user["UserName"]
    keys = [iam.create_access_key(UserName=name)["AccessKey"] for _ in range(2)]
    for key in keys:
        assert key["UserName"] == name and key["Status"] == "Active"
        assert re.fullmatch(r"AKIA[A-Z2-7]{16}", key["AccessKeyId"])
        assert len(key["SecretAccessKey"]) == 40
    with pytest.raises(iam.exceptions.LimitExceededException) as raised:
        iam.create_access_key(UserName=name)
    assert "AccessKeysPerUser: 2" in raised.value.response["Error"]["Message"]

    listed = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert sorted(k["AccessKeyId"] for k in listed) == sorted(k["AccessKeyId"] for k in keys)
    assert all("SecretAccessKey" not in k and k["Status"] == "Active" for k in listed)
    pages = list(
        iam.get_paginator("list_access_keys").paginate(UserName=name, PaginationConfig={"PageSize": 1})
    )
    assert [len(page["AccessKeyMetadata"]) for page in pages] == [1, 1]

    # A deleted key frees its place.
    iam.delete_access_key(UserName=name, AccessKeyId=keys[0]["AccessKeyId"])
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]] == [
        keys[1]["AccessKeyId"]
    ]
    iam.create_access_key(UserName=name)


def test_key_operations_on_unknown_users_and_keys(iam_server: ServerProcess, iam: Any) -> None:
    missing = unique("missing")
    for call in (
        lambda: iam.create_access_key(UserName=missing),
        lambda: iam.list_access_keys(UserName=missing),
        lambda: iam.delete_access_key(UserName=missing, AccessKeyId="AKIAAAAAAAAAAAAAAAAA"),
    ):
        with pytest.raises(iam.exceptions.NoSuchEntityException):
            call()
    owner, other = new_user(iam), new_user(iam)
    key = iam.create_access_key(UserName=owner["UserName"])["AccessKey"]
    # Another user's key is not this user's to delete.
    with pytest.raises(iam.exceptions.NoSuchEntityException) as raised:
        iam.delete_access_key(UserName=other["UserName"], AccessKeyId=key["AccessKeyId"])
    assert key["AccessKeyId"] in raised.value.response["Error"]["Message"]
    assert len(iam.list_access_keys(UserName=owner["UserName"])["AccessKeyMetadata"]) == 1
    with pytest.raises(ClientError) as raised:  # a client that does not check it first
        iam_server.raw_client("iam").delete_access_key(UserName=owner["UserName"], AccessKeyId="short")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(iam.exceptions.InvalidInputException):
        iam.update_access_key(UserName=owner["UserName"], AccessKeyId=key["AccessKeyId"], Status="Expired")


def test_the_administrator_s_keys_are_listed_but_not_managed_through_iam(
    iam_server: ServerProcess, iam: Any
) -> None:
    admin_key_id, _ = iam_server.credentials()
    own = iam.list_access_keys()["AccessKeyMetadata"]
    assert [(k["UserName"], k["AccessKeyId"], k["Status"]) for k in own] == [
        ("opendeploy-admin", admin_key_id, "Active")
    ]
    for call in (
        lambda: iam.create_access_key(),
        lambda: iam.delete_access_key(AccessKeyId=admin_key_id),
        lambda: iam.update_access_key(AccessKeyId=admin_key_id, Status="Inactive"),
    ):
        with pytest.raises(ClientError) as raised:
            call()
        assert raised.value.response["Error"]["Code"] == "AccessDenied"
        assert "opendeploy init" in raised.value.response["Error"]["Message"]
    assert iam.list_access_keys()["AccessKeyMetadata"] == own  # still working


def test_a_user_s_key_serves_its_instance_and_nothing_else(iam_server: ServerProcess, iam: Any) -> None:
    user = new_user(iam)
    key = iam.create_access_key(UserName=user["UserName"])["AccessKey"]
    key_id, secret = key["AccessKeyId"], key["SecretAccessKey"]
    agent = agent_client(iam_server, key_id, secret)

    # Before its instance is registered, the key is known but belongs to no instance.
    assert refused_code(lambda: agent.poll_host_command(HostIdentifier=user["Arn"])) == "ClientException"
    codedeploy = iam_server.client("codedeploy")
    instance = unique("onprem")
    codedeploy.register_on_premises_instance(instanceName=instance, iamUserArn=user["Arn"])
    answer = agent.poll_host_command(HostIdentifier=user["Arn"])
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "HostCommand" not in answer  # nothing to do yet

    # It reads the bundles deployed to it and no others (not even with the register commands' s3:Get*
    # policy on its user), nor the bucket list, and writes nothing.
    iam.put_user_policy(
        UserName=user["UserName"],
        PolicyName="codedeploy-agent",
        PolicyDocument=json.dumps(REGISTRATION_POLICY, indent=2),
    )
    admin_s3 = iam_server.client("s3")
    bucket = unique("bundles")
    admin_s3.create_bucket(Bucket=bucket)
    for name in ("app.zip", "other-app.zip"):
        admin_s3.put_object(Bucket=bucket, Key=name, Body=BUNDLE)
    s3 = key_client(iam_server, "s3", key_id, secret)
    assert refused_code(lambda: s3.get_object(Bucket=bucket, Key="app.zip")) == "AccessDenied"
    application = unique("app")
    codedeploy.create_application(applicationName=application)
    codedeploy.add_tags_to_on_premises_instances(
        instanceNames=[instance], tags=[{"Key": "Name", "Value": instance}]
    )
    codedeploy.create_deployment_group(
        applicationName=application,
        deploymentGroupName="fleet",
        serviceRoleArn=ROLE,
        onPremisesInstanceTagFilters=[{"Key": "Name", "Value": instance, "Type": "KEY_AND_VALUE"}],
    )
    codedeploy.create_deployment(
        applicationName=application,
        deploymentGroupName="fleet",
        revision={
            "revisionType": "S3",
            "s3Location": {"bucket": bucket, "key": "app.zip", "bundleType": "zip"},
        },
    )
    wait_for(lambda: _readable(s3, bucket, "app.zip"), timeout=60, message="the deployed bundle readable")
    assert refused_code(lambda: s3.get_object(Bucket=bucket, Key="other-app.zip")) == "AccessDenied"
    assert refused_code(lambda: s3.list_buckets()) == "AccessDenied"
    assert refused_code(lambda: s3.put_object(Bucket=bucket, Key="other.zip", Body=b"x")) == "AccessDenied"

    # It is not an administrator: CodeDeploy's API and IAM refuse it.
    assert refused_code(lambda: key_client(iam_server, "codedeploy", key_id, secret).list_applications()) == (
        "AccessDeniedException"
    )
    own_iam = key_client(iam_server, "iam", key_id, secret)
    with pytest.raises(ClientError) as raised:
        own_iam.create_user(UserName=unique("escalate"))
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert user["Arn"] in raised.value.response["Error"]["Message"]
    assert refused_code(lambda: own_iam.list_access_keys(UserName=user["UserName"])) == "AccessDenied"


def test_an_inactive_or_deleted_key_stops_working(iam_server: ServerProcess, iam: Any) -> None:
    user = new_user(iam)
    name = user["UserName"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    iam_server.client("codedeploy").register_on_premises_instance(
        instanceName=unique("onprem"), iamUserArn=user["Arn"]
    )
    agent = agent_client(iam_server, key["AccessKeyId"], key["SecretAccessKey"])

    def poll() -> str | None:
        return refused_code(lambda: agent.poll_host_command(HostIdentifier=user["Arn"]))

    assert poll() is None
    iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    assert iam.list_access_keys(UserName=name)["AccessKeyMetadata"][0]["Status"] == "Inactive"
    wait_for(lambda: poll() == "UnrecognizedClientException", timeout=KEY_FORGOTTEN_WITHIN, interval=0.5)

    iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Active")
    wait_for(lambda: poll() is None, timeout=KEY_FORGOTTEN_WITHIN, interval=0.5)

    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    assert iam.list_access_keys(UserName=name)["AccessKeyMetadata"] == []
    wait_for(lambda: poll() == "UnrecognizedClientException", timeout=KEY_FORGOTTEN_WITHIN, interval=0.5)


ROLE = "arn:aws:iam::111122223333:role/CodeDeployServiceRole"


def _make_bundle() -> bytes:
    """A zip bundle with an AppSpec, as a deployment's revision needs."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("appspec.yml", (2026, 12, 4, 0, 0, 0)), "version: 0.0\nos: linux\n")
    return buffer.getvalue()


BUNDLE = _make_bundle()  # once: a zip records when it was written


def _readable(s3: Any, bucket: str, key: str) -> bool:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read() == BUNDLE
    except ClientError:
        return False
