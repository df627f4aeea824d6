"""The IAM and STS APIs -> the IAM actions and entity ARNs they need."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from opendeploy.domain import iam_permissions as iam
from opendeploy.domain.permissions import Permission, Scope, UnknownOperation, first_unmet, is_read_only

ACCOUNT = "123456789012"
SCOPE = Scope("us-east-1", ACCOUNT)
LOOKUP = iam.InMemoryLookup(users={"marymajor": "/", "bob": "/eng/"}, groups={"devs": "/eng/"})
CALLER = f"arn:aws:iam::{ACCOUNT}:user/marymajor"
MARY = f"arn:aws:iam::{ACCOUNT}:user/marymajor"
BOB = f"arn:aws:iam::{ACCOUNT}:user/eng/bob"
DEVS = f"arn:aws:iam::{ACCOUNT}:group/eng/devs"
POLICY = f"arn:aws:iam::{ACCOUNT}:policy/Deployers"
AWS_POLICY = "arn:aws:iam::aws:policy/AWSCodeDeployReadOnlyAccess"


def needs(operation: str, **params: Any) -> list[Permission]:
    return iam.required(operation, params, SCOPE, LOOKUP, CALLER)


def allow(operation: str, resource: str) -> Permission:
    return Permission(f"iam:{operation}", resource)


# operation -> (params, resource) for the operations that act on one entity
SINGLE: dict[str, tuple[dict[str, Any], str]] = {
    # users
    "CreateUser": ({"UserName": "carol", "Path": "/ops/"}, f"arn:aws:iam::{ACCOUNT}:user/ops/carol"),
    "GetUser": ({"UserName": "bob"}, BOB),
    "DeleteUser": ({"UserName": "bob"}, BOB),
    "PutUserPolicy": ({"UserName": "bob", "PolicyName": "p", "PolicyDocument": "{}"}, BOB),
    "GetUserPolicy": ({"UserName": "bob", "PolicyName": "p"}, BOB),
    "DeleteUserPolicy": ({"UserName": "bob", "PolicyName": "p"}, BOB),
    "ListUserPolicies": ({"UserName": "bob"}, BOB),
    "AttachUserPolicy": ({"UserName": "bob", "PolicyArn": POLICY}, BOB),
    "DetachUserPolicy": ({"UserName": "bob", "PolicyArn": POLICY}, BOB),
    "ListAttachedUserPolicies": ({"UserName": "bob"}, BOB),
    "ListGroupsForUser": ({"UserName": "bob"}, BOB),
    "CreateAccessKey": ({"UserName": "bob"}, BOB),
    "DeleteAccessKey": ({"UserName": "bob", "AccessKeyId": "AKIA1"}, BOB),
    "ListAccessKeys": ({"UserName": "bob"}, BOB),
    "UpdateAccessKey": ({"UserName": "bob", "AccessKeyId": "AKIA1", "Status": "Inactive"}, BOB),
    "TagUser": ({"UserName": "bob", "Tags": [{"Key": "team", "Value": "a"}]}, BOB),
    "UntagUser": ({"UserName": "bob", "TagKeys": ["team"]}, BOB),
    "ListUserTags": ({"UserName": "bob"}, BOB),
    "ListUsers": ({}, f"arn:aws:iam::{ACCOUNT}:user/*"),
    # groups
    "CreateGroup": ({"GroupName": "ops"}, f"arn:aws:iam::{ACCOUNT}:group/ops"),
    "GetGroup": ({"GroupName": "devs"}, DEVS),
    "DeleteGroup": ({"GroupName": "devs"}, DEVS),
    "AddUserToGroup": ({"GroupName": "devs", "UserName": "bob"}, DEVS),
    "RemoveUserFromGroup": ({"GroupName": "devs", "UserName": "bob"}, DEVS),
    "PutGroupPolicy": ({"GroupName": "devs", "PolicyName": "p", "PolicyDocument": "{}"}, DEVS),
    "GetGroupPolicy": ({"GroupName": "devs", "PolicyName": "p"}, DEVS),
    "DeleteGroupPolicy": ({"GroupName": "devs", "PolicyName": "p"}, DEVS),
    "ListGroupPolicies": ({"GroupName": "devs"}, DEVS),
    "AttachGroupPolicy": ({"GroupName": "devs", "PolicyArn": AWS_POLICY}, DEVS),
    "DetachGroupPolicy": ({"GroupName": "devs", "PolicyArn": AWS_POLICY}, DEVS),
    "ListAttachedGroupPolicies": ({"GroupName": "devs"}, DEVS),
    "ListGroups": ({"PathPrefix": "/eng/"}, f"arn:aws:iam::{ACCOUNT}:group/eng/*"),
    # managed policies
    "CreatePolicy": ({"PolicyName": "Deployers", "PolicyDocument": "{}"}, POLICY),
    "GetPolicy": ({"PolicyArn": AWS_POLICY}, AWS_POLICY),
    "GetPolicyVersion": ({"PolicyArn": POLICY, "VersionId": "v1"}, POLICY),
    "CreatePolicyVersion": ({"PolicyArn": POLICY, "PolicyDocument": "{}"}, POLICY),
    "DeletePolicy": ({"PolicyArn": POLICY}, POLICY),
    "DeletePolicyVersion": ({"PolicyArn": POLICY, "VersionId": "v1"}, POLICY),
    "SetDefaultPolicyVersion": ({"PolicyArn": POLICY, "VersionId": "v2"}, POLICY),
    "ListPolicyVersions": ({"PolicyArn": POLICY}, POLICY),
    "ListEntitiesForPolicy": ({"PolicyArn": POLICY}, POLICY),
    "TagPolicy": ({"PolicyArn": POLICY, "Tags": []}, POLICY),
    "UntagPolicy": ({"PolicyArn": POLICY, "TagKeys": []}, POLICY),
    "ListPolicyTags": ({"PolicyArn": POLICY}, POLICY),
    "ListPolicies": ({"Scope": "Local"}, "*"),
}


def test_every_operation_the_iam_adapter_registers_and_issue_9_adds_has_a_mapping() -> None:
    import importlib
    import pkgutil

    import opendeploy.api.iam
    from opendeploy.api.iam.registry import IAM_OPERATIONS

    for module in pkgutil.iter_modules(opendeploy.api.iam.__path__):
        importlib.import_module(f"opendeploy.api.iam.{module.name}")
    issue_9 = {
        "CreatePolicy", "GetPolicy", "GetPolicyVersion", "CreatePolicyVersion", "DeletePolicy",
        "ListPolicyVersions", "AttachUserPolicy", "DetachUserPolicy", "ListAttachedUserPolicies",
        "ListPolicies", "CreateGroup", "GetGroup", "DeleteGroup", "AddUserToGroup", "RemoveUserFromGroup",
        "ListGroupsForUser", "PutGroupPolicy", "GetGroupPolicy", "DeleteGroupPolicy", "ListGroupPolicies",
        "AttachGroupPolicy", "DetachGroupPolicy", "ListAttachedGroupPolicies", "GetUser", "ListUsers",
    }  # fmt: skip
    assert (set(IAM_OPERATIONS) | issue_9) - iam.OPERATIONS == set()
    assert set(SINGLE) | {"UpdateUser", "UpdateGroup"} == iam.OPERATIONS


def test_every_mapped_operation_is_in_botocore_s_iam_model() -> None:
    model = botocore.session.get_session().get_service_model("iam")
    assert set(model.operation_names) >= iam.OPERATIONS
    sts = botocore.session.get_session().get_service_model("sts")
    assert set(sts.operation_names) >= iam.STS_OPERATIONS


@pytest.mark.parametrize("operation", sorted(SINGLE))
def test_single_entity_operations(operation: str) -> None:
    params, resource = SINGLE[operation]
    assert needs(operation, **params) == [allow(operation, resource)]


@pytest.mark.parametrize("operation", ["GetUser", "CreateAccessKey", "ListAccessKeys", "DeleteAccessKey"])
def test_an_omitted_user_name_means_the_caller(operation: str) -> None:
    assert needs(operation) == [allow(operation, CALLER)]


def test_an_unknown_user_or_group_gets_the_default_path() -> None:
    assert needs("GetUser", UserName="ghost") == [allow("GetUser", f"arn:aws:iam::{ACCOUNT}:user/ghost")]
    assert needs("GetGroup", GroupName="ghosts") == [
        allow("GetGroup", f"arn:aws:iam::{ACCOUNT}:group/ghosts")
    ]


def test_create_with_a_path_without_slashes_is_normalized() -> None:
    assert needs("CreateGroup", GroupName="g", Path="ops") == [
        allow("CreateGroup", f"arn:aws:iam::{ACCOUNT}:group/ops/g")
    ]
    assert needs("CreatePolicy", PolicyName="P", Path="/team/", PolicyDocument="{}") == [
        allow("CreatePolicy", f"arn:aws:iam::{ACCOUNT}:policy/team/P")
    ]


def test_renames_need_the_old_and_the_new_entity() -> None:
    assert needs("UpdateUser", UserName="bob", NewUserName="robert") == [
        allow("UpdateUser", BOB),
        allow("UpdateUser", f"arn:aws:iam::{ACCOUNT}:user/eng/robert"),
    ]
    assert needs("UpdateUser", UserName="bob", NewPath="/ops/") == [
        allow("UpdateUser", BOB),
        allow("UpdateUser", f"arn:aws:iam::{ACCOUNT}:user/ops/bob"),
    ]
    assert needs("UpdateGroup", GroupName="devs", NewGroupName="developers") == [
        allow("UpdateGroup", DEVS),
        allow("UpdateGroup", f"arn:aws:iam::{ACCOUNT}:group/eng/developers"),
    ]
    assert needs("UpdateUser", UserName="marymajor") == [allow("UpdateUser", MARY)]


def test_list_users_with_a_path_prefix() -> None:
    assert needs("ListUsers", PathPrefix="/eng/") == [
        allow("ListUsers", f"arn:aws:iam::{ACCOUNT}:user/eng/*")
    ]


def test_the_guide_s_self_view_policy_statement() -> None:
    """Guide L22353–22395, ViewOwnUserInfo: these five actions on the caller's own user ARN."""
    own = {
        allow(action, MARY)
        for action in (
            "GetUserPolicy",
            "ListGroupsForUser",
            "ListAttachedUserPolicies",
            "ListUserPolicies",
            "GetUser",
        )
    }
    for operation, params in [
        ("GetUserPolicy", {"UserName": "marymajor", "PolicyName": "p"}),
        ("ListGroupsForUser", {"UserName": "marymajor"}),
        ("ListAttachedUserPolicies", {"UserName": "marymajor"}),
        ("ListUserPolicies", {"UserName": "marymajor"}),
        ("GetUser", {}),
    ]:
        assert first_unmet(needs(operation, **params), own.__contains__) is None, operation
    assert first_unmet(needs("GetUser", UserName="bob"), own.__contains__) == allow("GetUser", BOB)


