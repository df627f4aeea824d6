"""IAM users through boto3 and the ``aws`` CLI: create, get, list (path prefix, pages), tags, delete,
and each operation's errors with IAM's codes."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError
from iam_helpers import policy_document

from support.names import unique
from support.server import ServerProcess


def error_code(raised: pytest.ExceptionInfo[ClientError]) -> str:
    return raised.value.response["Error"]["Code"]


def test_create_user_returns_it_as_iam_describes_it(iam_server: ServerProcess, iam: Any) -> None:
    name = unique("user")
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    user = iam.create_user(Path="/AWS/CodeDeploy/", UserName=name)["User"]
    assert user["UserName"] == name
    assert user["Path"] == "/AWS/CodeDeploy/"
    assert user["Arn"] == f"arn:aws:iam::{iam_server.account_id}:user/AWS/CodeDeploy/{name}"
    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", user["UserId"])
    assert before <= user["CreateDate"] <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    assert "Tags" not in user
    assert iam.get_user(UserName=name)["User"] == user

    plain = iam.create_user(UserName=unique("user"))["User"]
    assert plain["Path"] == "/"  # the default path
    assert plain["Arn"].endswith(f":user/{plain['UserName']}")
    assert plain["UserId"] != user["UserId"]


def test_user_names_are_unique_whatever_their_case(iam: Any) -> None:
    name = unique("Case")
    iam.create_user(UserName=name)
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException) as raised:
        iam.create_user(UserName=name.upper(), Path="/other/")
    assert name.upper() in raised.value.response["Error"]["Message"]
    # Looking a user up ignores case too, and answers with the name as created.
    assert iam.get_user(UserName=name.lower())["User"]["UserName"] == name


def test_invalid_names_and_paths_are_validation_errors(iam: Any) -> None:
    for params, member in (
        ({"UserName": "has space"}, "UserName"),
        ({"UserName": "x" * 65}, "UserName"),
        ({"UserName": unique("u"), "Path": "no-slashes"}, "Path"),
        ({"UserName": unique("u"), "Path": "/unterminated"}, "Path"),
    ):
        with pytest.raises(ClientError) as raised:
            iam.create_user(**params)
        assert error_code(raised) == "ValidationError"
        assert member in raised.value.response["Error"]["Message"]
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as raised:
        iam.get_user(UserName="has space")
    assert error_code(raised) == "ValidationError"


def test_a_permissions_boundary_names_a_policy_the_server_does_not_have(iam: Any) -> None:
    name = unique("user")
    with pytest.raises(iam.exceptions.NoSuchEntityException) as raised:
        iam.create_user(UserName=name, PermissionsBoundary="arn:aws:iam::aws:policy/PowerUserAccess")
    assert "PowerUserAccess" in raised.value.response["Error"]["Message"]
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName=name)  # nothing was created


def test_the_administrator_is_a_user_with_administrator_access(iam_server: ServerProcess, iam: Any) -> None:
    caller = iam.get_user()["User"]  # without UserName: the caller, the administrator
    assert caller["Arn"] == f"arn:aws:iam::{iam_server.account_id}:user/opendeploy-admin"
    assert (caller["UserName"], caller["Path"]) == ("opendeploy-admin", "/")
    assert iam.get_user()["User"]["UserId"] == caller["UserId"]  # stable
    assert iam.get_user(UserName="opendeploy-admin")["User"]["UserId"] == caller["UserId"]
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException):
        iam.create_user(UserName="opendeploy-admin")
    assert any(u["Arn"] == caller["Arn"] for u in iam.list_users()["Users"])
    attached = iam.list_attached_user_policies(UserName="opendeploy-admin")["AttachedPolicies"]
    assert attached == [
        {"PolicyName": "AdministratorAccess", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}
    ]
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_user(UserName="opendeploy-admin")  # it has keys (and a policy)
    sts = iam_server.client("sts").get_caller_identity()
    assert (sts["Arn"], sts["UserId"]) == (caller["Arn"], caller["UserId"])


def test_get_user_of_an_unknown_name(iam: Any) -> None:
    with pytest.raises(iam.exceptions.NoSuchEntityException) as raised:
        iam.get_user(UserName=unique("missing"))
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "cannot be found" in raised.value.response["Error"]["Message"]


def test_list_users_by_path_prefix_in_pages(iam_server: ServerProcess, iam: Any) -> None:
    prefix = f"/{unique('team')}/"
    names = sorted(unique("member") for _ in range(5))
    for name in names:
        iam.create_user(UserName=name, Path=prefix + "hosts/")
    iam.create_user(UserName=unique("elsewhere"), Path=prefix.upper())  # the prefix is case-sensitive

    first = iam.list_users(PathPrefix=prefix, MaxItems=2)
    assert first["IsTruncated"] is True
    assert [u["UserName"] for u in first["Users"]] == names[:2]
    paginator = iam.get_paginator("list_users")
    pages = list(paginator.paginate(PathPrefix=prefix, PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    assert [u["UserName"] for page in pages for u in page["Users"]] == names
    assert pages[-1]["IsTruncated"] is False and "Marker" not in pages[-1]

    # A marker belongs to its listing: altered, or used with another prefix, it is refused.
    marker = first["Marker"]
    middle = len(marker) // 2  # a character that carries bits (the last ones may be padding)
    altered = marker[:middle] + ("B" if marker[middle] != "B" else "C") + marker[middle + 1 :]
    with pytest.raises(ClientError) as raised:
        iam.list_users(PathPrefix=prefix, Marker=altered)
    assert error_code(raised) == "ValidationError"
    with pytest.raises(ClientError) as raised:
        iam.list_users(PathPrefix="/", Marker=first["Marker"])
    assert error_code(raised) == "ValidationError"

    listed = iam_server.aws_json("iam", "list-users", "--path-prefix", prefix)
    assert [u["UserName"] for u in listed["Users"]] == names
    with pytest.raises(ClientError) as raised:
        iam.list_users(MaxItems=1001)
    assert error_code(raised) == "ValidationError"


def test_user_tags(iam: Any) -> None:
    name = unique("tagged")
    created = iam.create_user(UserName=name, Tags=[{"Key": "Stage", "Value": "Beta"}])["User"]
    assert created["Tags"] == [{"Key": "Stage", "Value": "Beta"}]
    iam.tag_user(UserName=name, Tags=[{"Key": "Stage", "Value": "Prod"}, {"Key": "Team", "Value": "ops"}])
    assert iam.list_user_tags(UserName=name)["Tags"] == [
        {"Key": "Stage", "Value": "Prod"},
        {"Key": "Team", "Value": "ops"},
    ]
    assert iam.get_user(UserName=name)["User"]["Tags"] == iam.list_user_tags(UserName=name)["Tags"]
    iam.untag_user(UserName=name, TagKeys=["Stage", "Absent"])
    assert iam.list_user_tags(UserName=name)["Tags"] == [{"Key": "Team", "Value": "ops"}]

    with pytest.raises(iam.exceptions.InvalidInputException):
        iam.tag_user(UserName=name, Tags=[{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}])
    iam.tag_user(UserName=name, Tags=[{"Key": f"k{i}", "Value": ""} for i in range(49)])
    with pytest.raises(iam.exceptions.LimitExceededException):
        iam.tag_user(UserName=name, Tags=[{"Key": "one-too-many", "Value": "x"}])
    assert len(iam.list_user_tags(UserName=name)["Tags"]) == 50
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.tag_user(UserName=unique("missing"), Tags=[{"Key": "k", "Value": "v"}])


def test_delete_user_only_once_its_keys_and_policies_are_gone(iam: Any) -> None:
    name = unique("user")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy_document())

    with pytest.raises(iam.exceptions.DeleteConflictException) as raised:
        iam.delete_user(UserName=name)
    assert "access keys" in raised.value.response["Error"]["Message"]
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    with pytest.raises(iam.exceptions.DeleteConflictException) as raised:
        iam.delete_user(UserName=name)
    assert "policies" in raised.value.response["Error"]["Message"]
    assert iam.get_user(UserName=name)["User"]["UserName"] == name  # still there

    iam.delete_user_policy(UserName=name, PolicyName="p")
    iam.delete_user(UserName=name)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName=name)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.delete_user(UserName=name)
    # The name is free again, for a new user with a new id.
    assert iam.create_user(UserName=name)["User"]["UserName"] == name


def test_a_user_survives_a_server_restart(tmp_path: Any) -> None:
    from iam_helpers import start_server

    server = start_server(tmp_path / "server")
    try:
        iam = server.client("iam")
        user = iam.create_user(UserName="kept", Path="/hosts/")["User"]
        iam.put_user_policy(UserName="kept", PolicyName="p", PolicyDocument=policy_document())
        server.restart(kill=True)
        iam = server.client("iam")
        assert iam.get_user(UserName="kept")["User"] == user
        assert iam.list_user_policies(UserName="kept")["PolicyNames"] == ["p"]
    finally:
        server.stop()
