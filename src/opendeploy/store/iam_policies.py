"""IAM managed policies, groups and attachments repository (the rows of ``models/iam_policies``).

The IAM handlers decide what is allowed (quotas, conflicts, IAM's messages); this module reads and
writes rows. ``policies_of_user`` gathers every policy document that applies to a user — inline, its
groups' inline, and the managed policies attached to it or its groups — for the policy evaluator.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from opendeploy.domain import managed_policies
from opendeploy.store.models.iam_policies import (
    IamGroup,
    IamGroupMember,
    IamGroupPolicy,
    IamManagedPolicy,
    IamPolicyAttachment,
    IamPolicyVersion,
)
from opendeploy.store.models.iam_users import IamUser

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
USER, GROUP = "user", "group"


class NameTaken(ValueError):
    """A policy or group of that name (in any case) exists already."""


def _new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


# --- customer managed policies ------------------------------------------------------------------------


def policy_arn(account_id: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:policy{path}{name}"


def create_policy(
    session: Session,
    *,
    account_id: str,
    name: str,
    path: str,
    description: str | None,
    document: str,
    now: float,
) -> IamManagedPolicy:
    """A new customer managed policy whose version ``v1`` is ``document``; ``NameTaken`` if it exists."""
    if find_policy_by_name(session, name) is not None:
        raise NameTaken(name)
    policy = IamManagedPolicy(
        arn=policy_arn(account_id, path, name),
        policy_id=_new_id("ANPA"),
        name=name,
        name_key=name.lower(),
        path=path,
        description=description,
        default_version_id="v1",
        next_version=2,
        create_time=now,
        update_time=now,
    )
    policy.versions.append(IamPolicyVersion(number=1, document=document, create_time=now))
    try:
        with session.begin_nested():  # a concurrent creation of the same name loses here, cleanly
            session.add(policy)
    except IntegrityError:
        raise NameTaken(name) from None
    return policy


def find_policy(session: Session, arn: str, *, for_update: bool = False) -> IamManagedPolicy | None:
    statement = select(IamManagedPolicy).where(IamManagedPolicy.arn == arn)
    if for_update:
        statement = statement.with_for_update()
    return session.scalar(statement)


def find_policy_by_name(session: Session, name: str) -> IamManagedPolicy | None:
    return session.scalar(select(IamManagedPolicy).where(IamManagedPolicy.name_key == name.lower()))


def list_policies(session: Session, *, path_prefix: str) -> list[IamManagedPolicy]:
    statement = select(IamManagedPolicy).where(
        func.substr(IamManagedPolicy.path, 1, len(path_prefix)) == path_prefix
    )
    return list(session.scalars(statement.order_by(IamManagedPolicy.name_key)))


def find_version(policy: IamManagedPolicy, version_id: str) -> IamPolicyVersion | None:
    return next((version for version in policy.versions if version.version_id == version_id), None)


def add_version(
    session: Session, policy: IamManagedPolicy, document: str, *, set_default: bool, now: float
) -> IamPolicyVersion:
    version = IamPolicyVersion(number=policy.next_version, document=document, create_time=now)
    policy.versions.append(version)
    policy.next_version += 1
    policy.update_time = now
    if set_default:
        policy.default_version_id = version.version_id
    session.flush()
    return version


def delete_version(session: Session, policy: IamManagedPolicy, version: IamPolicyVersion) -> None:
    policy.versions.remove(version)
    session.flush()


def delete_policy(session: Session, policy: IamManagedPolicy) -> None:
    session.delete(policy)
    session.flush()


def managed_document(session: Session, arn: str) -> str | None:
    """The default version's document of managed policy ``arn``: an AWS managed one from the server's
    code, a customer managed one from the database; None if there is no such policy."""
    if managed_policies.is_managed_policy(arn):
        return managed_policies.document_json(arn)
    policy = find_policy(session, arn)
    return default_document(policy) if policy is not None else None


def default_document(policy: IamManagedPolicy) -> str:
    version = find_version(policy, policy.default_version_id)
    if version is None:  # never: the default version cannot be deleted
        raise LookupError(f"{policy.arn} has no version {policy.default_version_id}")
    return version.document


# --- groups -------------------------------------------------------------------------------------------


def group_arn(account_id: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:group{path}{name}"


def create_group(session: Session, *, account_id: str, name: str, path: str, now: float) -> IamGroup:
    if find_group(session, name) is not None:
        raise NameTaken(name)
    group = IamGroup(
        group_id=_new_id("AGPA"),
        name=name,
        name_key=name.lower(),
        path=path,
        arn=group_arn(account_id, path, name),
        create_time=now,
    )
    try:
        with session.begin_nested():
            session.add(group)
    except IntegrityError:
        raise NameTaken(name) from None
    return group


def find_group(session: Session, name: str, *, for_update: bool = False) -> IamGroup | None:
    statement = select(IamGroup).where(IamGroup.name_key == name.lower())
    if for_update:
        statement = statement.with_for_update()
    return session.scalar(statement)


def list_groups(session: Session, *, path_prefix: str) -> list[IamGroup]:
    statement = select(IamGroup).where(func.substr(IamGroup.path, 1, len(path_prefix)) == path_prefix)
    return list(session.scalars(statement.order_by(IamGroup.name_key)))


def delete_group(session: Session, group: IamGroup) -> None:
    session.delete(group)
    session.flush()


def members(session: Session, group: IamGroup) -> list[IamUser]:
    statement = (
        select(IamUser)
        .join(IamGroupMember, IamGroupMember.user_id == IamUser.user_id)
        .where(IamGroupMember.group_id == group.group_id)
        .order_by(IamUser.name_key)
    )
    return list(session.scalars(statement))


def groups_of_user(session: Session, user: IamUser) -> list[IamGroup]:
    statement = (
        select(IamGroup)
        .join(IamGroupMember, IamGroupMember.group_id == IamGroup.group_id)
        .where(IamGroupMember.user_id == user.user_id)
        .order_by(IamGroup.name_key)
    )
    return list(session.scalars(statement))


def add_member(session: Session, group: IamGroup, user: IamUser) -> None:
    """Add ``user`` to ``group`` (nothing happens if it is a member already, as in IAM)."""
    exists = session.get(IamGroupMember, (group.group_id, user.user_id))
    if exists is None:
        session.add(IamGroupMember(group_id=group.group_id, user_id=user.user_id))
        session.flush()


def remove_member(session: Session, group: IamGroup, user: IamUser) -> bool:
    result = session.execute(
        delete(IamGroupMember).where(
            IamGroupMember.group_id == group.group_id, IamGroupMember.user_id == user.user_id
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def find_group_policy(group: IamGroup, name: str) -> IamGroupPolicy | None:
    return next((policy for policy in group.policies if policy.name == name), None)


def put_group_policy(session: Session, group: IamGroup, name: str, document: str) -> None:
    policy = find_group_policy(group, name)
    if policy is None:
        group.policies.append(IamGroupPolicy(name=name, document=document))
    else:
        policy.document = document
    session.flush()


def delete_group_policy(session: Session, group: IamGroup, policy: IamGroupPolicy) -> None:
    group.policies.remove(policy)
    session.flush()


# --- attachments --------------------------------------------------------------------------------------


def attached(session: Session, principal_type: str, principal_id: str) -> list[str]:
    """ARNs of the managed policies attached to a user or a group, in the order they were attached."""
    statement = (
        select(IamPolicyAttachment.policy_arn)
        .where(
            IamPolicyAttachment.principal_type == principal_type,
            IamPolicyAttachment.principal_id == principal_id,
        )
        .order_by(IamPolicyAttachment.id)
    )
    return list(session.scalars(statement))


def attach(session: Session, principal_type: str, principal_id: str, arn: str, now: float) -> None:
    """Attach ``arn`` (again is a no-op, as in IAM)."""
    if arn in attached(session, principal_type, principal_id):
        return
    try:
        with session.begin_nested():
            session.add(
                IamPolicyAttachment(
                    principal_type=principal_type, principal_id=principal_id, policy_arn=arn, create_time=now
                )
            )
    except IntegrityError:  # attached concurrently: the same outcome
        pass


def detach(session: Session, principal_type: str, principal_id: str, arn: str) -> bool:
    result = session.execute(
        delete(IamPolicyAttachment).where(
            IamPolicyAttachment.principal_type == principal_type,
            IamPolicyAttachment.principal_id == principal_id,
            IamPolicyAttachment.policy_arn == arn,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def attachment_count(session: Session, arn: str) -> int:
    statement = (
        select(func.count()).select_from(IamPolicyAttachment).where(IamPolicyAttachment.policy_arn == arn)
    )
    return int(session.scalar(statement) or 0)


# --- what applies to a user ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicySource:
    """One policy document that applies to a principal, and where it comes from (for messages and the
    audit trail): ``name`` is an inline policy's ``<user|group>/<name>`` or a managed policy's ARN."""

    name: str
    document: str


def policies_of_user(session: Session, user: IamUser) -> list[PolicySource]:
    """Every policy that applies to ``user``: its inline policies, its groups' inline policies, and the
    managed policies attached to it or to its groups (each once; AWS managed ones from the server's
    code)."""
    sources = [PolicySource(f"user/{user.name}/{p.name}", p.document) for p in user.policies]
    arns = attached(session, USER, user.user_id)
    for group in groups_of_user(session, user):
        sources += [PolicySource(f"group/{group.name}/{p.name}", p.document) for p in group.policies]
        arns += [arn for arn in attached(session, GROUP, group.group_id) if arn not in arns]
    for arn in arns:
        document = managed_document(session, arn)
        if document is not None:
            sources.append(PolicySource(arn, document))
    return sources
