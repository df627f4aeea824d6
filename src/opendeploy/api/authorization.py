"""Authorization: which IAM policies apply to the signer of a request, and whether they allow what the
request needs. The one place the API adapters ask "may this caller do this?".

- **Policies of a caller** (``policies_for``): the administrator key ``opendeploy init`` made acts with
  AWS's ``AdministratorAccess``; an IAM user's key with the user's inline policies, its groups' inline
  policies and every managed policy attached to it or its groups; any other key with none (implicit deny).
- **What a request needs** comes from the permission tables in ``domain/`` (``codedeploy_permissions``,
  ``iam_permissions`` …): a list of requirements, every one of which must be allowed.
- **The decision** is the policy evaluator's (``domain/iam_policy``): explicit Deny wins, then Allow, else
  implicit deny, with the global condition keys a self-hosted server knows (``request_context``).
- **The refusal** reads as AWS's: ``User: <arn> is not authorized to perform: <action> on resource: <arn>``
  (with "with an explicit deny" when a Deny statement decided).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opendeploy.domain import managed_policies
from opendeploy.domain.iam_policy import Outcome, Policy, Request, cached_policy, evaluate
from opendeploy.domain.permissions import AnyOf, Permission, Requirement
from opendeploy.store import iam_policies
from opendeploy.store.models.applications import Application
from opendeploy.store.models.deployment_groups import DeploymentGroup
from opendeploy.store.models.deployments import Deployment
from opendeploy.store.models.iam_users import IamUser

_ADMINISTRATOR = (managed_policies.managed_policy(managed_policies.ADMINISTRATOR_ACCESS),)


@dataclass(frozen=True)
class Caller:
    """Who signed a request, and what the server knows of the connection it came over."""

    arn: str
    access_key_id: str
    is_admin: bool
    source_ip: str | None = None
    secure_transport: bool = False


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused: the permission not allowed, and whether a Deny statement decided."""

    permission: Permission
    explicit: bool

    def message(self, caller_arn: str) -> str:
        how = " with an explicit deny" if self.explicit else ""
        return (
            f"User: {caller_arn} is not authorized to perform: {self.permission.action} on resource: "
            f"{self.permission.resource}{how}"
        )


@dataclass(frozen=True)
class Principal:
    """A caller's policies and the condition keys that describe it."""

    policies: Sequence[Policy]
    context: Mapping[str, Any]


def _user_by_arn(session: Session, arn: str) -> IamUser | None:
    return session.scalar(select(IamUser).where(IamUser.arn == arn))


def _managed_document(session: Session) -> Any:
    def document(arn: str) -> str | None:
        if managed_policies.is_managed_policy(arn):
            return managed_policies.document_json(arn)
        policy = iam_policies.find_policy(session, arn)
        return iam_policies.default_document(policy) if policy is not None else None

    return document


def principal_for(session: Session, caller: Caller, now: float) -> Principal:
    """The policies that apply to ``caller`` and the global condition keys of its request."""
    context: dict[str, Any] = {
        "aws:PrincipalArn": caller.arn,
        "aws:PrincipalAccount": caller.arn.split(":")[4] if caller.arn.count(":") >= 5 else "",
        "aws:SecureTransport": caller.secure_transport,
        "aws:CurrentTime": datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": str(int(now)),
    }
    if caller.source_ip:
        context["aws:SourceIp"] = caller.source_ip
    if caller.is_admin:
        context["aws:username"] = caller.arn.rsplit("/", 1)[-1]
        return Principal(_ADMINISTRATOR, context)
    user = _user_by_arn(session, caller.arn)
    if user is None:
        return Principal((), context)
    context["aws:username"] = user.name
    context["aws:userid"] = user.user_id
    for tag in user.tags:
        context[f"aws:PrincipalTag/{tag['Key']}"] = tag["Value"]
    sources = iam_policies.policies_of_user(session, user, _managed_document(session))
    return Principal(tuple(cached_policy(source.document, source.name) for source in sources), context)


def refusal(
    principal: Principal, requirements: Iterable[Requirement], extra_context: Mapping[str, Any] | None = None
) -> Refusal | None:
    """The first requirement ``principal``'s policies do not allow (None: every one is allowed)."""
    context = {**principal.context, **(extra_context or {})}
    for requirement in requirements:
        options = requirement.options if isinstance(requirement, AnyOf) else (requirement,)
        first: Refusal | None = None
        for permission in options:
            decision = evaluate(principal.policies, Request(permission.action, permission.resource, context))
            if decision.allowed:
                first = None
                break
            if first is None:
                first = Refusal(permission, decision.outcome is Outcome.EXPLICIT_DENY)
        if first is not None:
            return first
    return None


class SessionLookup:
    """The permission tables' lookups (``codedeploy_permissions.Lookup``) over the database."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def deployment_group_of(self, deployment_id: str) -> tuple[str, str] | None:
        row = self.session.execute(
            select(Application.name, DeploymentGroup.name)
            .select_from(Deployment)
            .join(Application, Application.id == Deployment.application_id)
            .join(DeploymentGroup, DeploymentGroup.id == Deployment.deployment_group_id)
            .where(Deployment.id == deployment_id)
        ).first()
        return (row[0], row[1]) if row is not None else None

    def deployment_config_of_group(self, application_name: str, deployment_group_name: str) -> str | None:
        row = self.session.execute(
            select(DeploymentGroup.deployment_config_name)
            .join(Application, Application.id == DeploymentGroup.application_id)
            .where(Application.name == application_name, DeploymentGroup.name == deployment_group_name)
        ).first()
        return row[0] if row is not None else None

    def user_path(self, user_name: str) -> str | None:
        user = self.session.scalar(select(IamUser).where(IamUser.name_key == user_name.lower()))
        return user.path if user is not None else None

    def group_path(self, group_name: str) -> str | None:
        group = iam_policies.find_group(self.session, group_name)
        return group.path if group is not None else None
