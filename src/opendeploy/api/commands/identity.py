"""Which on-premises instance a command-service request comes from.

As in AWS, an on-premises instance is registered with an IAM user ARN (or an IAM session ARN), and a
request signed with an access key of that principal comes from that instance. The link is resolved at
request time, so a key may exist before its instance is registered (``aws deploy register`` creates the
IAM user and key first) and a deregistered instance gets nothing. The administrator key is not an
instance.

The agent also names itself in ``HostIdentifier``: AWS's agent sends its IAM user or session ARN for an
on-premises host (wire protocol §1.3); the instance's CodeDeploy ARN or its name are accepted too. Any
of them must be the signing instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from opendeploy.api.errors import ApiError
from opendeploy.api.sigv4 import JSON_ERRORS
from opendeploy.domain.arns import instance_arn
from opendeploy.settings import Settings
from opendeploy.store.access_keys import StoredAccessKey
from opendeploy.store.models import AccessKey, OnPremisesInstance
from opendeploy.store.prepared import Prepared

CLIENT_EXCEPTION = "ClientException"


@dataclass(frozen=True)
class InstanceIdentity:
    """The registered instance that signed a request."""

    name: str
    host: str  # the key its host commands are stored under: the instance's ARN
    host_identifiers: frozenset[str]  # what the agent may send as HostIdentifier


# Prepared statements on the session's connection (``store.prepared``): this runs on every agent request.
_REGISTERED = OnPremisesInstance.deregister_time.is_(None)
_COLUMNS = (OnPremisesInstance.name, OnPremisesInstance.iam_user_arn, OnPremisesInstance.iam_session_arn)
_KEY_ACTIVE_STATEMENT = select(AccessKey.active).where(AccessKey.access_key_id == bindparam("key_id"))
_KEY_ACTIVE = Prepared(_KEY_ACTIVE_STATEMENT)
_WITH_KEY_ACTIVE = (_KEY_ACTIVE_STATEMENT.scalar_subquery().label("key_active"), *_COLUMNS)
# The usual case in one round trip: the key's instance by its name or its IAM user ARN, with whether the
# key is still active. One index search each (SQLite scans a whole index for conditions joined with OR);
# an IAM session ARN, which never looks like a user ARN, is looked up only when the user ARN finds none.
_KEY_AND_INSTANCE_BY_NAME = Prepared(
    select(*_WITH_KEY_ACTIVE).where(OnPremisesInstance.name == bindparam("name"), _REGISTERED)
)
_KEY_AND_INSTANCE_BY_USER_ARN = Prepared(
    select(*_WITH_KEY_ACTIVE).where(_REGISTERED, OnPremisesInstance.iam_user_arn == bindparam("arn"))
)
_BY_SESSION_ARN = Prepared(
    select(*_COLUMNS).where(_REGISTERED, OnPremisesInstance.iam_session_arn == bindparam("arn"))
)
_REGISTERED_NAME = Prepared(
    select(OnPremisesInstance.name).where(OnPremisesInstance.name == bindparam("name"), _REGISTERED)
)


def refused(message: str) -> ApiError:
    return ApiError(CLIENT_EXCEPTION, message)


def signing_instance(session: Session, key: StoredAccessKey, settings: Settings) -> InstanceIdentity:
    """The registered instance whose credentials signed the request, or a ClientException; a key no
    longer active (a caller may have verified the signature with a remembered secret) is refused as
    an unknown one."""
    if key.is_admin:
        raise refused(
            f"The request was signed with an administrator key ({key.principal_arn}); agents sign with "
            "their instance's own credentials"
        )
    connection = session.connection()
    if key.instance_name:
        found = _KEY_AND_INSTANCE_BY_NAME.first(
            connection, {"key_id": key.access_key_id, "name": key.instance_name}
        )
    else:
        found = _KEY_AND_INSTANCE_BY_USER_ARN.first(
            connection, {"key_id": key.access_key_id, "arn": key.principal_arn}
        )
    if found is not None and found.key_active:
        return _identity(found, settings)
    if not (found.key_active if found is not None else _key_active(connection, key)):
        raise ApiError(JSON_ERRORS.unknown_key, "The security token included in the request is invalid.")
    # An active key whose instance has neither that name nor that user ARN: an IAM session's, or none.
    instance = None if key.instance_name else _BY_SESSION_ARN.first(connection, {"arn": key.principal_arn})
    if instance is None:
        raise refused(
            f"The signing credentials ({key.principal_arn}) do not belong to a registered on-premises "
            "instance"
        )
    return _identity(instance, settings)


def _key_active(connection: Any, key: StoredAccessKey) -> bool:
    row = _KEY_ACTIVE.first(connection, {"key_id": key.access_key_id})
    return row is not None and bool(row.active)


def _identity(instance: Any, settings: Settings) -> InstanceIdentity:
    arn = instance_arn(settings.region, settings.account_id, instance.name)
    names = {instance.name, arn, instance.iam_user_arn, instance.iam_session_arn}
    return InstanceIdentity(instance.name, arn, frozenset(name for name in names if name))


def check_host_identifier(identity: InstanceIdentity, host_identifier: str) -> None:
    """Refuse a HostIdentifier that does not name the signing instance."""
    if host_identifier not in identity.host_identifiers:
        raise refused(
            f"HostIdentifier {host_identifier!r} is not the instance that signed this request "
            f"({identity.name})"
        )


def still_registered(session: Session, identity: InstanceIdentity) -> bool:
    return _REGISTERED_NAME.first(session.connection(), {"name": identity.name}) is not None
