"""The IAM and STS APIs: for each request, the IAM actions and resources that must be allowed.

The guide fixes the vocabulary (§10–13; L21433–21498, L22353–22395): the action is ``iam:<Operation>``
and the resource is the IAM entity the request acts on, an ARN with the entity's path:

- a user: ``arn:aws:iam::<account>:user<path><name>`` (the self-view example, L22353–22395, grants
  ``iam:GetUser``, ``GetUserPolicy``, ``ListGroupsForUser``, ``ListAttachedUserPolicies`` and
  ``ListUserPolicies`` on ``arn:aws:iam::*:user/${aws:username}``);
- a group: ``arn:aws:iam::<account>:group<path><name>``;
- a managed policy: its ARN as the request gives it (``PolicyArn``; AWS managed policies live in the
  account ``aws``), or for CreatePolicy ``arn:aws:iam::<account>:policy<path><name>``.

Which entity each operation acts on follows AWS's IAM documentation ("Permissions required to access
IAM resources" and the service authorization reference):

- Attach/DetachUserPolicy, Put/Get/DeleteUserPolicy, the access key operations, ListGroupsForUser and
  the user tag operations act on the **user**; Attach/DetachGroupPolicy, Put/Get/DeleteGroupPolicy,
  AddUserToGroup and RemoveUserFromGroup act on the **group** (the policy ARN is the ``iam:PolicyARN``
  condition key, not a resource; see ``request_context``); the policy and policy-version operations act
  on the **policy**;
- ListUsers and ListGroups act on ``user<PathPrefix>*`` / ``group<PathPrefix>*`` (AWS's example policy
  for the policy simulator grants ``iam:ListUsers`` on a user path); ListPolicies has no resource
  type: ``*``;
- GetUser and the access key operations without ``UserName`` act on the caller itself;
- UpdateUser and UpdateGroup need the action on both the old and the new entity when they rename or
  move it ("the requester must have appropriate permissions on both the source object and the target
  object", AWS's API reference).

A user or group's path is not in the request, so ``Lookup`` gives it; a name that matches no entity
is authorized with the default path ``/`` (the handler then answers ``NoSuchEntity`` to a caller
allowed on it, and a caller allowed only on some path learns nothing).

STS: ``GetCallerIdentity`` needs no permission ("No permissions are required to perform this
operation", AWS's STS API reference; even an explicit Deny cannot stop it): ``sts_required`` answers
an empty list. ``AssumeRole`` needs ``sts:AssumeRole`` on the role (and the role's trust policy, which
is the evaluator's business). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from opendeploy.domain import arns
from opendeploy.domain.permissions import Permission, Scope, UnknownOperation, unique

SERVICE_PREFIX = "iam"


class Lookup(Protocol):
    """What the IAM table needs from the database (the API layer implements it)."""

    def user_path(self, user_name: str) -> str | None:
        """The user's path (``/`` or ``/division/``), ``None`` if there is no such user."""
        ...

    def group_path(self, group_name: str) -> str | None:
        """The group's path, ``None`` if there is no such group."""
        ...


@dataclass
class InMemoryLookup:
    """A ``Lookup`` over dicts, for tests."""

    users: dict[str, str] = field(default_factory=dict)  # user name -> path
    groups: dict[str, str] = field(default_factory=dict)  # group name -> path

    def user_path(self, user_name: str) -> str | None:
        return self.users.get(user_name)

    def group_path(self, group_name: str) -> str | None:
        return self.groups.get(group_name)


@dataclass(frozen=True)
class _Request:
    operation: str
    params: Mapping[str, Any]
    scope: Scope
    lookup: Lookup
    caller_arn: str

    def text(self, member: str) -> str | None:
        value = self.params.get(member)
        return value if isinstance(value, str) and value else None

    def allow(self, resource: str) -> Permission:
        return Permission(f"{SERVICE_PREFIX}:{self.operation}", resource)

    def user(self, name: str | None = None, path: str | None = None) -> str:
        name = name or self.text("UserName")
        if name is None:
            return self.caller_arn
        return arns.iam_user_arn(self.scope.account_id, name, path or self.lookup.user_path(name))

    def group(self, name: str | None = None, path: str | None = None) -> str:
        name = name or self.text("GroupName") or "*"
        return arns.iam_group_arn(self.scope.account_id, name, path or self.lookup.group_path(name))

    def policy(self) -> str:
        return self.text("PolicyArn") or "*"


Rule = Callable[[_Request], list[Permission]]


def _on_user(r: _Request) -> list[Permission]:
    return [r.allow(r.user())]


def _on_group(r: _Request) -> list[Permission]:
    return [r.allow(r.group())]


def _on_policy(r: _Request) -> list[Permission]:
    return [r.allow(r.policy())]


def _create_user(r: _Request) -> list[Permission]:
    return [r.allow(r.user(path=r.text("Path") or "/"))]


def _create_group(r: _Request) -> list[Permission]:
    return [r.allow(r.group(path=r.text("Path") or "/"))]


def _create_policy(r: _Request) -> list[Permission]:
    name = r.text("PolicyName") or "*"
    return [r.allow(arns.iam_policy_arn(r.scope.account_id, name, r.text("Path") or "/"))]


def _update_user(r: _Request) -> list[Permission]:
    """The user as it is and as it will be (a new name, a new path, or both)."""
    name = r.text("UserName") or "*"
    path = r.lookup.user_path(name) or "/"
    new_name, new_path = r.text("NewUserName") or name, r.text("NewPath") or path
    return [r.allow(r.user(name, path)), r.allow(r.user(new_name, new_path))]


