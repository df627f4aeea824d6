"""IAM users repository: users, their inline policies and their access keys.

A user's access keys are ``access_keys`` rows with the user's ARN as ``principal_arn`` (never
administrator keys), created with ``store.access_keys.create_access_key`` so their secrets are
encrypted like every other key's and signature verification finds them.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from opendeploy.domain.managed_policies import ADMINISTRATOR_ACCESS
from opendeploy.store import iam_policies
from opendeploy.store.access_keys import NewAccessKey, create_access_key
from opendeploy.store.models.credentials import AccessKey
from opendeploy.store.models.iam_users import IamUser, IamUserPolicy
from opendeploy.store.secrets import SecretBox

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


class UserExists(ValueError):
    """A user of that name (in any case) exists already."""


def user_arn(account_id: str, path: str, name: str) -> str:
    """``arn:aws:iam::<account>:user<path><name>`` (the path starts and ends with ``/``)."""
    return f"arn:aws:iam::{account_id}:user{path}{name}"


def new_user_id() -> str:
    """An id shaped like IAM's user ids (``AIDA`` + 17 characters)."""
    return "AIDA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def stable_user_id(arn: str) -> str:
    """A user id (``AIDA`` + 17 characters) derived from a principal's ARN: the administrator's, the same
    on every server and restart (what GetUser and GetCallerIdentity have always answered for it)."""
    digest = base64.b32encode(hashlib.sha256(arn.encode()).digest()).decode()
    return "AIDA" + digest[:17]


def ensure_administrator(session: Session, arn: str, now: float) -> IamUser:
    """The administrator's IAM user (``arn``, made by ``opendeploy init``), with AWS's
    ``AdministratorAccess`` attached: created or re-attached if missing, so ``init`` also recovers an
    administrator whose policy was detached."""
    user = find_user_by_arn(session, arn)
    if user is None:
        path_and_name = arn.split(":", 5)[-1].removeprefix("user")
        path, _, name = path_and_name.rpartition("/")
        user = IamUser(
            user_id=stable_user_id(arn),
            name=name,
            name_key=name.lower(),
            path=path + "/",
            arn=arn,
            create_time=now,
            tags=[],
        )
        session.add(user)
        session.flush()
    iam_policies.attach(session, iam_policies.USER, user.user_id, ADMINISTRATOR_ACCESS, now)
    return user


def find_user_by_arn(session: Session, arn: str) -> IamUser | None:
    """The IAM user whose ARN is ``arn`` (the principal of a signing key), if any."""
    return session.scalar(select(IamUser).where(IamUser.arn == arn))


def find_user(session: Session, name: str, *, for_update: bool = False) -> IamUser | None:
    """The user called ``name`` (case does not matter); ``for_update`` locks the row (PostgreSQL)."""
    statement = select(IamUser).where(IamUser.name_key == name.lower())
    if for_update:
        statement = statement.with_for_update()
    return session.scalar(statement)


def create_user(
    session: Session, *, account_id: str, name: str, path: str, tags: Sequence[dict[str, str]], now: float
) -> IamUser:
    """Store a new user; ``UserExists`` if the name is taken."""
    if find_user(session, name) is not None:
        raise UserExists(name)
    user = IamUser(
        user_id=new_user_id(),
        name=name,
        name_key=name.lower(),
        path=path,
        arn=user_arn(account_id, path, name),
        create_time=now,
        tags=[dict(tag) for tag in tags],
    )
    try:
        with session.begin_nested():  # a concurrent creation of the same name loses here, cleanly
            session.add(user)
    except IntegrityError:
        raise UserExists(name) from None
    return user


def list_users(session: Session, *, path_prefix: str, after: str | None, limit: int) -> list[IamUser]:
    """Users whose path starts with ``path_prefix`` (case-sensitive), by name, after the name key
    ``after``; at most ``limit``."""
    statement = select(IamUser).where(func.substr(IamUser.path, 1, len(path_prefix)) == path_prefix)
    if after is not None:
        statement = statement.where(IamUser.name_key > after)
    return list(session.scalars(statement.order_by(IamUser.name_key).limit(limit)))


def delete_user(session: Session, user: IamUser) -> None:
    session.delete(user)
    session.flush()


def is_administrator(session: Session, arn: str) -> bool:
    """Whether ``arn`` is the principal of an administrator key (``opendeploy init``)."""
    statement = select(AccessKey.access_key_id).where(AccessKey.principal_arn == arn, AccessKey.is_admin)
    return session.scalar(statement.limit(1)) is not None


def access_keys(session: Session, arn: str, *, admin: bool = False) -> list[AccessKey]:
    """The keys of principal ``arn``, oldest first: its non-administrator keys, or with ``admin``
    its administrator keys."""
    statement = (
        select(AccessKey)
        .where(AccessKey.principal_arn == arn, AccessKey.is_admin.is_(admin))
        .order_by(AccessKey.create_time, AccessKey.access_key_id)
    )
    return list(session.scalars(statement))


def create_user_key(session: Session, box: SecretBox, user: IamUser, *, now: float) -> NewAccessKey:
    """A new active key for ``user``; the secret in the result is the only copy in the clear."""
    return create_access_key(
        session, box, principal_arn=user.arn, now=now, description=f"IAM user {user.name}"
    )


def delete_access_key(session: Session, key: AccessKey) -> None:
    session.delete(key)
    session.flush()


def find_policy(user: IamUser, name: str) -> IamUserPolicy | None:
    return next((policy for policy in user.policies if policy.name == name), None)


def put_policy(session: Session, user: IamUser, name: str, document: str) -> None:
    """Create or replace ``user``'s inline policy ``name``."""
    policy = find_policy(user, name)
    if policy is None:
        user.policies.append(IamUserPolicy(name=name, document=document))
    else:
        policy.document = document
    session.flush()


def delete_policy(session: Session, user: IamUser, policy: IamUserPolicy) -> None:
    user.policies.remove(policy)
    session.flush()
