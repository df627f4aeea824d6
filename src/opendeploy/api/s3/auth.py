"""Who may call the S3 API: signature checks and the per-operation authorisation rule.

Requests are signed with SigV4 for the ``s3`` signing name (header, presigned query, UNSIGNED-PAYLOAD
and streaming payloads, all through ``api.sigv4``). Presigned URLs in the older query-string form
(``AWSAccessKeyId``/``Signature``/``Expires``, SigV2) are accepted too, because botocore still makes
those for ``us-east-1`` profiles that do not set ``signature_version = s3v4`` — ``aws s3 presign``
with opendeploy's profile included; the expected signature is botocore's own (``HmacV1QueryAuth``).

Authorisation: the signer's IAM policies decide (``api/authorization``), with the actions and resources
the S3 documentation names for each operation (``domain/s3_permissions``); an on-premises instance's
credentials read the bundles of the revisions deployed to it and nothing else unless a policy grants
more (``domain/instance_permissions``).
"""

from __future__ import annotations

import hmac
import time
from urllib.parse import parse_qsl, unquote, urlsplit

from botocore.auth import HmacV1QueryAuth
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from opendeploy.api import sigv4
from opendeploy.api.authorization import Caller, principal_for, refusal
from opendeploy.api.errors import ApiError
from opendeploy.api.s3.errors import S3Error
from opendeploy.api.server_state import ServerState
from opendeploy.domain import s3_permissions
from opendeploy.domain.arns import s3_object_arn
from opendeploy.domain.permissions import Permission, UnknownOperation


def authenticate(state: ServerState, incoming: sigv4.IncomingRequest) -> sigv4.VerifiedSignature:
    """Check the request's signature (run in a worker thread: it looks the key up in the database)."""
    query = dict(parse_qsl(incoming.raw_query, keep_blank_values=True))
    authorization = incoming.header("authorization") or ""
    if authorization.startswith("AWS "):
        raise S3Error(
            "InvalidRequest",
            "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
        )
    if not authorization and "Signature" in query and "AWSAccessKeyId" in query:
        return _verify_v2_query(state, incoming, query)
    try:
        return sigv4.verify(
            incoming,
            signing_name="s3",
            lookup=state.find_key,
            regions=[state.settings.region],
            s3=True,
            codes=sigv4.S3_ERRORS,
        )
    except ApiError as error:
        raise S3Error.from_api_error(error) from None


class _ExpectedV2Signature(HmacV1QueryAuth):
    """botocore's SigV2 query signer, with the URL's own ``Expires`` instead of a new one."""

    def __init__(self, credentials: Credentials, expires: str) -> None:
        super().__init__(credentials)
        self._expires_value = expires

    def _get_date(self) -> str:
        return self._expires_value


def _verify_v2_query(
    state: ServerState, incoming: sigv4.IncomingRequest, query: dict[str, str]
) -> sigv4.VerifiedSignature:
    access_key_id, signature, expires = query["AWSAccessKeyId"], query["Signature"], query.get("Expires", "")
    if not expires.isdigit():
        raise S3Error("AccessDenied", "Query-string authentication requires the Expires parameter", 403)
    if int(expires) < time.time():
        raise S3Error("AccessDenied", "Request has expired", 403, Expires=expires)
    key = state.find_key(access_key_id)
    if key is None:
        raise S3Error(
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
            403,
            AWSAccessKeyId=access_key_id,
        )
    headers = HTTPHeaders()
    for name, value in incoming.headers:
        lower = name.lower()
        if lower in ("content-md5", "content-type") or lower.startswith("x-amz-"):
            headers[lower] = value
    for name, value in query.items():  # headers the signer moved into the query string
        lower = name.lower()
        if (lower in ("content-md5", "content-type") or lower.startswith("x-amz-")) and lower not in headers:
            headers[lower] = value
    split = urlsplit(f"http://signed{incoming.raw_path or '/'}?{incoming.raw_query}")
    signer = _ExpectedV2Signature(Credentials(access_key_id, key.secret_access_key), expires)
    expected = signer.get_signature(incoming.method.upper(), split, headers)
    if not hmac.compare_digest(expected, signature):
        raise S3Error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method.",
            403,
        )
    return sigv4.VerifiedSignature(
        access_key_id=access_key_id,
        key=key,
        timestamp="",
        scope="",
        signature=signature,
        signing_key=b"",
        payload_hash=sigv4.UNSIGNED_PAYLOAD,
        presigned=True,
    )


def authorize(
    state: ServerState,
    verified: sigv4.VerifiedSignature,
    operation: str,
    bucket: str,
    key: str,
    *,
    version_id: str | None,
    copy_source: str | None,
    source_ip: str | None,
    secure: bool,
) -> None:
    """Raise ``AccessDenied`` unless the signer's policies allow ``operation`` (in a worker thread: the
    policies are read from the database)."""
    stored = verified.key
    arn = getattr(stored, "principal_arn", verified.access_key_id)
    if operation == "DeleteObjects":
        # Its keys are in the body, read later: the whole bucket's objects must be deletable.
        requirements: list[Permission] = [Permission("s3:DeleteObject", s3_object_arn(bucket, "*"))]
    else:
        try:
            requirements = s3_permissions.required(
                operation, bucket, key, version_id=version_id, copy_source=_copy_source(copy_source)
            )
        except (UnknownOperation, ValueError):
            requirements = [Permission(f"s3:{operation}", s3_object_arn(bucket, key) if key else "*")]
    caller = Caller(
        arn,
        verified.access_key_id,
        source_ip,
        secure,
        instance_name=getattr(stored, "instance_name", None),
        bundles_matter=operation in _BUNDLE_READS,
    )
    query = {"versionId": version_id} if version_id else {}
    with state.database.transaction(write=False) as session:
        refused = refusal(
            principal_for(session, caller, time.time()),
            requirements,
            s3_permissions.request_context(operation, query, version_id),
        )
    if refused is not None:
        raise S3Error("AccessDenied", refused.message(arn), 403)


_BUNDLE_READS = frozenset({"GetObject", "HeadObject"})


def _copy_source(header: str | None) -> s3_permissions.ObjectRef | None:
    """``x-amz-copy-source`` (``[/]bucket/key[?versionId=…]``, percent-encoded) as an object reference."""
    if not header:
        return None
    path, _, query = header.partition("?")
    bucket, _, key = unquote(path.lstrip("/")).partition("/")
    version = dict(parse_qsl(query)).get("versionId")
    return s3_permissions.ObjectRef(key, version, bucket)
