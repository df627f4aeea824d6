"""Authorization: which IAM policies apply to the signer of a request, and whether they allow what the
request needs. The one place the API adapters ask "may this caller do this?".

- **Policies of a caller** (``principal_for``): an IAM user's key acts with the user's inline policies,
  its groups' inline policies and every managed policy attached to it or its groups (kept a few
  seconds: ``ShortLivedCache``); any other key with none (implicit deny). The administrator is no
  exception: ``opendeploy init`` makes it an IAM user with AWS's ``AdministratorAccess`` attached. An
  on-premises instance's credentials read the bundles of the revisions deployed to it and no others
  (``domain/instance_permissions``): the register commands' read-everything policy is read as that
  grant.
- **What a request needs** comes from the permission tables in ``domain/`` (``codedeploy_permissions``,
  ``iam_permissions`` …): a list of requirements, every one of which must be allowed.
- **The decision** is the policy evaluator's (``domain/iam_policy``): explicit Deny wins, then Allow, else
  implicit deny, with the global condition keys a self-hosted server knows (``principal_for``), those
  the request sets (``aws:RequestTag/…``) and the tags of each resource it names (``aws:ResourceTag/…``,
  looked up only for policies whose conditions read them: ``refusal``). A user's decisions are
  remembered with its cached policies (``iam_policy.DecisionMemo``), keyed by everything they depend on.
- **The refusal** reads as AWS's: ``User: <arn> is not authorized to perform: <action> on resource: <arn>``
  (with "with an explicit deny" when a Deny statement decided).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from opendeploy.domain.arns import parse_arn
from opendeploy.domain.iam_conditions import normalize_context
from opendeploy.domain.iam_policy import (
    DecisionMemo,
    Outcome,
    Policy,
    Request,
    allows_everything,
    cached_policy,
    evaluate,
    parse_policy,
    uses_resource_tags,
)
from opendeploy.domain.instance_permissions import instance_grant, is_registration_policy
from opendeploy.domain.permissions import AnyOf, Permission, Requirement
from opendeploy.domain.timestamps import iso_second
from opendeploy.store import iam_policies, iam_users
from opendeploy.store.deployment_names import names_of_deployment
from opendeploy.store.models.applications import Application
from opendeploy.store.models.deployment_configs import DeploymentConfigRecord
from opendeploy.store.models.deployment_groups import DeploymentGroup
from opendeploy.store.models.deployments import Deployment, DeploymentTarget
from opendeploy.store.models.iam_users import IamUser
from opendeploy.store.models.on_premises_instances import OnPremisesInstance
from opendeploy.store.models.revisions import Revision
from opendeploy.store.models.tags import ResourceTag
from opendeploy.store.prepared import Prepared


@dataclass(frozen=True)
class Caller:
    """Who signed a request, and what the server knows of the connection it came over."""

    arn: str
    access_key_id: str
    source_ip: str | None = None
    secure_transport: bool = False
    instance_name: str | None = None  # a key made for an on-premises instance by name
    bundles_matter: bool = False  # the request reads the bundle store: an instance's grant applies


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
    unrestricted: bool = False  # the policies allow everything (``iam_policy.allows_everything``)
    memo: DecisionMemo | None = None  # remembers decisions over exactly ``policies``


@dataclass(frozen=True)
class _UserPolicies:
    """An IAM user's identity and parsed policies, as last read from the database."""

    context: Mapping[str, Any]
    policies: tuple[Policy, ...]
    unrestricted: bool = False
    memo: DecisionMemo | None = None


V = TypeVar("V")


