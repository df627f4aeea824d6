"""Managed policies (customer and AWS managed), their versions, groups and attachments, through boto3
and the aws CLI as IAM answers them: quotas, conflicts and malformed documents refused with IAM's
errors, and what is attached kept across a restart."""

from __future__ import annotations

from typing import Any

import pytest
from iam_helpers import policy_document

from support.names import unique
from support.server import ServerProcess

FULL_ACCESS = "arn:aws:iam::aws:policy/AWSCodeDeployFullAccess"
READ_ONLY = "arn:aws:iam::aws:policy/AWSCodeDeployReadOnlyAccess"
ADMINISTRATOR = "arn:aws:iam::aws:policy/AdministratorAccess"


def test_a_customer_managed_policy_and_its_versions(iam_server: ServerProcess, iam: Any) -> None:
    name = unique("deployers")
    created = iam.create_policy(
        PolicyName=name, Path="/teams/", PolicyDocument=policy_document("V1"), Description="who deploys"
    )["Policy"]
    arn = created["Arn"]
    assert arn == f"arn:aws:iam::{iam_server.account_id}:policy/teams/{name}"
    assert (created["DefaultVersionId"], created["AttachmentCount"], created["Path"]) == ("v1", 0, "/teams/")
    assert created["PolicyId"].startswith("ANPA")
    assert iam.get_policy(PolicyArn=arn)["Policy"]["Description"] == "who deploys"

    second = iam.create_policy_version(PolicyArn=arn, PolicyDocument=policy_document("V2"), SetAsDefault=True)
    assert second["PolicyVersion"]["VersionId"] == "v2"
    assert second["PolicyVersion"]["IsDefaultVersion"] is True
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v2"
    version = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
    assert version["Document"]["Statement"][0]["Sid"] == "V1"  # boto3 decodes the URL-encoded text
    assert version["IsDefaultVersion"] is False
    # The aws CLI reads the same.
    shown = iam_server.aws_json("iam", "get-policy-version", "--policy-arn", arn, "--version-id", "v2")
    assert shown["PolicyVersion"]["Document"]["Statement"][0]["Sid"] == "V2"

    for number in (3, 4, 5):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=policy_document(f"V{number}"))
    with pytest.raises(iam.exceptions.LimitExceededException):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=policy_document("V6"))
    listed = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert [v["VersionId"] for v in listed] == ["v5", "v4", "v3", "v2", "v1"]

    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_policy_version(PolicyArn=arn, VersionId="v2")  # the default
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v5")
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_policy(PolicyArn=arn)  # versions other than the default remain
    for version_id in ("v1", "v2", "v3", "v4"):
        iam.delete_policy_version(PolicyArn=arn, VersionId=version_id)
    iam.delete_policy(PolicyArn=arn)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_policy(PolicyArn=arn)


def test_policy_documents_the_evaluator_cannot_read_are_refused(iam: Any) -> None:
    for document, said in (
        ("{}", "Statement"),
        (
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}',
            "Maybe",
        ),
        (
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", '
            '"Condition": {"StringEqualz": {"aws:username": "x"}}}]}',
            "StringEqualz",
        ),
    ):
        with pytest.raises(iam.exceptions.MalformedPolicyDocumentException) as raised:
            iam.create_policy(PolicyName=unique("bad"), PolicyDocument=document)
        assert said in raised.value.response["Error"]["Message"]
    name = unique("taken")
    iam.create_policy(PolicyName=name, PolicyDocument=policy_document())
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException):
        iam.create_policy(PolicyName=name.upper(), PolicyDocument=policy_document())


