"""Who may call the S3 API: signature checks and the per-operation authorisation rule.

Requests are signed with SigV4 for the ``s3`` signing name (header, presigned query, UNSIGNED-PAYLOAD
and streaming payloads, all through ``api.sigv4``). Presigned URLs in the older query-string form
(``AWSAccessKeyId``/``Signature``/``Expires``, SigV2) are accepted too, because botocore still makes
those for ``us-east-1`` profiles that do not set ``signature_version = s3v4`` — ``aws s3 presign``
with opendeploy's profile included; the expected signature is botocore's own (``HmacV1QueryAuth``).

Authorisation: administrator keys may do everything; every other key (an on-premises instance's IAM
user key, say) may only read — list and download bundles, what the IAM policy the CodeDeploy guide
gives on-premises instances allows (``s3:Get*``, ``s3:List*``).
"""

from __future__ import annotations

import hmac
import time
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import HmacV1QueryAuth
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from opendeploy.api import sigv4
from opendeploy.api.errors import ApiError
from opendeploy.api.s3.errors import S3Error
from opendeploy.api.server_state import ServerState

READ_OPERATIONS = frozenset(
    {
        "ListBuckets",
        "HeadBucket",
        "GetBucketLocation",
        "GetBucketVersioning",
        "ListObjects",
        "ListObjectsV2",
        "GetObject",
        "HeadObject",
        "ListParts",
        "ListMultipartUploads",
    }
)


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


def authorize(verified: sigv4.VerifiedSignature, operation: str, resource: str) -> None:
    """Raise ``AccessDenied`` unless the signer may perform ``operation``."""
    key = verified.key
    if getattr(key, "is_admin", False) or operation in READ_OPERATIONS:
        return
    raise S3Error(
        "AccessDenied",
        f"User: {getattr(key, 'principal_arn', verified.access_key_id)} is not authorized to perform: "
        f"s3:{operation} on resource: {resource}",
        403,
    )