class ShortLivedCache(Generic[V]):
    """What requests read from the database again and again, kept ``ttl`` seconds so a busy caller's
    requests do not each run the queries. A change through this server forgets everything at once
    (``forget``); another replica's change is seen within ``ttl`` seconds (IAM itself is eventually
    consistent, too). Holds at most ``max_entries``, then starts over."""

    def __init__(self, ttl: float = 5.0, max_entries: int = 50_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[V, float]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def get(self, key: str, now: float) -> V | None:
        found = self._entries.get(key)
        return found[0] if found is not None and now - found[1] < self.ttl else None

    def generation(self) -> int:
        return self._generation

    def put(self, key: str, value: V, generation: int, now: float) -> None:
        with self._lock:
            if generation == self._generation:  # nothing changed while it was being read
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
                self._entries[key] = (value, now)

    def forget(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()


# Users' policies, by user ARN: forgotten on any change through IAM or to who is an instance.
POLICIES: ShortLivedCache[_UserPolicies] = ShortLivedCache()
# The (application, deployment group) names of a deployment, by id: its permissions are asked on its
# group's ARN. Forgotten when an application or a group is renamed or deleted (``NAME_CHANGES``).
DEPLOYMENT_GROUPS: ShortLivedCache[tuple[str, str]] = ShortLivedCache()
NAME_CHANGES = frozenset(
    {"UpdateApplication", "UpdateDeploymentGroup", "DeleteApplication", "DeleteDeploymentGroup"}
)


def _user_policies(session: Session, arn: str) -> _UserPolicies | None:
    now = time.monotonic()
    cached = POLICIES.get(arn, now)
    if cached is not None:
        return cached
    generation = POLICIES.generation()
    user = iam_users.find_user_by_arn(session, arn)
    if user is None:
        return None
    context: dict[str, Any] = {"aws:username": user.name, "aws:userid": user.user_id}
    for tag in user.tags:
        context[f"aws:PrincipalTag/{tag['Key']}"] = tag["Value"]
    instance = _registered_instance(session, arn, None) is not None
    sources = [
        source
        for source in iam_policies.policies_of_user(session, user)
        if not (instance and _is_registration_grant(source))
    ]
    policies = tuple(cached_policy(s.document, s.name) for s in sources)
    entry = _UserPolicies(context, policies, allows_everything(policies), DecisionMemo(policies))
    POLICIES.put(arn, entry, generation, now)
    return entry


def _is_registration_grant(source: iam_policies.PolicySource) -> bool:
    """The register commands' read-bundles policy on an instance's own user: that instance's grant
    (``instance_grant``), not access to every bucket."""
    owner, _, name = source.name.rpartition("/")
    return owner.startswith("user/") and is_registration_policy(name, source.document)


def _registered_instance(session: Session, arn: str, instance_name: str | None) -> str | None:
    """The name of the registered on-premises instance whose credentials these are, if any."""
    registered = OnPremisesInstance.deregister_time.is_(None)
    if instance_name:
        statement = select(OnPremisesInstance.name).where(
            OnPremisesInstance.name == instance_name, registered
        )
    else:
        statement = select(OnPremisesInstance.name).where(
            registered,
            or_(OnPremisesInstance.iam_user_arn == arn, OnPremisesInstance.iam_session_arn == arn),
        )
    return session.scalar(statement.limit(1))


def _bundles_deployed_to(session: Session, instance_name: str) -> list[tuple[str, str]]:
    statement = (
        select(Revision.s3_bucket, Revision.s3_key)
        .join(Deployment, Deployment.revision_id == Revision.id)
        .join(DeploymentTarget, DeploymentTarget.deployment_id == Deployment.id)
        .where(DeploymentTarget.target_id == instance_name, Revision.s3_bucket.is_not(None))
        .distinct()
    )
    return [(bucket, key) for bucket, key in session.execute(statement) if bucket and key]


def principal_for(session: Session, caller: Caller, now: float) -> Principal:
    """The policies that apply to ``caller`` and the global condition keys of its request."""
    context: dict[str, Any] = {
        "aws:PrincipalArn": caller.arn,
        "aws:PrincipalAccount": caller.arn.split(":")[4] if caller.arn.count(":") >= 5 else "",
        "aws:SecureTransport": caller.secure_transport,
        "aws:CurrentTime": iso_second(now),
        "aws:EpochTime": str(int(now)),
    }
    if caller.source_ip:
        context["aws:SourceIp"] = caller.source_ip
    policies: tuple[Policy, ...] = ()
    unrestricted = False
    memo = None
    user = _user_policies(session, caller.arn)
    if user is not None:
        context.update(user.context)
        policies, unrestricted, memo = user.policies, user.unrestricted, user.memo
    if caller.bundles_matter and not unrestricted:
        instance = _registered_instance(session, caller.arn, caller.instance_name)
        grant = instance_grant(_bundles_deployed_to(session, instance)) if instance else None
        if grant is not None:
            policies += (parse_policy(grant, f"instance/{instance}"),)
            memo = None  # the user's memo knows its policies without this grant
    return Principal(policies, context, unrestricted, memo)


def refusal(
    principal: Principal,
    requirements: Iterable[Requirement],
    extra_context: Mapping[str, Any] | None = None,
    resource_tags: Callable[[str], Mapping[str, str]] | None = None,
) -> Refusal | None:
    """The first requirement ``principal``'s policies do not allow (None: every one is allowed).

    ``resource_tags`` gives the tags of the resource an ARN names: each permission is then decided with
    ``aws:ResourceTag/<key>`` of its own resource — looked up only when a policy's condition reads them."""
    if principal.unrestricted:
        return None
    context = normalize_context({**principal.context, **(extra_context or {})})
    memo = principal.memo
    reads_tags = memo.reads_resource_tags if memo is not None else uses_resource_tags(principal.policies)
    tagged = resource_tags is not None and reads_tags
    memo = None if tagged else memo
    for requirement in requirements:
        options = requirement.options if isinstance(requirement, AnyOf) else (requirement,)
        first: Refusal | None = None
        for permission in options:
            if memo is not None:
                decision = memo.decide(permission.action, permission.resource, context)
            else:
                asked = context
                if tagged and resource_tags is not None:
                    tags = resource_tags(permission.resource)
                    asked = {
                        **context,
                        **{f"aws:resourcetag/{key.lower()}": value for key, value in tags.items()},
                    }
                decision = evaluate(
                    principal.policies, Request(permission.action, permission.resource, asked)
                )
            if decision.allowed:
                first = None
                break
            if first is None:
                first = Refusal(permission, decision.outcome is Outcome.EXPLICIT_DENY)
        if first is not None:
            return first
    return None


# A permission on the ARN of no resource: an operation missing from its service's permission table is
# allowed only by a policy that allows everything, rather than guessed at.
_UNMAPPED = Permission("opendeploy:Unmapped", "arn:aws:opendeploy:::unmapped-operation")


def unmapped(action: str) -> list[Requirement]:
    """What an operation the permission tables do not know needs (``UnknownOperation``)."""
    return [Permission(action, "*"), _UNMAPPED]


# A lookup authorization makes on many requests, compiled once (``store/prepared``).
_CONFIG_OF_GROUP = Prepared(
    select(DeploymentGroup.deployment_config_name.label("config"))
    .join(Application, Application.id == DeploymentGroup.application_id)
    .where(Application.name == bindparam("application"), DeploymentGroup.name == bindparam("group"))
)


class SessionLookup:
    """The permission tables' lookups (``codedeploy_permissions.Lookup``) over the database."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def deployment_group_of(self, deployment_id: str) -> tuple[str, str] | None:
        now = time.monotonic()
        cached = DEPLOYMENT_GROUPS.get(deployment_id, now)
        if cached is not None:
            return cached
        generation = DEPLOYMENT_GROUPS.generation()
        names = names_of_deployment(self.session, deployment_id)  # the answer reuses them, if it needs them
        if names is None:
            return None
        DEPLOYMENT_GROUPS.put(deployment_id, names, generation, now)
        return names

    def deployment_config_of_group(self, application_name: str, deployment_group_name: str) -> str | None:
        row = _CONFIG_OF_GROUP.first(
            self.session.connection(), {"application": application_name, "group": deployment_group_name}
        )
        return row.config if row is not None else None

    def resource_tags(self, arn: str) -> dict[str, str]:
        """The tags of the application, deployment group or deployment configuration ``arn`` names
        (``aws:ResourceTag/…``); none for any other resource, a pattern, or what does not exist."""
        parsed = parse_arn(arn)
        if parsed is None or any("*" in name or "?" in name for name in parsed.names):
            return {}
        if parsed.resource_type == "application":
            owner = select(Application.id).where(Application.name == parsed.names[0])
        elif parsed.resource_type == "deploymentgroup":
            owner = (
                select(DeploymentGroup.id)
                .join(Application, Application.id == DeploymentGroup.application_id)
                .where(Application.name == parsed.names[0], DeploymentGroup.name == parsed.names[1])
            )
        elif parsed.resource_type == "deploymentconfig":
            owner = select(DeploymentConfigRecord.id).where(DeploymentConfigRecord.name == parsed.names[0])
        else:
            return {}
        rows = self.session.execute(
            select(ResourceTag.key, ResourceTag.value).where(
                ResourceTag.resource_kind == parsed.resource_type,
                ResourceTag.resource_id == owner.scalar_subquery(),
            )
        )
        return {key: value for key, value in rows}

    def user_path(self, user_name: str) -> str | None:
        user = self.session.scalar(select(IamUser).where(IamUser.name_key == user_name.lower()))
        return user.path if user is not None else None

    def group_path(self, group_name: str) -> str | None:
        group = iam_policies.find_group(self.session, group_name)
        return group.path if group is not None else None
