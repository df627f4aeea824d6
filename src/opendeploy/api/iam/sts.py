"""STS's GetCallerIdentity (``aws sts get-caller-identity``), served by the IAM adapter's route.

STS speaks the same Query protocol as IAM (``POST /``, ``Action=GetCallerIdentity&Version=2011-06-15``)
on the same port; what tells the two apart before any of the body is read is the SigV4 credential
scope's service (``Credential=AKID/<date>/<region>/sts/aws4_request``), which is also the signing
name the signature is verified with (``IamService`` does that, with IAM's signature checks and error
codes: ``InvalidClientTokenId``, ``SignatureDoesNotMatch``, …). Responses and errors are IAM's XML
documents in STS's namespace.

GetCallerIdentity needs no permission: AWS answers it for any valid credentials, even those of a user
with an explicit ``Deny *`` (``domain/iam_permissions.sts_required`` is empty), so no policy is
evaluated. It answers the key's principal ARN, the server's account id and the principal's user id:
the IAM user's ``AIDA…`` id, or for the administrator (not an IAM user row) the stable id GetUser
gives it. Every other STS action is ``InvalidAction``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response

from opendeploy.api import sigv4
from opendeploy.api.errors import ApiError
from opendeploy.api.iam import protocol
from opendeploy.api.server_state import ServerState
from opendeploy.api.validation import operation_model, validate_request
from opendeploy.domain import iam_permissions
from opendeploy.settings import Settings
from opendeploy.store import iam_users
from opendeploy.store.access_keys import StoredAccessKey

SIGNING_NAME = "sts"
SERVICE_NAME = "sts"
API_VERSION = "2011-06-15"
NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
# The service of an Authorization header's credential scope: Credential=<key>/<date>/<region>/<service>/…
_SCOPE_SERVICE = re.compile(r"Credential=[^/,\s]*/[^/,\s]*/[^/,\s]*/([^/,\s]*)/")

StsHandler = Callable[[Session, Settings, StoredAccessKey], dict[str, Any]]


def is_sts_request(incoming: sigv4.IncomingRequest) -> bool:
    """Whether the request's signature is scoped to STS (read from the Authorization header alone)."""
    match = _SCOPE_SERVICE.search(incoming.header("authorization") or "")
    return match is not None and match.group(1) == SIGNING_NAME


def get_caller_identity(session: Session, settings: Settings, key: StoredAccessKey) -> dict[str, Any]:
    arn = key.principal_arn
    user = iam_users.find_user_by_arn(session, arn)
    user_id = user.user_id if user is not None else iam_users.stable_user_id(arn)
    return {"UserId": user_id, "Account": settings.account_id, "Arn": arn}


STS_OPERATIONS: dict[str, StsHandler] = {"GetCallerIdentity": get_caller_identity}


def serve(state: ServerState, key: StoredAccessKey, body: bytes, request_id: str) -> Response:
    """Answer an STS request whose signature (by ``key``) is verified (in a worker thread)."""
    form = protocol.parse_form(body)
    action = protocol.read_action(form, "STS", API_VERSION)
    handler = STS_OPERATIONS.get(action)
    model = operation_model(action, SERVICE_NAME)
    if handler is None or model is None:
        raise ApiError(
            "InvalidAction",
            f"The action {action} is not valid for this endpoint: this server's STS API offers "
            f"{', '.join(sorted(STS_OPERATIONS))}.",
        )
    params = protocol.decode(form, model)
    try:
        validate_request(model, params)
    except ApiError as error:
        raise ApiError("ValidationError", error.message) from None
    if iam_permissions.sts_required(action, params):  # only what anyone may call is served here
        raise RuntimeError(f"STS {action} needs permissions this server does not evaluate")
    with state.database.transaction(write=False) as session:
        result = handler(session, state.settings, key)
    return protocol.response(model, result, request_id, namespace=NAMESPACE)