def test_the_aws_managed_policies_for_codedeploy_exist_and_cannot_be_changed(
    iam_server: ServerProcess, iam: Any
) -> None:
    policy = iam.get_policy(PolicyArn=FULL_ACCESS)["Policy"]
    assert (policy["PolicyName"], policy["Path"], policy["DefaultVersionId"]) == (
        "AWSCodeDeployFullAccess",
        "/",
        "v1",
    )
    document = iam.get_policy_version(PolicyArn=READ_ONLY, VersionId="v1")["PolicyVersion"]["Document"]
    actions = {
        a
        for s in document["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {"codedeploy:Get*", "codedeploy:List*", "codedeploy:Batch*"} <= actions
    listed = iam_server.aws_json("iam", "list-policies", "--scope", "AWS")["Policies"]
    names = {p["PolicyName"] for p in listed}
    assert {"AdministratorAccess", "AWSCodeDeployFullAccess", "AWSCodeDeployReadOnlyAccess"} <= names
    assert "AWSCodeDeployDeployerAccess" in names
    local = iam.list_policies(Scope="Local")["Policies"]
    assert all(not p["Arn"].startswith("arn:aws:iam::aws:") for p in local)
    with pytest.raises(iam.exceptions.InvalidInputException):
        iam.create_policy_version(PolicyArn=FULL_ACCESS, PolicyDocument=policy_document())
    with pytest.raises(iam.exceptions.InvalidInputException):
        iam.delete_policy(PolicyArn=FULL_ACCESS)


def test_groups_members_and_attachments(iam_server: ServerProcess, iam: Any) -> None:
    group, user = unique("deployers"), unique("alice")
    iam.create_user(UserName=user)
    created = iam.create_group(GroupName=group, Path="/teams/")["Group"]
    assert created["Arn"] == f"arn:aws:iam::{iam_server.account_id}:group/teams/{group}"
    assert created["GroupId"].startswith("AGPA")
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException):
        iam.create_group(GroupName=group.upper())

    iam.add_user_to_group(GroupName=group, UserName=user)
    iam.add_user_to_group(GroupName=group, UserName=user)  # again: nothing changes
    got = iam.get_group(GroupName=group)
    assert [u["UserName"] for u in got["Users"]] == [user]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName=user)["Groups"]] == [group]

    iam.put_group_policy(GroupName=group, PolicyName="inline", PolicyDocument=policy_document("Inline"))
    assert iam.list_group_policies(GroupName=group)["PolicyNames"] == ["inline"]
    doc = iam.get_group_policy(GroupName=group, PolicyName="inline")["PolicyDocument"]
    assert doc["Statement"][0]["Sid"] == "Inline"

    iam.attach_group_policy(GroupName=group, PolicyArn=FULL_ACCESS)
    iam.attach_user_policy(UserName=user, PolicyArn=READ_ONLY)
    iam.attach_user_policy(UserName=user, PolicyArn=READ_ONLY)  # again: nothing changes
    assert iam.list_attached_group_policies(GroupName=group)["AttachedPolicies"] == [
        {"PolicyName": "AWSCodeDeployFullAccess", "PolicyArn": FULL_ACCESS}
    ]
    shown = iam_server.aws_json("iam", "list-attached-user-policies", "--user-name", user)
    assert shown["AttachedPolicies"] == [
        {"PolicyName": "AWSCodeDeployReadOnlyAccess", "PolicyArn": READ_ONLY}
    ]
    assert iam.get_policy(PolicyArn=READ_ONLY)["Policy"]["AttachmentCount"] >= 1
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.attach_user_policy(UserName=user, PolicyArn=f"arn:aws:iam::{iam_server.account_id}:policy/nope")

    # Nothing is deleted while something depends on it.
    with pytest.raises(iam.exceptions.DeleteConflictException) as raised:
        iam.delete_group(GroupName=group)
    assert "users" in raised.value.response["Error"]["Message"]
    with pytest.raises(iam.exceptions.DeleteConflictException) as raised:
        iam.delete_user(UserName=user)
    assert "detach" in raised.value.response["Error"]["Message"]
    iam.detach_user_policy(UserName=user, PolicyArn=READ_ONLY)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.detach_user_policy(UserName=user, PolicyArn=READ_ONLY)
    with pytest.raises(iam.exceptions.DeleteConflictException) as raised:
        iam.delete_user(UserName=user)
    assert "group" in raised.value.response["Error"]["Message"]

    iam.remove_user_from_group(GroupName=group, UserName=user)
    iam.delete_user(UserName=user)
    iam.delete_group_policy(GroupName=group, PolicyName="inline")
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_group(GroupName=group)  # the attached policy
    iam.detach_group_policy(GroupName=group, PolicyArn=FULL_ACCESS)
    iam.delete_group(GroupName=group)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_group(GroupName=group)


def test_attachments_survive_a_kill_9_of_the_server(tmp_path: Any) -> None:
    from iam_helpers import start_server

    server = start_server(tmp_path / "server")
    try:
        iam = server.client("iam")
        iam.create_user(UserName="kept")
        iam.create_group(GroupName="team")
        iam.add_user_to_group(GroupName="team", UserName="kept")
        arn = iam.create_policy(PolicyName="mine", PolicyDocument=policy_document("Mine"))["Policy"]["Arn"]
        iam.attach_group_policy(GroupName="team", PolicyArn=arn)
        iam.attach_user_policy(UserName="kept", PolicyArn=ADMINISTRATOR)
        server.restart(kill=True)
        iam = server.client("iam")
        assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="kept")["Groups"]] == ["team"]
        attached = iam.list_attached_group_policies(GroupName="team")["AttachedPolicies"]
        assert attached == [{"PolicyName": "mine", "PolicyArn": arn}]
        user_attached = iam.list_attached_user_policies(UserName="kept")["AttachedPolicies"]
        assert [p["PolicyArn"] for p in user_attached] == [ADMINISTRATOR]
        assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    finally:
        server.stop()