def _update_group(r: _Request) -> list[Permission]:
    name = r.text("GroupName") or "*"
    path = r.lookup.group_path(name) or "/"
    new_name, new_path = r.text("NewGroupName") or name, r.text("NewPath") or path
    return [r.allow(r.group(name, path)), r.allow(r.group(new_name, new_path))]


def _list_users(r: _Request) -> list[Permission]:
    return [r.allow(f"arn:aws:iam::{r.scope.account_id}:user{_prefix(r.text('PathPrefix'))}*")]


def _list_groups(r: _Request) -> list[Permission]:
    return [r.allow(f"arn:aws:iam::{r.scope.account_id}:group{_prefix(r.text('PathPrefix'))}*")]


def _prefix(path_prefix: str | None) -> str:
    """A PathPrefix as it sits before the ``*`` of a list resource: ``/`` by default."""
    if not path_prefix:
        return "/"
    return path_prefix if path_prefix.startswith("/") else "/" + path_prefix


def _on_everything(r: _Request) -> list[Permission]:
    return [r.allow("*")]


_USER_OPERATIONS = [
    "DeleteUser",
    "GetUser",
    "PutUserPolicy",
    "GetUserPolicy",
    "DeleteUserPolicy",
    "ListUserPolicies",
    "AttachUserPolicy",
    "DetachUserPolicy",
    "ListAttachedUserPolicies",
    "ListGroupsForUser",
    "CreateAccessKey",
    "DeleteAccessKey",
    "ListAccessKeys",
    "UpdateAccessKey",
    "TagUser",
    "UntagUser",
    "ListUserTags",
]
_GROUP_OPERATIONS = [
    "GetGroup",
    "DeleteGroup",
    "AddUserToGroup",
    "RemoveUserFromGroup",
    "PutGroupPolicy",
    "GetGroupPolicy",
    "DeleteGroupPolicy",
    "ListGroupPolicies",
    "AttachGroupPolicy",
    "DetachGroupPolicy",
    "ListAttachedGroupPolicies",
]
_POLICY_OPERATIONS = [
    "GetPolicy",
    "DeletePolicy",
    "GetPolicyVersion",
    "CreatePolicyVersion",
    "DeletePolicyVersion",
    "SetDefaultPolicyVersion",
    "ListPolicyVersions",
    "ListEntitiesForPolicy",
    "TagPolicy",
    "UntagPolicy",
    "ListPolicyTags",
]

_TABLE: dict[str, Rule] = {
    **dict.fromkeys(_USER_OPERATIONS, _on_user),
    **dict.fromkeys(_GROUP_OPERATIONS, _on_group),
    **dict.fromkeys(_POLICY_OPERATIONS, _on_policy),
    "CreateUser": _create_user,
    "UpdateUser": _update_user,
    "ListUsers": _list_users,
    "CreateGroup": _create_group,
    "UpdateGroup": _update_group,
    "ListGroups": _list_groups,
    "CreatePolicy": _create_policy,
    "ListPolicies": _on_everything,
}

OPERATIONS: frozenset[str] = frozenset(_TABLE)
STS_OPERATIONS: frozenset[str] = frozenset({"GetCallerIdentity", "AssumeRole"})


def required(
    operation: str, params: Mapping[str, Any], scope: Scope, lookup: Lookup, caller_arn: str
) -> list[Permission]:
    """What an IAM API request needs (every permission must be allowed; never an empty list).

    ``params`` are the Query request's members (``UserName``, ``PolicyArn`` …); ``caller_arn`` is the
    ARN of the principal that signed it (the user an omitted ``UserName`` means). Raises
    ``UnknownOperation`` for an operation the table does not know.
    """
    rule = _TABLE.get(operation)
    if rule is None:
        raise UnknownOperation(operation)
    return unique(rule(_Request(operation, params, scope, lookup, caller_arn)))


def sts_required(operation: str, params: Mapping[str, Any]) -> list[Permission]:
    """What an STS request needs: nothing for GetCallerIdentity (always allowed), ``sts:AssumeRole``
    on the role for AssumeRole. Raises ``UnknownOperation`` for the others."""
    if operation == "GetCallerIdentity":
        return []
    if operation == "AssumeRole":
        role = params.get("RoleArn")
        return [Permission("sts:AssumeRole", role if isinstance(role, str) and role else "*")]
    raise UnknownOperation(operation)


def request_context(operation: str, params: Mapping[str, Any]) -> dict[str, list[str]]:
    """Condition keys the request itself sets: ``iam:PolicyARN`` (Attach/Detach User/Group Policy),
    ``iam:PermissionsBoundary`` (CreateUser), ``aws:RequestTag/<key>`` and ``aws:TagKeys`` (the
    operations that carry tags or tag keys)."""
    context: dict[str, list[str]] = {}
    attaching = operation in (
        "AttachUserPolicy",
        "DetachUserPolicy",
        "AttachGroupPolicy",
        "DetachGroupPolicy",
    )
    if attaching and isinstance(params.get("PolicyArn"), str):
        context["iam:PolicyARN"] = [params["PolicyArn"]]
    if operation == "CreateUser" and isinstance(params.get("PermissionsBoundary"), str):
        context["iam:PermissionsBoundary"] = [params["PermissionsBoundary"]]
    tags: Sequence[Mapping[str, Any]] = ()
    if operation in ("CreateUser", "CreatePolicy", "TagUser", "TagPolicy"):
        tags = params.get("Tags") or ()
    keys: list[str] = []
    for tag in tags:
        key = tag.get("Key")
        if isinstance(key, str):
            keys.append(key)
            context[f"aws:RequestTag/{key}"] = [str(tag.get("Value") or "")]
    if operation in ("UntagUser", "UntagPolicy"):
        keys = [key for key in params.get("TagKeys") or () if isinstance(key, str)]
    if keys:
        context["aws:TagKeys"] = keys
    return context