def test_sts_get_caller_identity_needs_nothing_and_assume_role_needs_the_role() -> None:
    assert iam.sts_required("GetCallerIdentity", {}) == []
    assert first_unmet(iam.sts_required("GetCallerIdentity", {}), lambda _: False) is None
    role = f"arn:aws:iam::{ACCOUNT}:role/deployer"
    assert iam.sts_required("AssumeRole", {"RoleArn": role, "RoleSessionName": "s"}) == [
        Permission("sts:AssumeRole", role)
    ]


def test_unknown_operations_raise() -> None:
    with pytest.raises(UnknownOperation):
        needs("CreateRole", RoleName="r")
    with pytest.raises(UnknownOperation):
        iam.sts_required("GetSessionToken", {})


def test_read_only_flags() -> None:
    assert is_read_only("GetUser") and is_read_only("ListPolicies") and is_read_only("GetCallerIdentity")
    assert not is_read_only("CreatePolicy") and not is_read_only("AttachUserPolicy")


def test_request_context() -> None:
    assert iam.request_context("AttachUserPolicy", {"UserName": "bob", "PolicyArn": POLICY}) == {
        "iam:PolicyARN": [POLICY]
    }
    assert iam.request_context("CreateUser", {"UserName": "c", "Tags": [{"Key": "team", "Value": "x"}]}) == {
        "aws:RequestTag/team": ["x"],
        "aws:TagKeys": ["team"],
    }
    assert iam.request_context("UntagUser", {"UserName": "c", "TagKeys": ["team"]}) == {
        "aws:TagKeys": ["team"]
    }
    assert iam.request_context("GetUser", {}) == {}
