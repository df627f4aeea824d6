"""Access keys repository: create keys (secret returned once, stored encrypted) and look them up."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from opendeploy.store.models.credentials import AccessKey
from opendeploy.store.secrets import SecretBox

_KEY_ID_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


@dataclass(frozen=True)
class NewAccessKey:
    access_key_id: str
    secret_access_key: str
    principal_arn: str


@dataclass(frozen=True)
class StoredAccessKey:
    """An active key with its decrypted secret, as the signature verifier needs it."""

    access_key_id: str
    secret_access_key: str
    principal_arn: str
    is_admin: bool
    instance_name: str | None


def new_access_key_id() -> str:
    """An id shaped like AWS's (``AKIA`` + 16 characters), so tools that check the shape accept it."""
    return "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))


def create_access_key(
    session: Session,
    box: SecretBox,
    *,
    principal_arn: str,
    now: float,
    is_admin: bool = False,
    instance_name: str | None = None,
    description: str = "",
) -> NewAccessKey:
    """Store a new key; the returned secret is the only time it is available in the clear."""
    access_key_id = new_access_key_id()
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    session.add(
        AccessKey(
            access_key_id=access_key_id,
            secret_ciphertext=box.encrypt(secret),
            principal_arn=principal_arn,
            is_admin=is_admin,
            instance_name=instance_name,
            description=description,
            create_time=now,
            active=True,
        )
    )
    session.flush()
    return NewAccessKey(access_key_id, secret, principal_arn)


def find_access_key(session: Session, box: SecretBox, access_key_id: str) -> StoredAccessKey | None:
    """The active key with this id, or ``None``."""
    row = session.get(AccessKey, access_key_id)
    if row is None or not row.active:
        return None
    return StoredAccessKey(
        access_key_id=row.access_key_id,
        secret_access_key=box.decrypt(row.secret_ciphertext),
        principal_arn=row.principal_arn,
        is_admin=row.is_admin,
        instance_name=row.instance_name,
    )


def has_admin_key(session: Session) -> bool:
    return (
        session.scalar(
            select(AccessKey.access_key_id).where(AccessKey.is_admin.is_(True), AccessKey.active.is_(True))
        )
        is not None
    )
